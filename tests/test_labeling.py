"""The labeling handlers, called directly: queues and leases, answers, skips, flags, drafts, undo and edit,
scoping by role, agreement and adjudication, and what exports make of it all."""

from __future__ import annotations

import json
import threading

import pytest

from annotation.labeling import AccessDenied, Labeling, LabelingError, User, display_order
from annotation.queue import Leases
from workbench.exporters import export
from workbench.store import ExportFilters

ANN, BOB, CAT = User("ann", "annotator"), User("bob", "annotator"), User("cat", "annotator")
ADMIN = User("root", "admin")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def labeling(store, load, tmp_path, clock):
    return candidates_labeling(store, load, tmp_path, clock)


def candidates_labeling(store, load, tmp_path, clock) -> Labeling:
    rows = []
    for i in range(4):  # four prompts with three candidate replies each: pairwise and ranking items
        rows += [{"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": f"Help {i}?"},
                             {"role": "assistant", "content": "With what?"}, {"role": "user", "content": "My phone."}],
                  "completion": [{"role": "assistant", "content": f"Reply {i}.{k}"}]} for k in range(3)]
    (tmp_path / "candidates.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    load(tmp_path / "candidates.jsonl", tags=["batch1"])
    return Labeling(store, leases=Leases(ttl_s=60, clock=clock))


def make_task(labeling, kind="pairwise", overlap=2, **kw):
    return labeling.create_task(ADMIN, name=f"t-{kind}", kind=kind, overlap=overlap, guidelines="Pick the kinder.",
                                **kw)


def test_task_items_follow_the_kind(labeling):
    assert make_task(labeling, "demonstration").items == 4
    assert make_task(labeling, "pairwise", max_responses=3).items == 12  # 3 pairs per prompt
    assert make_task(labeling, "ranking").items == 4
    with pytest.raises(LabelingError, match="exists already"):
        make_task(labeling, "ranking")
    with pytest.raises(LabelingError, match="no prompts"):
        labeling.create_task(ADMIN, name="none", kind="pairwise", overlap=1, query="no such words")
    assert labeling.create_task(ADMIN, name="q", kind="demonstration", overlap=1, query="HELP 2").items == 1
    assert labeling.create_task(ADMIN, name="tag", kind="demonstration", overlap=1, tags=["batch1"]).items == 4


def test_annotators_get_distinct_items_until_overlap_and_never_one_they_answered(labeling):
    task = make_task(labeling, "pairwise", overlap=2)
    views = {u.name: labeling.open_next(u, task.id) for u in (ANN, BOB, CAT)}
    # two annotators may share an item (overlap 2); the third gets another one
    assert views["ann"].item_id == views["bob"].item_id != views["cat"].item_id
    again = labeling.open_next(ANN, task.id)  # a reload shows the same item
    assert again.item_id == views["ann"].item_id and again.responses == views["ann"].responses
    nxt = labeling.submit_comparison(ANN, task.id, again.item_id, again.client_id, choice="A")
    assert nxt.item_id not in (views["ann"].item_id, None)
    seen = {views["ann"].item_id}
    while nxt.item_id:
        assert nxt.item_id not in seen
        seen.add(nxt.item_id)
        nxt = labeling.submit_comparison(ANN, task.id, nxt.item_id, nxt.client_id, choice="tie")
    assert len(seen) == 4 and nxt.remaining == 0 and nxt.done == 4 and "Nothing left" in nxt.message


def test_a_lease_expires_when_abandoned(labeling, clock):
    task = make_task(labeling, "ranking", overlap=1)
    first = labeling.open_next(ANN, task.id)
    assert labeling.open_next(BOB, task.id).item_id != first.item_id
    clock.now += 61
    assert labeling.open_next(CAT, task.id).item_id == first.item_id


def test_comparison_answers_are_stored_as_shown(labeling, store):
    task = make_task(labeling, "pairwise", overlap=1)
    view = labeling.open_next(ANN, task.id)
    item = store.task_item(task.id, view.item_id)
    shown = display_order("ann", item)
    texts = {r["id"]: r["text"] for r in item["responses"]}
    assert view.responses == [texts[i] for i in shown] and view.messages[-1]["content"] == "My phone."
    assert view.system == "Be kind."
    labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="B", ratings={"A": 2, "B": 5},
                               rationale="B cites the policy")
    answer = store.answer(task.id, view.item_id, "ann")
    assert (answer["chosen_id"], answer["rejected_id"], answer["outcome"]) == (shown[1], shown[0], "chosen")
    assert answer["payload"]["ratings"] == {shown[0]: 2, shown[1]: 5}
    assert answer["payload"]["rationale"] == "B cites the policy"
    for choice, outcome in (("tie", "tie"), ("both bad", "both_bad")):
        view = labeling.open_next(ANN, task.id)
        labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice=choice)
        assert store.answer(task.id, view.item_id, "ann")["outcome"] == outcome  # never coerced


