"""Labels are checked where they are stored (issue 17): an answer or a draft is taken only on an item leased
to that person (or their own answer, edited) with fewer answers than the task's overlap; a client id names
one submit of one person on one item; undo is idempotent and never leases an answered item. Each point
twice: through the handlers (annotation.labeling.Labeling), and through the real server with gradio_client,
as a client that ignores the page would send it."""

from __future__ import annotations

import pytest

from annotation.labeling import Refused, User
from tests.test_labeling import ANN, BOB, CAT, Clock, candidates_labeling, make_task
from workbench.store.answers import ClientIdReused, ItemComplete, ItemLeasedToOther, NoLease


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def labeling(store, load, tmp_path, clock):
    return candidates_labeling(store, load, tmp_path, clock)


def answers_on(store, task, item_id) -> list[str]:
    """Who stands as having answered the item, from the labels and from the item's own count (they agree)."""
    labels = sorted(a["annotator"] for a in store.task_answers(task.id) if a["item_id"] == item_id)
    count, who = store.cursor().execute("SELECT answers, annotators FROM task_items WHERE task_id = ? AND id = ?",
                                        [task.id, item_id]).fetchone()
    assert count == len(labels) and sorted(who) == labels
    return labels


# ------------------------------------------------------------ leases and overlap, through the handlers
def test_an_answer_on_an_item_leased_to_someone_else_is_refused(labeling, store):
    task = make_task(labeling, "pairwise", overlap=1)
    ann = labeling.open_next(ANN, task.id)
    bob = labeling.open_next(BOB, task.id)
    assert bob.item_id != ann.item_id
    with pytest.raises(Refused, match=f"item {ann.item_id} is leased to someone else") as refused:
        labeling.submit_comparison(BOB, task.id, ann.item_id, "bob-forged-1", choice="A")
    assert isinstance(refused.value.__cause__, ItemLeasedToOther)
    assert answers_on(store, task, ann.item_id) == []
    assert labeling.open_next(BOB, task.id).item_id == bob.item_id  # bob keeps his own lease
    labeling.submit_comparison(ANN, task.id, ann.item_id, ann.client_id, choice="A")
    assert answers_on(store, task, ann.item_id) == ["ann"]


def test_an_item_with_its_answers_takes_no_more(labeling, store):
    """The issue's case: an item with overlap 1 ended with 3 answers."""
    task = make_task(labeling, "pairwise", overlap=1)
    ann = labeling.open_next(ANN, task.id)
    labeling.submit_comparison(ANN, task.id, ann.item_id, ann.client_id, choice="A")
    for user in (BOB, CAT):
        labeling.open_next(user, task.id)  # each holds another item
        with pytest.raises(Refused, match=f"item {ann.item_id} already has its 1 answer,") as refused:
            labeling.submit_comparison(user, task.id, ann.item_id, f"{user.name}-late-1", choice="B")
        assert isinstance(refused.value.__cause__, ItemComplete)
    assert answers_on(store, task, ann.item_id) == ["ann"]
    edit = labeling.edit_last(ANN, task.id)  # her own answer on the full item: an edit, still taken
    assert edit.item_id == ann.item_id
    labeling.submit_comparison(ANN, task.id, edit.item_id, edit.client_id, choice="tie")
    assert answers_on(store, task, ann.item_id) == ["ann"]
    assert store.answer(task.id, ann.item_id, "ann")["outcome"] == "tie"


def test_an_answer_without_a_lease_is_refused_and_an_expired_one_only_while_its_slot_is_free(labeling, store,
                                                                                             clock):
    task = make_task(labeling, "ranking", overlap=1)
    first = labeling.open_next(ANN, task.id)
    free = [i for (i,) in store.cursor().execute("SELECT id FROM task_items WHERE task_id = ? AND id <> ?",
                                                   [task.id, first.item_id]).fetchall()]
    with pytest.raises(Refused, match=f"item {free[0]} is not leased to you") as refused:
        labeling.submit_comparison(BOB, task.id, free[0], "bob-no-lease-1", order="ABC")  # never opened it
    assert isinstance(refused.value.__cause__, NoLease)
    assert answers_on(store, task, free[0]) == []
    clock.now += 61  # ann's lease runs out while no one else wants the item: her slow answer still counts
    labeling.submit_comparison(ANN, task.id, first.item_id, first.client_id, order="ABC")
    assert answers_on(store, task, first.item_id) == ["ann"]
    second = labeling.open_next(ANN, task.id)
    clock.now += 61  # ... but once another annotator takes the slot, it is theirs
    assert labeling.open_next(CAT, task.id).item_id == second.item_id
    with pytest.raises(Refused, match="leased to someone else"):
        labeling.submit_comparison(ANN, task.id, second.item_id, second.client_id, order="ABC")
    labeling.submit_comparison(CAT, task.id, second.item_id, "cat-took-it-1", order="CBA")
    assert answers_on(store, task, second.item_id) == ["cat"]


