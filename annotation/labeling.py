"""What annotators and admins do with tasks, as plain functions of the store: the Gradio views call these
and so do the tests. Every function takes the signed-in user and checks the role itself, so the HTTP API
is scoped the same as the buttons are; the store checks each answer's lease, overlap and client id in the
transaction that stores it, and the handlers pass its refusals on as `Refused`.

An annotator sees a task item's prompt and, for comparisons, its responses in an order shuffled per
annotator and item, labelled A, B, C... with their origin hidden; they never see anyone else's answer.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from annotation.agreement import report, units_from_answers
from annotation.history import answer_prefill
from annotation.queue import LETTERS, Leases, display_order, next_item
from annotation.suggestions import JUDGED_KINDS, after_answer, for_view
from workbench.errors import WorkbenchError, check_text, excerpt
from workbench.store import Store, StoreError, Task
from workbench.store.answers import AnswerRefused

LABELERS = ("annotator", "reviewer", "admin")
KINDS = ("demonstration", "pairwise", "ranking", "review", "feedback")
THUMBS = ("up", "down")  # feedback: thumbs up or down on one response (KTO's unpaired data)
REVIEWERS = ("reviewer", "admin")  # who votes in A/B reviews of model versions
CHOICES = {"A": "A", "B": "B", "TIE": "tie", "BOTH_BAD": "both_bad", "BOTH BAD": "both_bad"}
FLAG_REASONS = ("unclear", "unsafe", "duplicate", "other")
MAX_RANKED = 5


class LabelingError(WorkbenchError):
    """A request the user can fix (no choice made, wrong order, empty text); the message says what."""


class AccessDenied(LabelingError):
    """The signed-in user's role does not allow this."""


class Refused(LabelingError):
    """The store would not take this answer, draft, undo, skip or flag: the item is leased to someone else or
    has its answers, the user holds no lease on it, or the client id names another submit. Its cause is the
    store's own error (workbench.store.answers), raised in the transaction that checked it."""


@contextmanager
def refused_as_labeling_errors() -> Iterator[None]:
    """The store's refusals, as the one-line errors the Label tab shows."""
    try:
        yield
    except AnswerRefused as exc:
        raise Refused(str(exc)) from exc


@dataclass
class User:
    name: str
    role: str


def require(user: User | None, *roles: str) -> User:
    if user is None:
        raise AccessDenied("sign in first")
    if user.role not in roles:
        raise AccessDenied(f"{user.name} is {user.role}: this needs the role {' or '.join(roles)}")
    return user


@dataclass
class ItemView:
    """Everything the labeling view shows for one item. `responses` are texts in display order (A, B...)."""

    task_id: str
    task_name: str
    kind: str
    guidelines: str
    item_id: str | None = None
    client_id: str = ""
    system: str | None = None
    messages: list[dict] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    draft: str = ""
    done: int = 0
    remaining: int = 0
    prefill: dict = field(default_factory=dict)
    message: str = ""
    why: str = ""  # admins: why the item sits where it does in an actively ordered queue
    versions: list[str] = field(default_factory=list)  # a review after the vote: the version behind each reply
    suggestion: str = ""  # judges' verdicts, where the task shows them (annotation/suggestions.py)