def test_bad_comparisons_are_refused_with_the_reason(labeling, store):
    pair, rank = make_task(labeling, "pairwise"), make_task(labeling, "ranking")
    v = labeling.open_next(ANN, pair.id)
    for kwargs, match in (({}, "choose A, B, tie"), ({"choice": "C"}, "choose A, B"),
                          ({"choice": "A", "ratings": {"A": 7}}, "not 1-5"),
                          ({"choice": "A", "ratings": {"C": 3}}, "shows AB")):
        with pytest.raises(LabelingError, match=match):
            labeling.submit_comparison(ANN, pair.id, v.item_id, v.client_id, **kwargs)
    r = labeling.open_next(ANN, rank.id)
    for order in ("AB", "AAB", "ABD", ""):
        with pytest.raises(LabelingError, match="order all 3"):
            labeling.submit_comparison(ANN, rank.id, r.item_id, r.client_id, order=order)
    with pytest.raises(LabelingError, match="no valid client id"):
        labeling.submit_comparison(ANN, pair.id, v.item_id, "", choice="A")
    with pytest.raises(LabelingError, match="has no item"):
        labeling.submit_comparison(ANN, pair.id, "nope", v.client_id, choice="A")
    assert store.task_answers(pair.id) == [] and store.task_answers(rank.id) == []


def test_a_retry_stores_one_label_and_an_edit_supersedes(labeling, store):
    task = make_task(labeling, "ranking", overlap=1)
    view = labeling.open_next(ANN, task.id)
    before = store.table_counts()["labels"]
    for _ in range(3):
        labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, order="CAB")
    assert store.table_counts()["labels"] == before + 1
    edit = labeling.edit_last(ANN, task.id)
    assert edit.item_id == view.item_id and edit.prefill["order"] == "CAB"
    labeling.submit_comparison(ANN, task.id, edit.item_id, edit.client_id, order="ABC")
    answers = store.task_answers(task.id)
    assert len(answers) == 1 and answers[0]["payload"]["shown"] and answers[0]["supersedes"]
    shown = answers[0]["payload"]["shown"]
    assert answers[0]["ranking"] == shown  # ABC = the order shown
    assert store.table_counts()["labels"] == before + 2  # the history keeps both


def test_undo_withdraws_the_last_answer_and_shows_it_again(labeling, store):
    task = make_task(labeling, "pairwise", overlap=1)
    view = labeling.open_next(ANN, task.id)
    labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="A")
    back = labeling.undo(ANN, task.id, "undo-client-1")
    assert back.item_id == view.item_id and store.task_answers(task.id) == []
    assert labeling.open_next(ANN, task.id).item_id == view.item_id  # still theirs to answer
    assert labeling.undo(ANN, task.id, "undo-client-2").message.startswith("Nothing to undo")


def test_skipped_items_return_last_and_flagged_ones_never(labeling, store):
    task = make_task(labeling, "ranking", overlap=1)
    first = labeling.open_next(ANN, task.id)
    second = labeling.skip(ANN, task.id, first.item_id, "skip-client-1")
    assert second.item_id != first.item_id
    third = labeling.flag(ANN, task.id, second.item_id, "flag-client-1", "unsafe")
    order = []
    view = third
    while view.item_id:
        order.append(view.item_id)
        view = labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, order="ABC")
    assert order[-1] == first.item_id and second.item_id not in order
    progress = labeling.progress(ADMIN, task.id)
    assert progress["flagged"] == [{"item_id": second.item_id, "annotators": ["ann"], "reasons": ["unsafe"]}]
    assert progress["annotators"] == [{"annotator": "ann", "answers": 3, "skips": 1, "flags": 1}]
    with pytest.raises(LabelingError, match="flag reason"):
        labeling.flag(ANN, task.id, first.item_id, "flag-client-2", "boring")