def test_a_draft_needs_the_lease_and_grabs_none(labeling, store):
    task = make_task(labeling, "demonstration", overlap=1)
    ann = labeling.open_next(ANN, task.id)
    other = store.cursor().execute("SELECT id FROM task_items WHERE task_id = ? AND id <> ? ORDER BY position "
                                   "LIMIT 1", [task.id, ann.item_id]).fetchone()[0]
    with pytest.raises(Refused, match=f"item {ann.item_id} is leased to someone else, so this draft"):
        labeling.save_draft(BOB, task.id, ann.item_id, "Bob's words on Ann's item")
    with pytest.raises(Refused, match=f"item {other} is not leased to you .*so this draft"):
        labeling.save_draft(BOB, task.id, other, "Bob picks his own item")
    assert store.cursor().execute("SELECT count(*) FROM drafts WHERE annotator = 'bob'").fetchone()[0] == 0
    assert labeling.leases.held(task.id, "bob") is None  # a refused draft leases nothing
    assert labeling.open_next(CAT, task.id).item_id == other  # the item bob tried is still free
    assert labeling.save_draft(ANN, task.id, ann.item_id, "Half a reply") == "Draft saved."
    labeling.submit_demonstration(ANN, task.id, ann.item_id, ann.client_id, "A whole reply.")
    edit = labeling.edit_last(ANN, task.id)  # typing in an edit of her own answer saves a draft, no lease
    assert labeling.save_draft(ANN, task.id, edit.item_id, "A whole reply, edited") == "Draft saved."
    assert labeling.leases.held(task.id, "ann") != ann.item_id


# ------------------------------------------------------------ client ids, through the handlers
def test_a_client_id_reused_by_another_person_is_refused(labeling, store):
    task = make_task(labeling, "pairwise", overlap=1)
    ann, bob = labeling.open_next(ANN, task.id), labeling.open_next(BOB, task.id)
    labeling.submit_comparison(ANN, task.id, ann.item_id, ann.client_id, choice="A")
    with pytest.raises(Refused, match="already used by another person") as refused:
        labeling.submit_comparison(BOB, task.id, bob.item_id, ann.client_id, choice="B")
    assert isinstance(refused.value.__cause__, ClientIdReused)
    assert answers_on(store, task, bob.item_id) == []  # refused out loud, not dropped as "already saved"
    labeling.submit_comparison(BOB, task.id, bob.item_id, bob.client_id, choice="B")  # his lease kept
    assert answers_on(store, task, bob.item_id) == ["bob"]
    undo_id = "ann-undo-0001"
    labeling.undo(ANN, task.id, undo_id)
    with pytest.raises(Refused, match="already used by another person"):
        labeling.undo(BOB, task.id, undo_id)
    assert answers_on(store, task, bob.item_id) == ["bob"]
    skip = labeling.open_next(ANN, task.id)
    labeling.skip(ANN, task.id, skip.item_id, "ann-skip-0001")
    cat = labeling.open_next(CAT, task.id)
    with pytest.raises(Refused, match="already used by another person"):
        labeling.skip(CAT, task.id, cat.item_id, "ann-skip-0001")


def test_a_client_id_reused_for_another_item_is_refused(labeling, store):
    task = make_task(labeling, "pairwise", overlap=1)
    first = labeling.open_next(ANN, task.id)
    second = labeling.submit_comparison(ANN, task.id, first.item_id, first.client_id, choice="A")
    again = labeling.submit_comparison(ANN, task.id, first.item_id, first.client_id, choice="A")
    assert again.message.startswith("Already saved")  # the same submit retried is still stored once
    with pytest.raises(Refused, match=f"already used for your answer on item {first.item_id}"):
        labeling.submit_comparison(ANN, task.id, second.item_id, first.client_id, choice="B")
    assert answers_on(store, task, second.item_id) == []
    labeling.submit_comparison(ANN, task.id, second.item_id, second.client_id, choice="B")
    assert answers_on(store, task, second.item_id) == ["ann"]


