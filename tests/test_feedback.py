"""Thumbs up / down feedback (KTO's unpaired data): feedback tasks, votes as labels, the unpaired export in
TRL's prompt/completion/label format, agreement on thumbs, and a KTO run on the tiny model."""

from __future__ import annotations

import json

import pytest

from annotation.labeling import LabelingError, User, display_order
from tests.test_labeling import ADMIN, ANN, BOB, CAT, Clock, candidates_labeling, make_task
from workbench.exporters import ExportError, export
from workbench.store import ExportFilters


@pytest.fixture
def labeling(store, load, tmp_path):
    """Four prompts (a system turn, earlier turns) with three candidate replies each."""
    return candidates_labeling(store, load, tmp_path, Clock())


def vote(labeling, user, task_id, thumb):
    view = labeling.open_next(user, task_id)
    assert view.kind == "feedback" and len(view.responses) == 1
    return view, labeling.submit(user, task_id, view.item_id, view.client_id, thumb=thumb)


def test_a_feedback_task_shows_one_response_and_stores_the_thumb(labeling, store):
    task = make_task(labeling, "feedback", overlap=1, max_responses=2)
    assert task.items == 8  # four prompts, two of their three replies each
    first, after = vote(labeling, ANN, task.id, "up")
    assert after.message.startswith("Saved")
    item = store.task_item(task.id, first.item_id, ANN.name)
    [label] = store.task_answers(task.id)
    assert label["kind"] == "feedback" and label["payload"]["thumb"] == "up"
    assert label["response_id"] == display_order(ANN.name, item)[0]
    with pytest.raises(LabelingError, match="thumbs up or thumbs down"):
        view = labeling.open_next(ANN, task.id)
        labeling.submit(ANN, task.id, view.item_id, view.client_id)
    edit = labeling.edit_last(ANN, task.id)
    assert edit.item_id == first.item_id and edit.prefill["thumb"] == "up"


def test_unpaired_export_takes_the_majority_thumb_and_leaves_even_splits_out(labeling, store, tmp_path):
    task = make_task(labeling, "feedback", overlap=3, max_responses=1)
    votes = [(ANN, ["up", "up", "down", "down"]), (BOB, ["up", "down", "up", "down"]),
             (CAT, ["down", "down", "up", "up"])]
    shown: dict[str, list[str]] = {}
    for user, thumbs in votes:
        for thumb in thumbs:
            view, _ = vote(labeling, user, task.id, thumb)
            shown.setdefault(view.item_id, []).append(thumb)
    assert all(len(t) == 3 for t in shown.values())
    expected = sorted(t.count("up") > t.count("down") for t in shown.values())
    out = tmp_path / "kto"
    export(store, kind="unpaired", out_dir=out)  # the prompts have a system turn: conversational only
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert set(rows[0]) == {"prompt", "completion", "label"}
    assert sorted(r["label"] for r in rows) == expected
    assert "label (true: thumbs up)" in (out / "README.md").read_text()
    # thumbs are categories like a pairwise choice: per item, the share of annotator pairs that agree
    agreement = labeling.agreement(ADMIN, task.id)
    assert agreement["units"] == 4 and agreement["annotators"] == ["ann", "bob", "cat"]
    share = [1.0 if len(set(t)) == 1 else 1 / 3 for t in shown.values()]  # 3-0: every pair agrees; 2-1: one of 3
    assert agreement["percent_agreement"] == pytest.approx(sum(share) / len(share))


def test_even_split_and_bad_options(labeling, store, tmp_path):
    task = make_task(labeling, "feedback", overlap=3, max_responses=1)
    first, _ = vote(labeling, ANN, task.id, "up")
    assert vote(labeling, BOB, task.id, "down")[0].item_id == first.item_id  # 1 up, 1 down: says nothing
    with pytest.raises(ExportError, match="no unpaired rows match"):
        export(store, kind="unpaired", out_dir=tmp_path / "none")
    with pytest.raises(ExportError, match="not unpaired"):
        export(store, kind="unpaired", out_dir=tmp_path / "x", filters=ExportFilters(smoothing=True))
    assert vote(labeling, User("cat", "annotator"), task.id, "up")[0].item_id == first.item_id
    export(store, kind="unpaired", out_dir=tmp_path / "one", style="conversational")
    [row] = [json.loads(line) for line in (tmp_path / "one" / "train.jsonl").read_text().splitlines()]
    assert row["label"] is True and row["completion"][0]["role"] == "assistant"
    assert row["prompt"][0] == {"role": "system", "content": "Be kind."}
