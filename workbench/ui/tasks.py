"""The admin's Tasks tab: create tasks, follow progress and agreement, order the queue (a scoring job where a
model scores), adjudicate."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from annotation.active import STRATEGIES, ActiveError, needs_scores, prioritize
from annotation.judge_agreement import judge_report
from annotation.labeling import KINDS, LETTERS, Labeling, LabelingError, User, require
from annotation.reports import agreement_markdown, judges_markdown, progress_markdown
from workbench.jobs import JobRunner, RunError
from workbench.ui.label import UserOf, user_text_box
from workbench.ui.render import cell, code, html_text, inline, user_markdown
from workbench.ui.train import follow

# An order that needs models runs as a scoring job on the server's job runner: the app hands the Tasks tab these
# two (task, by, models -> a status line; -> a status line), so the tab can be tested without a runner.
StartScoring = Callable[[str, str, list[str]], str]
CancelScoring = Callable[[], str]


def start_scoring_job(runner: JobRunner, task: str, by: str, models: list[str]) -> str:
    """Start the scoring job behind a queue order that needs models (the Tasks tab's Reorder); a bad request
    raises annotation.active.ActiveError, as an order worked out at once does."""
    from workbench.scoring import SCORING, ScoreRequest

    try:
        job = runner.start(SCORING, ScoreRequest(task=task, by=by, models=models))
    except RunError as exc:
        return f"**Not started:** {inline(str(exc))}"
    return f"Started **{job.run_id}**: {inline(', '.join(models))} score{'s' if len(models) == 1 else ''} the open items; " \
           f"the new order follows below when it is done."


def cancel_scoring_job(runner: JobRunner) -> str:
    from workbench.scoring import SCORING

    job = runner.cancel(SCORING)
    if job is None or job.stage != "score":
        return "No scoring job to cancel."
    return f"**{inline(job.run_id)}**: {job.state}" + (": the queue order is as it was" if job.state == "cancelled" else "")


def order_markdown(done: dict) -> str:
    """What a queue order did (annotation.active.prioritize's summary), for the Tasks tab."""
    if done["by"] == "task-order":
        return f"**{inline(done['task'])}** is back in the order it was made with."
    lines = [f"**{inline(done['task'])}**: {done['prioritized']} of {done['open_items']} open items ordered by "
             f"{inline(done['by'])}. First in the queue:"]
    lines += [f"- {code(h['item'])}: {inline(h['reason'])}" for h in done["head"]]
    return "\n".join(lines)


def scoring_markdown(status: dict) -> str:
    """The Tasks tab's line on the job runner's current job when it is a scoring job (else nothing): progress
    while it runs, the new order once it is stored."""
    if status.get("stage") != "score":
        return ""
    if status["state"] == "succeeded":
        return order_markdown(status["done"])
    line = f"**{inline(status['run_id'])}** (scoring): {status['state']}"
    if status["state"] == "running":
        progress = status.get("progress") or {}
        return line + f", {progress.get('done', 0)}/{progress.get('total') or '?'} responses scored"
    return line + f": {inline(status['error'] or '')}"


def safe_progress(progress: dict) -> dict:
    """A task's progress with its user text (task and annotator names, flags) escaped for the report."""
    return {**progress, "task": inline(progress["task"]),
            "annotators": [{**r, "annotator": cell(r["annotator"])} for r in progress["annotators"]],
            "flagged": [{"item_id": cell(r["item_id"]), "annotators": cell(", ".join(r["annotators"])),
                         "reasons": cell(", ".join(r["reasons"]))} for r in progress["flagged"]]}


def safe_agreement(report: dict) -> dict:
    """An agreement report with the annotator names escaped for the report's tables."""
    return {**report, "cohen_kappa": [{**p, "annotators": [cell(a) for a in p["annotators"]]}
                                      for p in report["cohen_kappa"]]}


def readable_disagreements(store, task_id: str, report: dict) -> tuple[dict, list[tuple[str, str]]]:
    """The agreement report with its disagreements in words (the prompt's opening, letters A, B... for the
    responses in the item's stored order, as the adjudication view shows them; names escaped), and the
    adjudication list's choices for those items."""
    rows, choices = [], []
    for d in report["disagreements"]:
        item_id = d["unit"][0]
        item = store.task_item(task_id, item_id) or {"messages": [], "responses": []}
        letter = {r["id"]: LETTERS[i] for i, r in enumerate(item["responses"])}
        turns = [m["content"] for m in item["messages"] if m["role"] == "user"]
        opening = " ".join((turns[-1] if turns else item_id).split())
        opening = opening if len(opening) <= 60 else opening[:59] + "…"
        votes = ", ".join(f"{who}: {letter.get(v, v.replace('_', ' ') if isinstance(v, str) else v)}"
                          for who, v in sorted(d["votes"].items()))
        rows.append({**d, "unit": [cell(opening), *(letter.get(r, "?") for r in d["unit"][1:])],
                     "votes": cell(votes)})
        choices.append((f"{opening} ({votes})", item_id))
    return {**report, "disagreements": rows}, choices


def review_html(item: dict) -> str:
    """The adjudication view of an item: its prompt, its responses, then every answer with its rationale; all
    user text rendered by workbench/ui/render.py."""
    from workbench.ui.label import ROLE_NAMES

    letter = {r["id"]: LETTERS[i] for i, r in enumerate(item["responses"])}
    parts = [f"<p><strong>System prompt:</strong></p>{user_markdown(item['system'])}"] if item.get("system") else []
    parts += [f"<p><strong>{ROLE_NAMES[m['role']]}</strong></p>{user_markdown(m['content'])}"
              for m in item["messages"] if m["role"] in ROLE_NAMES]
    parts += [f"<p><strong>{LETTERS[i]}</strong></p>{user_markdown(r['text'])}" for i, r in enumerate(item["responses"])]
    answers = []
    for a in item["answers"] + item["finals"]:
        who = html_text(a["annotator"]) + (" (final)" if a["final"] else "")
        if a["kind"] == "ranking":
            what = "".join(letter.get(r, "?") for r in a["ranking"])
        else:
            what = letter.get(a["chosen_id"], "?") if a["outcome"] == "chosen" else a["outcome"]
        rationale = a["payload"].get("rationale", "")
        answers.append(f"<li>{who}: <strong>{html_text(what)}</strong>{user_markdown(rationale) if rationale else ''}</li>")
    return "\n".join(parts + ([f"<ul>{''.join(answers)}</ul>"] if answers else []))


# What "responses per prompt" means for each kind, its range and its default (the limits of
# annotation.labeling.create_task, MAX_RANKED, and the store's defaults). Gradio shows an empty number as 0, so
# the field holds the kind's default rather than a 0 that silently meant "the default".
RESPONSES = {"pairwise": ("Responses per prompt, paired (2-5)", 2),
             "ranking": ("Responses per prompt to rank (2-5)", 4),
             "feedback": ("Replies per prompt to rate (1-5)", 1),
             "review": ("Replies per prompt and version (1-5)", 1),
             "demonstration": ("Responses per prompt (not used: a demonstration is written)", None)}


def responses_field(kind: str) -> dict:
    label, default = RESPONSES.get(kind, RESPONSES["pairwise"])
    return {"label": label, "value": default}


def _whole(value):
    """A number field as the handler gets it: 2.0 is 2, 0 stays 0 (the handler refuses it, never a silent 1), and
    an empty field is None; anything else goes on as it is, for the handler's one-line error."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def admin_task_choices(store) -> list[tuple[str, str]]:
    """Every task for the admin's list, archived ones said so (they leave the Label tab's lists, not this one)."""
    return [(f"{t.name} ({t.kind}{', archived' if t.archived else ''})", t.id) for t in store.tasks()]


def change_task(labeling: Labeling, action: str, task_id: str, *, guidelines: str | None = None,
                overlap=None, confirm: str = "") -> str:
    """Edit, archive, unarchive or delete a task (the caller checked the admin role); the line the tab shows. A
    refusal (an overlap below the answers an item has, a task with answers to delete) changes nothing."""
    from workbench.store import StoreError

    store = labeling.store
    task = store.task(task_id) if isinstance(task_id, str) and task_id else None
    if task is None:
        return "**Not done:** choose a task first."
    try:
        if action == "edit":
            changed = store.edit_task(task.id, guidelines=guidelines, overlap=_whole(overlap))
            line = f"Saved **{inline(changed.name)}**: {changed.overlap} per item, guidelines updated."
        elif action == "delete":
            if not isinstance(confirm, str) or confirm.strip() != task.name:
                return f"**Not deleted:** type the task's name ({inline(task.name)}) in the box to confirm."
            done = store.delete_task(task.id)
            line = f"Deleted **{inline(done['task'])}** and its {done['items']} items."
        else:
            archive = action == "archive"
            store.archive_task(task.id, archive)
            line = (f"Archived **{inline(task.name)}**: it left annotators' lists and queues; its labels stay in "
                    "exports and reports." if archive else f"**{inline(task.name)}** is back in annotators' lists.")
    except StoreError as exc:
        return f"**Not done:** {inline(str(exc))}"
    labeling.forget_task(task.id)
    if action in ("archive", "delete"):
        labeling.leases.release_task(task.id)
    return line


class TasksView:
    """The admin's Tasks tab: create tasks, follow progress and agreement, order the queue, adjudicate."""

    def __init__(self, labeling: Labeling, user_of: UserOf, start_scoring: StartScoring,
                 cancel_scoring: CancelScoring):
        self.labeling, self.user_of = labeling, user_of
        self.start_scoring, self.cancel_scoring = start_scoring, cancel_scoring
        with gr.Accordion("New task", open=True):
            with gr.Row():
                self.name = gr.Textbox(label="Name", elem_id="new-task-name")
                self.kind = gr.Radio(list(KINDS), value="pairwise", label="Kind", elem_id="new-task-kind")
                self.overlap = gr.Number(value=1, precision=0, label="Annotators per item", elem_id="new-task-overlap")
                self.max_responses = gr.Number(precision=0, elem_id="new-task-max-responses",
                                               **responses_field("pairwise"))
            with gr.Row():
                self.sources = gr.Textbox(label="Sources (globs, comma separated)", elem_id="new-task-sources")
                self.tags = gr.Textbox(label="Tags (comma separated)", elem_id="new-task-tags")
                self.query = gr.Textbox(label="Text contains", elem_id="new-task-query")
                self.versions = gr.Textbox(label="Review: the two versions (A,B); default prompts: tag heldout",
                                           elem_id="new-task-versions")
            self.guidelines = gr.Textbox(label="Guidelines (Markdown)", lines=4, elem_id="new-task-guidelines")
            self.create = gr.Button("Create task", variant="primary", elem_id="create-task")
            self.created = gr.Markdown(elem_id="create-status")
        with gr.Row():
            self.task = gr.Dropdown([], label="Task", elem_id="admin-task", scale=3, allow_custom_value=True)
            self.refresh = gr.Button("Refresh", elem_id="admin-refresh")
        self.progress = gr.Markdown(elem_id="task-progress")
        self.agreement = gr.Markdown(elem_id="task-agreement")
        with gr.Accordion("Change this task: guidelines, overlap, archive, delete", open=False,
                          elem_id="task-settings"):
            with gr.Row():
                self.edit_guidelines = gr.Textbox(label="Guidelines (Markdown)", lines=4, elem_id="edit-guidelines",
                                                  scale=3)
                self.edit_overlap = gr.Number(precision=0, label="Annotators per item (not below the answers an "
                                                                 "item has)", elem_id="edit-overlap")
            with gr.Row():
                self.save_task = gr.Button("Save changes", variant="primary", elem_id="task-save")
                self.archive = gr.Button("Archive", elem_id="task-archive")
                self.unarchive = gr.Button("Unarchive", elem_id="task-unarchive")
                self.delete_confirm = gr.Textbox(label="To delete: the task's name", elem_id="task-delete-confirm")
                self.delete = gr.Button("Delete task (only if unanswered)", variant="stop", elem_id="task-delete")
            self.changed = gr.Markdown(elem_id="task-change-status")
        with gr.Accordion("Queue order: label first where it is worth most", open=False):
            with gr.Row():
                self.order_by = gr.Dropdown([(f"{k}: {v}", k) for k, v in STRATEGIES.items()], value="margin",
                                            label="Order open items by", elem_id="order-by", scale=2)
                self.order_models = gr.Textbox(label="Model version: reward model or policy (disagreement: A,B)",
                                               elem_id="order-models")
                self.reorder = gr.Button("Reorder queue", elem_id="reorder")
                self.cancel_order = gr.Button("Cancel scoring", variant="stop", elem_id="cancel-scoring")
            self.reordered = gr.Markdown(elem_id="reorder-status")
            self.scoring = gr.Markdown(elem_id="scoring-status")  # the scoring job's progress, filled by the app's timer
        with gr.Accordion("Adjudicate an item", open=False):
            with gr.Row():
                # the disagreements and flags of the task above, by prompt and votes; an id can be pasted too
                self.item = gr.Dropdown([], label="Item", allow_custom_value=True, elem_id="adjudicate-item", scale=3)
                self.show = gr.Button("Show", elem_id="adjudicate-show")
            self.review = user_text_box(elem_id="adjudicate-review")
            with gr.Row():
                self.final_choice = gr.Radio(["A", "B", "tie", "both bad"], label="Final (pairwise)",
                                             elem_id="adjudicate-choice")
                self.final_order = gr.Textbox(label="Final order (ranking), best first", elem_id="adjudicate-order")
                self.final_note = gr.Textbox(label="Rationale", elem_id="adjudicate-rationale")
            self.decide = gr.Button("Save final answer", variant="primary", elem_id="adjudicate-save")
            self.decided = gr.Markdown(elem_id="adjudicate-status")

    def _admin(self, request: gr.Request, fn):
        try:
            return fn(self.user_of(request))
        except (LabelingError, ActiveError) as exc:
            raise gr.Error(str(exc)) from None

    def _disagreements(self, user: User, task_id: str) -> tuple[dict | None, list[tuple[str, str]]]:
        """The agreement report with its disagreements in words, and the adjudication list: those items, then
        the flagged ones (None and [] for a demonstration task)."""
        task = self.labeling.store.task(task_id)
        if task is None or task.kind == "demonstration":
            return None, []
        report, choices = readable_disagreements(self.labeling.store, task.id, self.labeling.agreement(user, task_id))
        flagged = [(f"flagged: {', '.join(f['reasons'])} ({f['item_id']})", f["item_id"])
                   for f in self.labeling.store.flagged_items(task.id)]
        return report, choices + flagged

    def overview(self, user: User, task_id: str) -> tuple[str, str]:
        if not task_id:
            return "_Choose a task._", ""
        progress = progress_markdown(safe_progress(self.labeling.progress(user, task_id)))
        report, _ = self._disagreements(user, task_id)
        agreement = ("_Demonstrations are free text: no agreement figures._" if report is None
                     else agreement_markdown(safe_agreement(report)))
        task = self.labeling.store.task(task_id)
        judgements = self.labeling.store.judgements(task.id)
        if judgements:  # model judges' verdicts against people (workbench judge): admins only, as the rest here
            judged = judge_report(self.labeling.store.task_answers(task.id), judgements,
                                  self.labeling.store.item_response_ids(task.id))
            agreement += "\n\n" + judges_markdown(
                {**judged, "judges": [{**j, "judge": cell(j["judge"])} for j in judged["judges"]]})
        return progress, agreement

    def wire(self, label_task: gr.Dropdown, job_timer: gr.Timer) -> None:
        """`job_timer`: the page's job timer, started after a reorder that starts a scoring job (train.py follow)."""
        lab = self.labeling
        split = lambda text: [s.strip() for s in (text or "").split(",") if s.strip()]  # noqa: E731

        def create(name, kind, overlap, max_responses, sources, tags, query, guidelines, versions,
                   request: gr.Request):
            def go(user):
                task = lab.create_task(user, name=name, kind=kind, overlap=_whole(overlap), guidelines=guidelines,
                                       sources=split(sources), tags=split(tags), query=query,
                                       max_responses=_whole(max_responses),
                                       versions=split(versions) if kind == "review" else None)
                return (f"Created **{inline(task.name)}**: {task.items} items.",
                        gr.update(choices=lab.task_choices(user)),
                        gr.update(choices=admin_task_choices(lab.store), value=task.id))
            return self._admin(request, go)

        self.kind.change(lambda kind: gr.update(**responses_field(kind)), inputs=self.kind,
                         outputs=self.max_responses, api_name=False, show_progress="hidden")
        self.create.click(create, inputs=[self.name, self.kind, self.overlap, self.max_responses, self.sources,
                                          self.tags, self.query, self.guidelines, self.versions],
                          outputs=[self.created, label_task, self.task], api_name="create_task",
                          show_progress="hidden")  # a refused task: its reason in a toast, no red "Error" pills
        def overview(task, request: gr.Request):
            return self._admin(request, lambda u: self.overview(u, task))

        def to_adjudicate(task, request: gr.Request):
            return self._admin(request, lambda u: gr.update(choices=self._disagreements(u, task)[1] if task else []))

        for event in (self.task.change(overview, inputs=self.task, outputs=[self.progress, self.agreement],
                                       api_name="task_overview"),
                      self.refresh.click(overview, inputs=self.task, outputs=[self.progress, self.agreement],
                                         api_name=False)):
            event.then(to_adjudicate, inputs=self.task, outputs=self.item, api_name=False)

        def reorder(task, by, models, request: gr.Request):
            def go(user):
                require(user, "admin")
                names = split(models)
                if needs_scores(by, names):  # models score in a job's process, never in the server's
                    return self.start_scoring(task or "", by, names)
                return order_markdown(prioritize(lab.store, task or "", by, names))
            return self._admin(request, go)

        follow(self.reorder.click(reorder, inputs=[self.task, self.order_by, self.order_models],
                                  outputs=self.reordered, api_name="reorder_queue"), job_timer)

        def cancel_order(request: gr.Request):
            def go(user):
                require(user, "admin")
                return self.cancel_scoring()
            return self._admin(request, go)

        self.cancel_order.click(cancel_order, outputs=self.scoring, api_name="cancel_scoring")

        def show(task, item_id, request: gr.Request):
            def go(user):
                return review_html(lab.item_for_review(user, task, (item_id or "").strip()))
            return self._admin(request, go)

        self.show.click(show, inputs=[self.task, self.item], outputs=self.review, api_name="review_item")

        def decide(task, item_id, choice, order, note, request: gr.Request):
            import uuid

            return self._admin(request, lambda u: "Final answer saved: " + lab.adjudicate(
                u, task, (item_id or "").strip(), uuid.uuid4().hex, choice=choice or "", order=order or "",
                rationale=note or ""))

        self.decide.click(decide, inputs=[self.task, self.item, self.final_choice, self.final_order, self.final_note],
                          outputs=self.decided, api_name="adjudicate").success(  # the lists show the decision
            overview, inputs=self.task, outputs=[self.progress, self.agreement], api_name=False).then(
            to_adjudicate, inputs=self.task, outputs=self.item, api_name=False)
        self._wire_changes(label_task)

    def _wire_changes(self, label_task: gr.Dropdown) -> None:
        """Edit, archive, unarchive, delete: each refreshes the task lists (the admin's and the Label tab's)."""
        lab = self.labeling

        def settings(task, request: gr.Request):
            def go(user):
                require(user, "admin")
                found = lab.store.task(task) if isinstance(task, str) and task else None
                return (found.guidelines, found.overlap) if found else ("", None)
            return self._admin(request, go)

        self.task.change(settings, inputs=self.task, outputs=[self.edit_guidelines, self.edit_overlap],
                         api_name=False, show_progress="hidden")

        def action(kind: str):
            def handler(task, guidelines, overlap, confirm, request: gr.Request):
                def go(user):
                    require(user, "admin")
                    line = change_task(lab, kind, task, guidelines=guidelines, overlap=overlap, confirm=confirm)
                    gone = kind == "delete" and isinstance(task, str) and lab.store.task(task) is None
                    return (line, gr.update(choices=admin_task_choices(lab.store), value=None if gone else task),
                            gr.update(choices=lab.task_choices(user)), "")
                return self._admin(request, go)
            handler.__name__ = f"task_{kind}"
            return handler

        for button, kind in ((self.save_task, "edit"), (self.archive, "archive"), (self.unarchive, "unarchive"),
                             (self.delete, "delete")):
            button.click(action(kind), inputs=[self.task, self.edit_guidelines, self.edit_overlap, self.delete_confirm],
                         outputs=[self.changed, self.task, label_task, self.delete_confirm], api_name=f"task_{kind}",
                         show_progress="hidden")