# ------------------------------------------------------------ undo, through the handlers
def test_a_repeated_undo_changes_nothing_says_so_and_leases_no_answered_item(labeling, store):
    task = make_task(labeling, "pairwise", overlap=2)
    first = labeling.open_next(ANN, task.id)
    bob = labeling.open_next(BOB, task.id)
    assert bob.item_id == first.item_id  # overlap 2: both answer it, and it is full
    labeling.submit_comparison(BOB, task.id, bob.item_id, bob.client_id, choice="A")
    second = labeling.submit_comparison(ANN, task.id, first.item_id, first.client_id, choice="A")
    labeling.submit_comparison(ANN, task.id, second.item_id, second.client_id, choice="A")
    back = labeling.undo(ANN, task.id, "ann-undo-0001")
    assert back.item_id == second.item_id and back.message.startswith("Undone")
    again = labeling.undo(ANN, task.id, "ann-undo-0001")  # a double click, or a retry of the request
    assert again.message.startswith("Already undone") and again.item_id == second.item_id
    assert answers_on(store, task, first.item_id) == ["ann", "bob"]  # her earlier answer stands
    assert answers_on(store, task, second.item_id) == []
    assert labeling.leases.held(task.id, "ann") == second.item_id  # never the full item
    labeling.submit_comparison(ANN, task.id, again.item_id, again.client_id, choice="B")
    assert answers_on(store, task, second.item_id) == ["ann"]


def test_an_undone_item_goes_back_to_its_annotator_and_never_past_its_overlap(labeling, store):
    """Ann undoes an answer on an item whose other slot went to bob meanwhile: she may answer it again (she
    freed her own slot), no third annotator gets it, and her repeated undo changes nothing."""
    task = make_task(labeling, "ranking", overlap=2)
    ann = labeling.open_next(ANN, task.id)
    labeling.submit_comparison(ANN, task.id, ann.item_id, ann.client_id, order="ABC")
    bob = labeling.open_next(BOB, task.id)
    assert bob.item_id == ann.item_id
    back = labeling.undo(ANN, task.id, "ann-undo-0002")
    assert back.item_id == ann.item_id
    assert labeling.open_next(CAT, task.id).item_id != ann.item_id  # ann's and bob's leases fill it
    labeling.submit_comparison(BOB, task.id, bob.item_id, bob.client_id, order="CBA")
    labeling.submit_comparison(ANN, task.id, back.item_id, back.client_id, order="BAC")
    with pytest.raises(Refused, match="already has its 2 answers"):
        labeling.submit_comparison(CAT, task.id, ann.item_id, "cat-late-0001", order="ABC")
    again = labeling.undo(ANN, task.id, "ann-undo-0002")  # the first undo's request, retried late
    assert again.message.startswith("Already undone") and again.item_id != ann.item_id
    assert answers_on(store, task, ann.item_id) == ["ann", "bob"]
    assert labeling.undo(User("dan", "annotator"), task.id, "dan-undo-0001").message.startswith("Nothing")


# ------------------------------------------------------------ the same, through the real server
PASSWORD = "security-password"


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):
    """`workbench serve` on a small project: two pairwise tasks (overlap 1 and 2), a demonstration task."""
    import json

    from tests.test_app import start_server
    from workbench.auth import add_user
    from workbench.cli import main
    from workbench.projects import init_project
    from workbench.store import Store

    root = tmp_path_factory.mktemp("security") / "proj"
    project = init_project(root, base_model=str(tiny_model))
    rows = [{"prompt": f"My phone {i} will not charge.", "chosen": f"Sorry to hear that ({i}).",
             "rejected": f"Buy a new one ({i})."} for i in range(6)]
    (root / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["import", "-p", str(root), str(root / "pairs.jsonl")]) == 0
    with Store.open(project.store_path) as store:
        for name in ("ann", "bob", "cat"):
            add_user(store, name, "annotator", PASSWORD)
    for name, kind, overlap in (("one", "pairwise", 1), ("two", "pairwise", 2), ("write", "demonstration", 1)):
        assert main(["tasks", "add", name, "--kind", kind, "--overlap", str(overlap), "-p", str(root)]) == 0
    url, proc = start_server(root)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def client(url, name):
    from gradio_client import Client

    return Client(url, auth=(name, PASSWORD), verbose=False)


