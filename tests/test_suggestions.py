"""Judges' verdicts as suggestions (issue 21): hidden from annotators unless the task says otherwise, shown
after their answer or pre-selected before it, always in the letters that annotator sees; admins see every
judge's verdict on the items they open; what a person submits stays their own answer."""

from __future__ import annotations

import pytest

from annotation.judging import verdicts
from annotation.labeling import display_order
from tests.test_judges import HTTP, picks
from tests.test_labeling import ADMIN, ANN, BOB, Clock, candidates_labeling, make_task
from workbench.cli import main
from workbench.store import StoreError


@pytest.fixture
def judged(store, load, tmp_path):
    """A pairwise task whose every item a judge 'j' answered: the item's first response on all but the last
    item, where it flipped with the order (inconsistent)."""
    labeling = candidates_labeling(store, load, tmp_path, Clock())
    task = make_task(labeling, "pairwise", overlap=2)
    items = store.items_to_judge(task.id, "judge:j", "h", every=True)
    replies = {}
    for item in items[:-1]:
        replies |= picks(item, 0)
    last = items[-1]["id"]
    replies |= {f"{last}|0|1": {"reply": "A"}, f"{last}|1|0": {"reply": "A"}}
    store.add_judgements(task.id, verdicts(HTTP, "pairwise", items, replies, name="j", hash_="h", job_id="judge-1"),
                         job_id="judge-1")
    return labeling, task, {i["id"]: i for i in items}


def letter_of_judges_pick(user: str, item: dict) -> str:
    """The letter `user` sees on the item's first response (the judge's pick)."""
    shown = display_order(user, {"id": item["id"], "responses": [{"id": r} for r in item["response_ids"]]})
    return "AB"[shown.index(item["response_ids"][0])]


def test_hidden_by_default_but_the_admin_sees_which_way_each_judge_went(judged, store):
    labeling, task, items = judged
    assert store.task_suggestions(task.id) == "hidden"
    view = labeling.open_next(ANN, task.id)
    assert view.suggestion == "" and view.prefill == {}
    admin = labeling.open_next(ADMIN, task.id)
    expected = letter_of_judges_pick(ADMIN.name, items[admin.item_id])
    assert admin.suggestion.startswith("Judges (annotators do not see them): j: " + expected)
    after = labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="A")
    assert "judges said" not in after.message


def test_preselect_fills_in_the_judges_pick_in_the_annotators_own_letters(judged, store):
    labeling, task, items = judged
    store.set_task_suggestions(task.id, "preselect")
    for user in (ANN, BOB):  # each sees the responses in their own order
        view = labeling.open_next(user, task.id)
        expected = letter_of_judges_pick(user.name, items[view.item_id])
        assert view.prefill == {"choice": expected}
        assert view.suggestion == f"Judges suggest: j: {expected} (p = 1.00). (pre-selected: change it if you see it " \
                                  "otherwise)"
    # she disagrees: her answer is hers, and the judge's stays a judgement
    other = "B" if expected == "A" else "A"
    labeling.submit_comparison(BOB, task.id, view.item_id, view.client_id, choice=other)
    [mine] = [a for a in store.task_answers(task.id) if a["annotator"] == "bob"]
    assert mine["chosen_id"] != items[view.item_id]["response_ids"][0]


def test_an_inconsistent_judge_preselects_nothing_and_says_why(judged, store):
    labeling, task, items = judged
    store.set_task_suggestions(task.id, "preselect")
    last = list(items)[-1]
    view = labeling._view(ANN, labeling._task(task.id), last)
    assert view.prefill == {}
    assert "no verdict, it changed its answer when the replies swapped places" in view.suggestion


def test_after_shows_the_judges_verdict_once_the_answer_is_in(judged, store):
    labeling, task, items = judged
    store.set_task_suggestions(task.id, "after")
    view = labeling.open_next(ANN, task.id)
    assert view.suggestion == "" and view.prefill == {}
    expected = letter_of_judges_pick(ANN.name, items[view.item_id])
    after = labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="A")
    assert after.message.startswith("Saved. On the item you just answered, judges said: j: " + expected)


def test_the_setting_is_checked_and_the_cli_sets_and_reads_it(project, tmp_path, capsys):
    from tests.test_judges import _small_project
    from workbench.store import Store

    root = _small_project(project, tmp_path)
    assert main(["judges", "suggestions", "compare", "-p", root]) == 0
    assert "hidden from annotators" in capsys.readouterr().out
    assert main(["judges", "suggestions", "compare", "--show", "preselect", "-p", root]) == 0
    assert "pre-selected for annotators" in capsys.readouterr().out
    with Store.open(project.store_path) as store:
        task = store.task("compare")
        assert store.task_suggestions(task.id) == "preselect"
        with pytest.raises(StoreError, match="choose one of hidden, after, preselect"):
            store.set_task_suggestions(task.id, "<b>always</b>")
    with pytest.raises(SystemExit):
        main(["judges", "suggestions", "compare", "--show", "always", "-p", root])