def test_a_draft_survives_and_goes_once_submitted(labeling, store):
    task = make_task(labeling, "demonstration", overlap=1)
    view = labeling.open_next(ANN, task.id)
    imported = {r["text"] for r in store.cursor().execute(
        "SELECT text FROM responses WHERE prompt_id = (SELECT prompt_id FROM task_items WHERE id = ?)",
        [view.item_id]).fetchall() for r in [{"text": r[0]}]}
    assert view.draft in imported  # an imported reply is the draft to edit
    labeling.save_draft(ANN, task.id, view.item_id, "Half a rep")
    fresh = Labeling(store, leases=Leases())  # a server restart: leases gone, drafts kept
    again = fresh.open_next(ANN, task.id)
    assert again.item_id == view.item_id and again.draft == "Half a rep"
    fresh.submit_demonstration(ANN, task.id, again.item_id, again.client_id, "Half a reply, finished.")
    assert store.task_item(task.id, view.item_id, "ann")["saved_draft"] is False
    with pytest.raises(LabelingError, match="write the completion"):
        nxt = fresh.open_next(ANN, task.id)
        fresh.submit_demonstration(ANN, task.id, nxt.item_id, nxt.client_id, "   ")


def test_roles_scope_every_handler(labeling):
    task = make_task(labeling, "pairwise")
    for call in (lambda: labeling.progress(ANN, task.id), lambda: labeling.agreement(ANN, task.id),
                 lambda: labeling.create_task(ANN, name="x", kind="pairwise", overlap=1),
                 lambda: labeling.adjudicate(ANN, task.id, "x", "client-xyz1", choice="A"),
                 lambda: labeling.item_for_review(ANN, task.id, "x")):
        with pytest.raises(AccessDenied, match="needs the role admin"):
            call()
    with pytest.raises(AccessDenied, match="sign in"):
        labeling.open_next(None, task.id)


