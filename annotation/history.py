"""An annotator's own work, as the Label tab's history lists it, and an old answer as the form it came from.

Like Label Studio's and Argilla's "my annotations" views: every item the person touched in its latest state
(submitted, edited, skipped, flagged, a draft), newest first, searchable, each answered one open to edit (the
edit supersedes the answer, so the history of the label is kept). People only ever see their own rows.
"""

from __future__ import annotations

from annotation.queue import LETTERS
from workbench.store import HISTORY_STATES, Store


def answer_prefill(answer: dict, shown: list[str]) -> dict:
    """A stored answer as the Label tab's fields, in the letters of `shown` (the order this person sees)."""
    letter = {rid: LETTERS[i] for i, rid in enumerate(shown)}
    payload = answer["payload"]
    prefill = {"rationale": payload.get("rationale", ""),
               "ratings": {letter[rid]: v for rid, v in payload.get("ratings", {}).items() if rid in letter}}
    if answer["kind"] == "preference":
        prefill["choice"] = (letter[answer["chosen_id"]] if answer["outcome"] == "chosen"
                             else {"tie": "tie", "both_bad": "both bad"}[answer["outcome"]])
    elif answer["kind"] == "ranking":
        prefill["order"] = "".join(letter[rid] for rid in answer["ranking"])
    elif answer["kind"] == "feedback":
        prefill["thumb"] = payload.get("thumb")
    return prefill


def my_work(store: Store, name: str, *, task_id: str | None = None, search: str | None = None,
            state: str | None = None, limit: int = 200) -> list[dict]:
    """The signed-in person's history (the caller passes their own name, from the session)."""
    if state and state not in HISTORY_STATES:
        raise ValueError(f"state {state!r}: choose one of {', '.join(HISTORY_STATES)}")
    return store.annotator_history(name, task_id=task_id or None, search=(search or "").strip() or None,
                                   state=state or None, limit=limit)


def prompt_excerpt(row: dict, chars: int = 90) -> str:
    """The last user turn of the item's prompt, shortened: what a person recognises an item by."""
    turns = [m["content"] for m in row["messages"] if m["role"] == "user"] or [row["system"] or ""]
    text = " ".join(turns[-1].split())
    return text if len(text) <= chars else text[:chars - 1] + "…"
