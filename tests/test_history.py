"""An annotator's own history (issue 20): every item they touched in its latest state, searchable, only their
own; and any past answer, not only the last, opened again and edited (the edit supersedes it, the done counter
stays)."""

from __future__ import annotations

import pytest

from annotation.history import my_work
from tests.test_labeling import ANN, BOB, Clock, candidates_labeling, make_task


@pytest.fixture
def labeling(store, load, tmp_path):
    return candidates_labeling(store, load, tmp_path, Clock())


def states(rows):
    return sorted(r["state"] for r in rows)


def test_the_history_lists_each_item_in_its_latest_state_and_only_ones_own(labeling, store):
    pick = make_task(labeling, "pairwise", overlap=2)
    write = make_task(labeling, "demonstration", overlap=1)
    view = labeling.open_next(ANN, pick.id)
    view = labeling.submit_comparison(ANN, pick.id, view.item_id, view.client_id, choice="A")
    view = labeling.submit_comparison(ANN, pick.id, view.item_id, view.client_id, choice="tie")
    view = labeling.skip(ANN, pick.id, view.item_id, view.client_id)
    labeling.flag(ANN, pick.id, view.item_id, view.client_id, "unsafe")
    draft = labeling.open_next(ANN, write.id)
    labeling.save_draft(ANN, write.id, draft.item_id, "Half a reply about the <b>charger</b>")

    rows = my_work(store, "ann")
    assert states(rows) == ["draft", "flagged", "skipped", "submitted", "submitted"]
    assert rows[0]["state"] == "draft" and rows[0]["task"] == "t-demonstration"  # newest first
    assert next(r for r in rows if r["state"] == "flagged")["reason"] == "unsafe"
    assert my_work(store, "bob") == []  # nobody else's work

    assert states(my_work(store, "ann", search="unsafe")) == ["flagged"]
    assert states(my_work(store, "ann", search="CHARGER")) == ["draft"]  # their own reply, any case
    assert states(my_work(store, "ann", state="submitted")) == ["submitted", "submitted"]
    assert states(my_work(store, "ann", task_id=write.id)) == ["draft"]

    # bob answers an item of the same task: her history does not change, his has one row
    theirs = labeling.open_next(BOB, pick.id)
    labeling.submit_comparison(BOB, pick.id, theirs.item_id, theirs.client_id, choice="B")
    assert states(my_work(store, "ann")) == ["draft", "flagged", "skipped", "submitted", "submitted"]
    assert states(my_work(store, "bob")) == ["submitted"]


def test_any_past_answer_opens_with_its_answer_and_an_edit_supersedes_it(labeling, store):
    task = make_task(labeling, "pairwise", overlap=2)
    view = labeling.open_next(ANN, task.id)
    first = view.item_id
    view = labeling.submit_comparison(ANN, task.id, first, view.client_id, choice="tie", rationale="Both fine.")
    view = labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="A")
    done = view.done

    old = labeling.edit_answer(ANN, task.id, first)  # not the last answer: the first
    assert old.item_id == first and old.prefill["choice"] == "tie" and old.prefill["rationale"] == "Both fine."
    assert old.message == "Editing your answer."
    after = labeling.submit_comparison(ANN, task.id, first, old.client_id, choice="B", rationale="B is kinder.")
    assert after.done == done  # an edit is not another item done
    rows = {r["item_id"]: r for r in my_work(store, "ann")}
    assert rows[first]["state"] == "edited" and len(rows) == 2
    [mine] = [a for a in store.task_answers(task.id) if a["item_id"] == first]
    assert mine["outcome"] == "chosen" and mine["payload"]["rationale"] == "B is kinder."

    # bob has no answer there: nothing of ann's opens for him
    view = labeling.edit_answer(BOB, task.id, first)
    assert view.message.startswith("You have no answer on that item to edit")
    assert view.prefill == {}


def test_an_undone_answer_leaves_the_history(labeling, store):
    task = make_task(labeling, "pairwise", overlap=2)
    view = labeling.open_next(ANN, task.id)
    view = labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="A")
    assert states(my_work(store, "ann")) == ["submitted"]
    labeling.undo(ANN, task.id, "undo-client-1")
    assert my_work(store, "ann") == []