def test_concurrent_answers_on_one_item_are_all_kept(labeling, store):
    task = make_task(labeling, "pairwise", overlap=8)  # room for all eight (the store refuses answers past it)
    users = [User(f"u{i}", "annotator") for i in range(8)]
    view = [labeling.open_next(u, task.id) for u in users][0]  # each holds the first item
    barrier = threading.Barrier(len(users))

    def submit(user):
        barrier.wait()
        labeling.submit_comparison(user, task.id, view.item_id, f"client-{user.name}-x", choice="A")

    threads = [threading.Thread(target=submit, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["annotator"] for a in store.task_answers(task.id)) == [u.name for u in users]


def letter_for(store, task, user, item_id, response_id):
    """The letter under which `user` sees `response_id` on this item."""
    return "AB"[display_order(user.name, store.task_item(task.id, item_id)).index(response_id)]


def test_agreement_and_adjudication_reach_the_export(labeling, store, tmp_path):
    task = make_task(labeling, "pairwise", overlap=2, sources=["candidates.jsonl"])

    def both_answer(bob_agrees: bool):
        """Ann and Bob get the same item; Ann prefers its first response, Bob too or the other one."""
        v1, v2 = labeling.open_next(ANN, task.id), labeling.open_next(BOB, task.id)
        assert v1.item_id == v2.item_id
        first, second = (r["id"] for r in store.task_item(task.id, v1.item_id)["responses"])
        labeling.submit_comparison(ANN, task.id, v1.item_id, v1.client_id,
                                   choice=letter_for(store, task, ANN, v1.item_id, first))
        labeling.submit_comparison(BOB, task.id, v2.item_id, v2.client_id,
                                   choice=letter_for(store, task, BOB, v2.item_id, first if bob_agrees else second))
        return v1, first, second

    both_answer(bob_agrees=True)  # both prefer the first response on item one
    report = labeling.agreement(ADMIN, task.id)
    assert report["percent_agreement"] == 1.0 and report["disagreements"] == []
    v1, first, second = both_answer(bob_agrees=False)  # they split on item two, and the admin decides it
    report = labeling.agreement(ADMIN, task.id)
    assert report["percent_agreement"] == 0.5 and [d["unit"] for d in report["disagreements"]] == [[v1.item_id]]
    assert report["cohen_kappa"][0]["annotators"] == ["ann", "bob"] and report["cohen_kappa"][0]["units"] == 2
    filters = ExportFilters(min_votes=2)
    assert export(store, kind="preferences", out_dir=tmp_path / "before", filters=filters).counts["train"] == 1
    review = labeling.item_for_review(ADMIN, task.id, v1.item_id)
    assert sorted(a["annotator"] for a in review["answers"]) == ["ann", "bob"]
    labeling.adjudicate(ADMIN, task.id, v1.item_id, "adjudicate-1", choice="B", rationale="B is right")
    result = export(store, kind="preferences", out_dir=tmp_path / "after", filters=filters)
    assert result.counts["train"] == 2
    rows = [json.loads(line) for line in (tmp_path / "after" / "train.jsonl").read_text().splitlines()]
    assert any(r["chosen"][0]["content"] == store.response_text(second) for r in rows)
    assert labeling.agreement(ADMIN, task.id)["units"] == 2  # the final answer is not a vote


def test_rankings_export_as_pairs(labeling, store, tmp_path):
    task = make_task(labeling, "ranking", overlap=1)
    view = labeling.open_next(ANN, task.id)
    labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, order="BCA")
    export(store, kind="preferences", out_dir=tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    b, c, a = view.responses[1], view.responses[2], view.responses[0]
    assert sorted((r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows) == sorted(
        [(b, c), (b, a), (c, a)])


def test_an_undone_item_goes_back_to_the_queue_for_everyone(labeling, clock):
    """Items before the first open one are not read by the queue; undoing an answer there must reopen it."""
    task = make_task(labeling, "ranking", overlap=1)
    first = labeling.open_next(ANN, task.id)
    labeling.submit_comparison(ANN, task.id, first.item_id, first.client_id, order="ABC")
    clock.now += 6  # past the queue's recount: it now starts after the answered first item
    assert labeling.open_next(BOB, task.id).item_id != first.item_id
    assert labeling.undo(ANN, task.id, "undo-reopen-1").item_id == first.item_id
    labeling.skip(ANN, task.id, first.item_id, "skip-reopen-1")  # ann lets it go
    assert labeling.open_next(CAT, task.id).item_id == first.item_id


def test_one_submit_follows_the_task_kind_and_edits_a_demonstration(labeling, store):
    demo, pair = make_task(labeling, "demonstration", overlap=1), make_task(labeling, "pairwise", overlap=1)
    view = labeling.open_next(ANN, demo.id)
    labeling.submit(ANN, demo.id, view.item_id, view.client_id, completion="First try.", choice="A")
    assert store.answer(demo.id, view.item_id, "ann")["kind"] == "demonstration"
    edit = labeling.edit_last(ANN, demo.id)
    assert edit.item_id == view.item_id and edit.draft == "First try."
    view = labeling.open_next(ANN, pair.id)
    labeling.submit(ANN, pair.id, view.item_id, view.client_id, completion="ignored", choice="tie")
    assert store.answer(pair.id, view.item_id, "ann")["outcome"] == "tie"


def test_oversized_text_is_refused_and_nothing_is_stored(store, load, tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "Hello?"}\n')
    load(tmp_path / "p.jsonl")
    labeling = Labeling(store, max_field_bytes=100)
    task = make_task(labeling, "demonstration", overlap=1)
    view = labeling.open_next(ANN, task.id)
    before = store.dump()
    for call in (lambda: labeling.submit_demonstration(ANN, task.id, view.item_id, view.client_id, "x" * 101),
                 lambda: labeling.save_draft(ANN, task.id, view.item_id, "y" * 101)):
        with pytest.raises(LabelingError, match="101 bytes; the limit is 100"):
            call()
    assert store.dump() == before


@pytest.mark.parametrize("settings, message", [
    ({"name": "bad name!"}, "task name 'bad name!'"),
    ({"kind": "essay"}, "task kind 'essay'"),
    ({"overlap": 0}, "overlap 0"),
    ({"max_responses": 9}, "max responses 9"),
])
def test_bad_task_settings_are_refused(labeling, store, settings, message):
    before = store.dump()
    with pytest.raises(LabelingError, match=message):
        labeling.create_task(ADMIN, **({"name": "ok", "kind": "pairwise", "overlap": 1} | settings))
    assert store.dump() == before


def test_the_in_memory_queue_matches_the_queue_query_through_every_kind_of_write(labeling, store, monkeypatch):
    """The store answers 'what next' from memory, kept by its own writes; after any mix of answers, edits,
    adjudications, skips, flags, drafts and undos it must give what the full SQL query gives (a batch of 3
    makes it read further down the task many times)."""
    import random

    monkeypatch.setattr(type(store), "QUEUE_BATCH", 3)
    task = make_task(labeling, "pairwise", max_responses=3)  # 12 items, overlap 2
    items = [row[0] for row in store.cursor().execute(
        "SELECT id FROM task_items WHERE task_id = ? ORDER BY position", [task.id]).fetchall()]
    who = ["ann", "bob", "cat", "dan"]
    rng = random.Random(7)
    seen_kinds = set()
    for step in range(400):
        annotator = rng.choice(who)
        op = rng.choice(["answer", "answer", "answer", "skip", "flag", "draft", "undo", "final"])
        item = rng.choice(items)
        client = f"c{step}"
        if op in ("answer", "final"):
            store.add_answer(task_id=task.id, item_id=item, annotator=annotator, client_id=client,
                             kind="preference", outcome="tie", final=op == "final")
        elif op in ("skip", "flag"):
            store.add_item_event(task_id=task.id, item_id=item, annotator=annotator, event=op, client_id=client)
        elif op == "draft":
            store.save_draft(task_id=task.id, item_id=item, annotator=annotator, text="so far")
        elif (last := store.last_answer(task.id, annotator)) is not None:
            store.retract(label_id=last["id"], annotator=annotator, client_id=client)
        seen_kinds.add(op)
        for a in who:
            for limit in (1, 4):
                assert store.queue_candidates(task.id, a, 2, limit=limit) == \
                    store._queue_candidates_sql(task.id, a, 2, limit=limit), (step, op, a)
    assert seen_kinds == {"answer", "skip", "flag", "draft", "undo", "final"}
    open_items = store.cursor().execute("SELECT count(*) FROM task_items WHERE task_id = ? AND answers < 2",
                                        [task.id]).fetchone()[0]
    assert 0 < open_items < len(items)  # the walk ended with the task part done, part open


def test_text_that_is_not_text_is_refused_with_one_line(store, load, tmp_path):
    """A number or a list sent as a demonstration (a client skipping the UI) is refused, never stored as its
    Python repr; a lone surrogate is one line, not a raw UnicodeEncodeError; a huge task name is quoted short."""
    (tmp_path / "p.jsonl").write_text('{"prompt": "Hello?"}\n')
    load(tmp_path / "p.jsonl")
    labeling = Labeling(store)
    task = make_task(labeling, "demonstration", overlap=1)
    view = labeling.open_next(ANN, task.id)
    before = store.dump()
    for bad, message in ((42, "must be text, got a number"), (["a"], "must be text, got a list"),
                         ("ok \ud800", "unpaired surrogate")):
        with pytest.raises(LabelingError, match=message):
            labeling.submit_demonstration(ANN, task.id, view.item_id, view.client_id, bad)
    assert store.dump() == before
    with pytest.raises(LabelingError) as err:
        labeling.create_task(ADMIN, name="x" * 10_000_000, kind="pairwise", overlap=1)
    assert len(str(err.value)) < 300 and "10,000,000 characters" in str(err.value)
    with pytest.raises(LabelingError, match="whole number"):
        labeling.create_task(ADMIN, name="ok", kind="pairwise", overlap="2")