class Labeling:
    """Handlers for one project: the store, the leases and the size limit for free text."""

    # The progress bar's counts are recounted at most this often per annotator and task (a recount scans
    # the task's items, ~10 ms of CPU at 1M labels); in between, the annotator's own answers move them.
    PROGRESS_TTL_S = 30.0

    def __init__(self, store: Store, *, leases: Leases | None = None, max_field_bytes: int = 1_000_000):
        self.store = store
        self.leases = leases or Leases()
        self.max_field_bytes = max_field_bytes
        self._progress: dict[tuple[str, str], tuple[float, int, int]] = {}
        self._content: OrderedDict[tuple[str, str], dict] = OrderedDict()  # immutable item content, LRU
        self._content_lock = threading.Lock()
        self._tasks: dict[str, Task] = {}  # until an admin edits one (forget_task)

    CONTENT_CACHE = 20_000
    PREFETCH = 256  # one fetch scans the tables whatever its size (~7 ms at 1M labels): fetch far ahead

    def _content_of(self, task_id: str, item_id: str) -> dict:
        """An item's prompt and responses; a miss fetches it and the next PREFETCH items in task order (the
        ones annotators get next) in one round of queries."""
        key = (task_id, item_id)
        content = self._content.get(key)
        if content is None:
            fetched = self.store.items_content(task_id, item_id, self.PREFETCH)
            with self._content_lock:
                for other_id, other in fetched.items():
                    self._content[(task_id, other_id)] = other
                while len(self._content) > self.CONTENT_CACHE:
                    self._content.popitem(last=False)
            content = fetched.get(item_id)
            if content is None:
                raise LabelingError(f"task {task_id} has no item {item_id!r}: reload the page")
        return content

    def _annotator_progress(self, task_id: str, annotator: str, *, answered: int = 0) -> tuple[int, int]:
        key = (task_id, annotator)
        cached = self._progress.get(key)
        now = time.monotonic()
        if cached is None or now - cached[0] > self.PROGRESS_TTL_S:
            done, remaining = self.store.annotator_progress(task_id, annotator)
            self._progress[key] = (now, done, remaining)
            return done, remaining
        done, remaining = cached[1] + answered, max(cached[2] - answered, 0)
        self._progress[key] = (cached[0], done, remaining)
        return done, remaining

    # ------------------------------------------------------------ annotators
    def task_choices(self, user: User) -> list[tuple[str, str]]:
        require(user, *LABELERS)
        return [(f"{t.name} ({t.kind})", t.id) for t in self.store.tasks()
                if not t.archived and (t.kind != "review" or user.role in REVIEWERS)]

    def forget_task(self, task_id: str) -> None:
        """An admin edited, archived or deleted the task: read it again on its next use."""
        self._tasks.pop(task_id, None)

    def _task(self, task_id: str, user: User | None = None) -> Task:
        """The task, checking that this user may work on it (A/B reviews are for reviewers and admins)."""
        task = self._tasks.get(task_id) or (self.store.task(task_id) if task_id else None)
        if task is None:
            raise LabelingError(f"no task {task_id!r}: choose one from the list")
        self._tasks[task_id] = task
        if user is not None and task.archived:  # an admin's reports still read it (no user given)
            raise LabelingError(f"task {task.name} is archived: choose another task")
        if user is not None and task.kind == "review":
            require(user, *REVIEWERS)
        return task

    def open_next(self, user: User, task_id: str, message: str = "", *, answered: int = 0) -> ItemView:
        """The item this annotator should work on now (the one they hold, else the next in the queue)."""
        require(user, *LABELERS)
        task = self._task(task_id, user)
        item_id = next_item(self.store, self.leases, task, user.name)
        return self._view(user, task, item_id, message=message, answered=answered)

    def _view(self, user: User, task: Task, item_id: str | None, *, message: str = "",
              prefill: dict | None = None, answered: int = 0) -> ItemView:
        done, remaining = self._annotator_progress(task.id, user.name, answered=answered)
        view = ItemView(task_id=task.id, task_name=task.name, kind=task.kind,
                        guidelines=task.guidelines, done=done, remaining=remaining, message=message)
        if item_id is None:
            view.message = (message + " " if message else "") + "Nothing left for you in this task: thank you!"
            return view
        item = self._content_of(task.id, item_id)
        order = display_order(user.name, item)
        texts = {r["id"]: r["text"] for r in item["responses"]}
        view.item_id, view.client_id = item_id, uuid.uuid4().hex
        view.system, view.messages = item["system"], [dict(m) for m in item["messages"]]
        view.responses = [texts[rid] for rid in order]
        saved = self.store.saved_draft(task.id, item_id, user.name) if task.kind == "demonstration" else None
        view.draft = saved if saved is not None else item["draft_response"]
        view.prefill = prefill or {}
        if task.kind in JUDGED_KINDS:
            view.suggestion, preset = for_view(self.store, task.id, item_id, order, admin=user.role == "admin")
            view.prefill = prefill or preset
        if user.role == "admin":
            view.why = self._why(task.id, item_id)
        return view

    def _why(self, task_id: str, item_id: str) -> str:
        found = self.store.item_priority(task_id, item_id)
        if not found or found[2] is None:
            return ""
        return f"Queue position {found[0]}: {found[2]}"

    def _item(self, task: Task, item_id: str, user: User) -> dict:
        item = self.store.task_item(task.id, item_id, user.name) if item_id else None
        if item is None:  # an admin names items by hand; an annotator's page names the item it shows
            fix = "choose one from the list" if user.role == "admin" else "reload the page"
            raise LabelingError(f"task {task.name} has no item {item_id!r}: {fix}")
        return item

    def _response_ids(self, task: Task, item_id: str) -> list[str]:
        """The item's response ids (the ones shown), checking it exists."""
        if not item_id:
            raise LabelingError(f"task {task.name} has no item {item_id!r}: reload the page")
        return [r["id"] for r in self._content_of(task.id, item_id)["responses"]]

    def _text(self, text: str, what: str, *, required: bool) -> str:
        text = check_text("" if text is None else text, f"the {what}", LabelingError).strip()
        if required and not text:
            raise LabelingError(f"write the {what} before submitting")
        if len(text.encode("utf-8")) > self.max_field_bytes:
            raise LabelingError(f"the {what} is {len(text.encode('utf-8')):,} bytes; the limit is "
                                f"{self.max_field_bytes:,} (max_field_bytes in workbench.toml)")
        return text

    def _ratings(self, ratings: dict[str, int | float | None] | None, order: list[str]) -> dict[str, int]:
        out = {}
        for letter, value in (ratings or {}).items():
            if value in (None, "", 0):
                continue
            index = LETTERS.find(str(letter).upper())
            if not 0 <= index < len(order) or len(str(letter)) != 1:
                raise LabelingError(f"rating for response {letter!r}: this item shows {LETTERS[:len(order)]}")
            if float(value) not in (1, 2, 3, 4, 5):
                raise LabelingError(f"rating for response {letter}: {value!r} is not 1-5")
            out[order[index]] = int(value)
        return out

    def _stored(self, user: User, task: Task, created: bool, counted: bool) -> ItemView:
        """The next item after a stored answer; the done counter moves only for an item new to this annotator
        (an edit of an answer, or a retried submit, leaves it as it was)."""
        note = "Saved." if created else "Already saved (a repeated submit is stored once)."
        return self.open_next(user, task.id, message=note, answered=1 if counted else 0)

    def submit_demonstration(self, user: User, task_id: str, item_id: str, client_id: str, text: str) -> ItemView:
        require(user, *LABELERS)
        task = self._task(task_id, user)
        if task.kind != "demonstration":
            raise LabelingError(f"task {task.name} asks for a {task.kind} answer, not a demonstration")
        self._response_ids(task, item_id)
        text = self._text(text, "completion", required=True)
        with refused_as_labeling_errors():
            _, created, counted = self.store.add_answer(task_id=task.id, item_id=item_id, annotator=user.name,
                                                      client_id=_client_id(client_id), kind="demonstration",
                                                      text=text, lease=self.leases)
        return self._stored(user, task, created, counted)

    def submit(self, user: User, task_id: str, item_id: str, client_id: str, *, completion: str = "",
               choice: str = "", order: str = "", ratings: dict | None = None, rationale: str = "",
               thumb: str = "") -> ItemView:
        """The one submit of the Label tab: a demonstration or a comparison, by the task's kind."""
        require(user, *LABELERS)
        if self._task(task_id, user).kind == "demonstration":
            return self.submit_demonstration(user, task_id, item_id, client_id, completion)
        return self.submit_comparison(user, task_id, item_id, client_id, choice=choice, order=order,
                                      ratings=ratings, rationale=rationale, thumb=thumb)

    def submit_comparison(self, user: User, task_id: str, item_id: str, client_id: str, *, choice: str = "",
                          order: str = "", ratings: dict | None = None, rationale: str = "",
                          thumb: str = "") -> ItemView:
        """A pairwise choice (A, B, tie, both bad) or an N-way order such as 'CAB' (best first)."""
        require(user, *LABELERS)
        task = self._task(task_id, user)
        if task.kind == "demonstration":
            raise LabelingError(f"task {task.name} asks for a demonstration, not a comparison")
        shown = display_order(user.name, {"id": item_id, "responses": [
            {"id": rid} for rid in self._response_ids(task, item_id)]})
        fields = self.comparison_fields(task.kind, shown, choice=choice, order=order, ratings=ratings,
                                        rationale=rationale, thumb=thumb)
        with refused_as_labeling_errors():
            _, created, counted = self.store.add_answer(task_id=task.id, item_id=item_id, annotator=user.name,
                                                      client_id=_client_id(client_id), lease=self.leases, **fields)
        view = self._stored(user, task, created, counted)
        if task.kind in JUDGED_KINDS and (said := after_answer(self.store, task.id, item_id, shown)):
            view.message += " " + said
        if task.kind == "review":  # blind until the vote is in; then say which version was which
            versions = self.store.response_versions(shown)
            view.message += " You voted on: " + ", ".join(
                f"{LETTERS[i]} = {versions.get(rid) or 'unknown'}" for i, rid in enumerate(shown)) + "."
        return view

    def comparison_fields(self, kind: str, shown: list[str], *, choice: str, order: str, ratings: dict | None,
                          rationale: str, thumb: str = "") -> dict:
        """The label columns for a comparison whose responses were shown in the order `shown`."""
        payload = {"shown": shown, "ratings": self._ratings(ratings, shown),
                   "rationale": self._text(rationale, "rationale", required=False)}
        if kind == "feedback":
            thumb = (thumb or "").strip().lower()
            if thumb not in THUMBS:
                raise LabelingError("choose thumbs up or thumbs down before submitting")
            return {"kind": "feedback", "response_id": shown[0], "payload": payload | {"thumb": thumb}}
        if kind in ("pairwise", "review"):
            picked = CHOICES.get((choice or "").strip().upper().replace("-", "_"))
            if picked is None:
                raise LabelingError("choose A, B, tie or both bad before submitting")
            if picked in ("A", "B"):
                winner = shown[0] if picked == "A" else shown[1]
                loser = shown[1] if picked == "A" else shown[0]
                return {"kind": "preference", "chosen_id": winner, "rejected_id": loser, "outcome": "chosen",
                        "payload": payload}
            return {"kind": "preference", "chosen_id": shown[0], "rejected_id": shown[1], "outcome": picked,
                    "payload": payload}
        letters = re.sub(r"[\s,>]+", "", order or "").upper()
        expected = LETTERS[:len(shown)]
        if sorted(letters) != sorted(expected):
            raise LabelingError(f"order all {len(shown)} responses, best first, each once (e.g. "
                                f"{expected[::-1]}); got {order!r}")
        return {"kind": "ranking", "ranking": [shown[LETTERS.index(c)] for c in letters], "payload": payload}

    def skip(self, user: User, task_id: str, item_id: str, client_id: str) -> ItemView:
        """Put the item back: it returns after everything not skipped."""
        require(user, *LABELERS)
        task = self._task(task_id, user)
        self._item(task, item_id, user)
        with refused_as_labeling_errors():
            self.store.add_item_event(task_id=task.id, item_id=item_id, annotator=user.name, event="skip",
                                      client_id=_client_id(client_id))
        self.leases.release(task.id, user.name, item_id)
        return self.open_next(user, task.id, message="Skipped: it comes back at the end.")

    def flag(self, user: User, task_id: str, item_id: str, client_id: str, reason: str) -> ItemView:
        """Flag the item for an admin (unclear, unsafe, duplicate); the annotator does not see it again."""
        require(user, *LABELERS)
        if reason not in FLAG_REASONS:
            raise LabelingError(f"flag reason {reason!r}: choose one of {', '.join(FLAG_REASONS)}")
        task = self._task(task_id, user)
        self._item(task, item_id, user)
        with refused_as_labeling_errors():
            self.store.add_item_event(task_id=task.id, item_id=item_id, annotator=user.name, event="flag",
                                      reason=reason, client_id=_client_id(client_id))
        self.leases.release(task.id, user.name, item_id)
        self._progress.pop((task.id, user.name), None)  # a flagged item leaves what is left to them
        return self.open_next(user, task.id, message=f"Flagged as {reason}.")

    def save_draft(self, user: User, task_id: str, item_id: str, text: str) -> str | None:
        """Keep a half-written demonstration server-side (a reload brings it back), on an item the user holds
        (typing renews the lease) or their own answer being edited. None when there is nothing to keep: the
        text is what the item shows already. A save the browser sends after the submit (Gradio runs the last
        keystroke's save once the one before it is done) carries the submitted text, so it stores no draft
        that would bring the answered item back."""
        require(user, *LABELERS)
        task = self._task(task_id, user)
        if not item_id:
            return None
        item = self._item(task, item_id, user)
        text = self._text(text, "draft", required=False)
        if text == self._kept_text(task, item, user):
            return None
        with refused_as_labeling_errors():
            self.store.save_draft(task_id=task.id, item_id=item_id, annotator=user.name, text=text,
                                  lease=self.leases)
        return "Draft saved."

    def _kept_text(self, task: Task, item: dict, user: User) -> str:
        """The reply the store keeps for this annotator on the item: their draft, else their answer, else the
        item's draft response."""
        if not item["saved_draft"]:
            mine = self.store.answer(task.id, item["id"], user.name)
            if mine is not None and mine.get("response_id"):
                return self.store.response_text(mine["response_id"]).strip()
        return (item["draft"] or "").strip()

    def undo(self, user: User, task_id: str, client_id: str) -> ItemView:
        """Withdraw the last answer in this task and show its item again. The same undo twice (a retry with
        its client id) changes nothing and says so."""
        require(user, *LABELERS)
        task = self._task(task_id, user)
        with refused_as_labeling_errors():
            done, item_id = self.store.undo_last(task_id=task.id, annotator=user.name,
                                                 client_id=_client_id(client_id), lease=self.leases)
        if done == "nothing":
            return self.open_next(user, task.id, message="Nothing to undo.")
        if done == "repeat":
            return self.open_next(user, task.id, message="Already undone: a repeated undo changes nothing.")
        self._progress.pop((task.id, user.name), None)
        if self.leases.held(task.id, user.name) != item_id:  # its slot went to someone else meanwhile
            return self.open_next(user, task.id, message="Undone; that item is taken now.")
        return self._view(user, task, item_id, message="Undone: answer this item again.")

    def edit_last(self, user: User, task_id: str) -> ItemView:
        return self.edit_answer(user, task_id, None)

    def edit_answer(self, user: User, task_id: str, item_id: str | None) -> ItemView:
        """Any answered item of this person's (the last one when item_id is None) with the answer filled in;
        submitting stores an edit that supersedes it."""
        require(user, *LABELERS)
        task = self._task(task_id, user)
        mine = (self.store.last_answer(task.id, user.name) if item_id is None
                else self.store.answer(task.id, item_id, user.name))
        if mine is None:
            return self.open_next(user, task.id, message="Nothing to edit yet." if item_id is None else
                                  "You have no answer on that item to edit (an undone answer is gone).")
        item = self.store.task_item(task.id, mine["item_id"], user.name)
        view = self._view(user, task, mine["item_id"], prefill=answer_prefill(mine, display_order(user.name, item)),
                          message="Editing your last answer." if item_id is None else "Editing your answer.")
        if mine["kind"] == "demonstration":
            view.draft = self.store.response_text(mine["response_id"])
        return view

    # ------------------------------------------------------------ admins
    def create_task(self, user: User, *, name: str, kind: str, overlap: int, guidelines: str = "",
                    sources: list[str] | None = None, tags: list[str] | None = None, query: str | None = None,
                    max_responses: int | None = None, versions: list[str] | None = None) -> Task:
        """A labeling task, or (kind 'review') a blind A/B review of two model versions' generated replies,
        on the prompts tagged 'heldout' unless another selection is given."""
        require(user, "admin")
        name = check_text("" if name is None else name, "the task name", LabelingError).strip()
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
            raise LabelingError(f"task name {excerpt(name)}: use 1-64 letters, digits, '.', '_' or '-'")
        if kind not in KINDS:
            raise LabelingError(f"task kind {kind!r}: choose one of {', '.join(KINDS)}")
        if not isinstance(overlap, int) or isinstance(overlap, bool) or not 1 <= overlap <= 50:
            raise LabelingError(f"overlap {excerpt(overlap)}: annotators per item must be a whole number 1-50")
        if kind == "review":
            versions = [v.strip() for v in versions or [] if v and v.strip()]
            if len(versions) != 2 or versions[0] == versions[1]:
                raise LabelingError("a review compares two different model versions: give --versions A,B")
            for version in versions:
                if version != "base" and self.store.model_version(version) is None:
                    raise LabelingError(f"no model version {version!r} to review ('base' is the base model)")
            if not (sources or tags or query):
                tags = ["heldout"]
        elif versions:
            raise LabelingError("versions apply to review tasks only")
        low = 1 if kind in ("review", "feedback") else 2
        if max_responses is not None and (not isinstance(max_responses, int) or not low <= max_responses <= MAX_RANKED):
            raise LabelingError(f"max responses {excerpt(max_responses)}: choose {low}-{MAX_RANKED}")
        try:
            return self.store.create_task(name=name, kind=kind, overlap=int(overlap), guidelines=guidelines or "",
                                          created_by=user.name, sources=sources, tags=tags, query=query or None,
                                          max_responses=int(max_responses) if max_responses else None,
                                          versions=versions or None)
        except StoreError as exc:
            raise LabelingError(str(exc)) from None

    def progress(self, user: User, task_id: str) -> dict:
        require(user, "admin")
        task = self._task(task_id)
        return {"task": task.name, "kind": task.kind} | self.store.task_progress(task.id) | {
            "flagged": self.store.flagged_items(task.id)}

    def agreement(self, user: User, task_id: str, *, worst: int = 20) -> dict:
        require(user, "admin")
        task = self._task(task_id)
        if task.kind == "demonstration":
            raise LabelingError("demonstrations are free text: agreement is measured on pairwise, ranking, review "
                                "and feedback tasks")
        return report(units_from_answers(self.store.task_answers(task.id)), worst=worst)

    def adjudicate(self, user: User, task_id: str, item_id: str, client_id: str, *, choice: str = "",
                   order: str = "", rationale: str = "") -> str:
        """An admin's final answer on an item: it decides the item's pairs in exports, whatever the votes.
        Letters name the item's responses in their stored order (A = first), as the admin view lists them."""
        require(user, "admin")
        task = self._task(task_id)
        if task.kind == "demonstration":
            raise LabelingError("adjudication applies to pairwise and ranking tasks")
        item = self._item(task, item_id, user)
        shown = [r["id"] for r in item["responses"]]
        fields = self.comparison_fields(task.kind, shown, choice=choice, order=order, ratings=None,
                                        rationale=rationale)
        with refused_as_labeling_errors():  # a final answer is not leased: only its client id is checked
            label_id, _, _ = self.store.add_answer(task_id=task.id, item_id=item_id, annotator=user.name,
                                                client_id=_client_id(client_id), final=True, **fields)
        return label_id

    def item_for_review(self, user: User, task_id: str, item_id: str) -> dict:
        """An item with its responses in stored order and every answer on it (admins only)."""
        require(user, "admin")
        task = self._task(task_id)
        item = self._item(task, item_id, user)
        answers = [a for a in self.store.task_answers(task.id) if a["item_id"] == item_id]
        return item | {"answers": answers, "finals": [f for f in self.store.final_answers(task.id)
                                                      if f["item_id"] == item_id]}


def _client_id(client_id: str) -> str:
    """Client ids name submits, so a retry is stored once; they come from the page, so keep them tame."""
    client_id = (client_id or "").strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{8,100}", client_id):
        raise LabelingError("this submit has no valid client id: reload the page")
    return client_id