def submit(c, task, item_id, client_id, choice="A"):
    return c.predict(task, item_id, client_id, "", choice, "", "", None, None, None, None, None, None,
                     api_name="/submit")


@pytest.mark.e2e
def test_the_server_refuses_what_the_lease_and_the_overlap_do_not_allow(served):
    from gradio_client.exceptions import AppError

    ann, bob, cat = client(served, "ann"), client(served, "bob"), client(served, "cat")
    a = ann.predict("task-one", api_name="/open_task")
    b = bob.predict("task-one", api_name="/open_task")
    assert a[-2] != b[-2]
    with pytest.raises(AppError, match="is leased to someone else"):
        submit(bob, "task-one", a[-2], b[-1])  # bob answers ann's item with his own page's client id
    after = submit(ann, "task-one", a[-2], a[-1])
    assert "Saved." in after[-3]
    for c, view in ((bob, b), (cat, cat.predict("task-one", api_name="/open_task"))):
        with pytest.raises(AppError, match="already has its 1 answer"):
            submit(c, "task-one", a[-2], view[-1])  # the full item: overlap 1 keeps one answer
    ann.predict("task-one", after[-2], after[-1], api_name="/skip")  # ann lets her next item go: no one holds it
    with pytest.raises(AppError, match="is not leased to you"):
        submit(cat, "task-one", after[-2], "cat-never-opened-1")
    w = ann.predict("task-write", api_name="/open_task")
    with pytest.raises(AppError, match="leased to someone else, so this draft"):
        bob.predict("task-write", w[-2], "Bob types into Ann's item", api_name="/save_draft")
    assert ann.predict("task-write", w[-2], "Ann's half reply", api_name="/save_draft") == "Draft saved."


@pytest.mark.e2e
def test_the_server_refuses_reused_client_ids_and_a_repeated_undo_does_nothing(served):
    from gradio_client.exceptions import AppError

    ann, bob = client(served, "ann"), client(served, "bob")
    a = ann.predict("task-two", api_name="/open_task")
    b = bob.predict("task-two", api_name="/open_task")
    first = submit(ann, "task-two", a[-2], a[-1])
    assert "Saved." in first[-3] and "Already saved" in submit(ann, "task-two", a[-2], a[-1])[-3]
    with pytest.raises(AppError, match="already used by another person"):
        submit(bob, "task-two", b[-2], a[-1])
    with pytest.raises(AppError, match=f"already used for your answer on item {a[-2]}"):
        submit(ann, "task-two", first[-2], a[-1])  # ann's next item, her previous submit's id
    second = submit(ann, "task-two", first[-2], first[-1])
    back = ann.predict("task-two", second[-1], api_name="/undo")
    assert back[-2] == first[-2] and back[-3].startswith("Undone")
    again = ann.predict("task-two", second[-1], api_name="/undo")  # the same undo again
    assert again[-3].startswith("Already undone") and again[-2] == first[-2] != a[-2]


def test_concurrent_answers_past_the_overlap_are_refused_in_the_transaction(labeling, store):
    """Even with leases that let everyone in, eight annotators submitting on one item at once leave exactly
    `overlap` answers: the count is checked in the transaction that stores each answer, under the write lock."""
    import threading

    from annotation.queue import Leases

    class EveryoneHolds(Leases):
        def holds(self, task_id, item_id, annotator, free):
            return True

    labeling.leases = EveryoneHolds()
    task = make_task(labeling, "pairwise", overlap=2)
    item_id = labeling.open_next(ANN, task.id).item_id
    users = [User(f"u{i}", "annotator") for i in range(8)]
    barrier, refused = threading.Barrier(len(users)), []

    def submit(user):
        barrier.wait()
        try:
            labeling.submit_comparison(user, task.id, item_id, f"client-{user.name}-x", choice="A")
        except Refused as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=submit, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers_on(store, task, item_id)) == 2
    assert len(refused) == 6 and all("already has its 2 answers" in r for r in refused)
