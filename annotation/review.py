"""A blind A/B review after the vote: the item voted on, with the version behind each reply named, shown in
place before the next item (as Chatbot Arena reveals the models, then offers the next battle)."""

from __future__ import annotations

from annotation.labeling import (
    LETTERS,
    REVIEWERS,
    ItemView,
    Labeling,
    LabelingError,
    User,
    display_order,
    require,
)


def revealed(labeling: Labeling, user: User, task_id: str, item_id: str, message: str = "") -> ItemView:
    """A review item this reviewer has voted on, with the version behind each reply (A, B in the order they
    saw them) and their vote: shown in place after the vote, before the next item."""
    require(user, *REVIEWERS)
    task = labeling._task(task_id, user)
    if task.kind != "review":
        raise LabelingError(f"task {task.name} is not a review: there are no versions to reveal")
    mine = labeling.store.answer(task.id, item_id, user.name) if item_id else None
    if mine is None:
        raise LabelingError("vote first: the versions are revealed after your vote")
    view = labeling._view(user, task, item_id, message=message)
    item = labeling._content_of(task.id, item_id)
    shown = display_order(user.name, item)
    names = labeling.store.response_versions(shown)
    view.versions = [names.get(rid) or "unknown" for rid in shown]
    letter = {rid: LETTERS[i] for i, rid in enumerate(shown)}
    view.prefill = {"choice": letter[mine["chosen_id"]] if mine["outcome"] == "chosen"
                    else {"tie": "tie", "both_bad": "both bad"}[mine["outcome"]],
                    "rationale": mine["payload"].get("rationale", "")}
    return view
