"""Active selection: each ordering rule on known scores, the queue serving items in the new order (answered
and skipped items where they belong, the reason shown to admins only, undo back to task order), bad
requests refused with the store unchanged, and the CLI ordering a real task with a real reward model."""

from __future__ import annotations

import json

import pytest

from annotation.active import (
    ActiveError,
    check_request,
    disagreement_priority,
    lexical_variance_priority,
    margin_priority,
    prioritize,
    variance_priority,
)
from tests.conftest import DEMO_DATA
from tests.test_labeling import ADMIN, ANN, BOB, CAT, Clock, candidates_labeling, make_task
from workbench.cli import main
from workbench.store import Store


def test_margin_picks_the_closest_pair_and_reads_single_responses_against_the_median():
    priority, reason = margin_priority([0.1, 0.9, 0.15], "rm")
    assert priority == pytest.approx(-0.05) and reason == "rm margin 0.050 between A and C"
    near, _ = margin_priority([1.1], "rm", center=1.0)
    far, _ = margin_priority([3.0], "rm", center=1.0)
    assert near > far  # a response scored near the median is the unsure one


def test_disagreement_is_the_largest_gap_in_win_probability():
    same, _ = disagreement_priority([0.0, 2.0], [0.0, 2.0], ("a", "b"))
    assert same == pytest.approx(0.0)
    gap, reason = disagreement_priority([0.0, 2.0], [2.0, 0.0], ("a", "b"))
    # a: A beats B with p = 1/(1+e^2) = 0.119; b: p = 0.881
    assert gap == pytest.approx(0.7616, abs=1e-4) and reason == "a gives A over B p=0.12, b p=0.88"


def test_variance_with_and_without_a_model():
    spread, _ = variance_priority([1.0, 3.0], "rm")
    assert spread == pytest.approx(1.0)
    same, _ = lexical_variance_priority(["the phone is fine", "the phone is fine"])
    apart, reason = lexical_variance_priority(["the phone is fine", "refund sent today"])
    assert same == 0.0 and apart == 1.0 and reason == "responses share 0% of their words"


# "Reply i.k" texts of the candidates fixture get these scores: prompt 2's replies are closest, then 0, 3, 1.
SCORES = {0: [0.0, 0.3, 1.0], 1: [0.0, 2.0, 4.0], 2: [0.0, 0.05, 0.5], 3: [0.0, 0.6, 1.5]}


def fixed_scorer(_store, _name):
    def score(prompts, replies):
        out = []
        for reply in replies:
            i, k = reply.removeprefix("Reply ").rstrip(".").split(".")
            out.append(SCORES[int(i)][int(k)])
        return out
    return score


def fixed_scores(store, task_id, name="rm"):
    """What a scoring job by `name` hands back for the task's open items, scored by fixed_scorer."""
    return {name: {item["id"]: fixed_scorer(None, name)(None, item["responses"])
                   for item in store.open_items_for_scoring(task_id)}}


def served(labeling, user, task_id, n):
    """The next n items this user gets, answering each (choice A)."""
    items = []
    view = labeling.open_next(user, task_id)
    while view.item_id and len(items) < n:
        items.append(view.item_id)
        view = labeling.submit_comparison(user, task_id, view.item_id, view.client_id, choice="A")
    return items


def margins_of(store, task_id):
    out = {}
    for item in store.open_items_for_scoring(task_id):
        scores = fixed_scorer(None, None)(None, item["responses"])
        out[item["id"]] = abs(scores[0] - scores[1])
    return out


def test_the_queue_serves_the_smallest_margins_first_and_goes_back_on_request(store, load, tmp_path):
    clock = Clock()
    labeling = candidates_labeling(store, load, tmp_path, clock)
    task = make_task(labeling, "pairwise", overlap=2, max_responses=3)  # 12 pairs
    before = [r[0] for r in store.cursor().execute(
        "SELECT id FROM task_items WHERE task_id = ? ORDER BY position", [task.id]).fetchall()]
    first = served(labeling, ANN, task.id, 1)[0]  # one answer of two: still open, and in the window
    skipped = labeling.open_next(CAT, task.id)
    labeling.skip(CAT, task.id, skipped.item_id, skipped.client_id)
    clock.now += 3600  # the item cat was shown after the skip is no longer held for cat
    margins = margins_of(store, task.id)

    done = prioritize(store, task.name, "margin", ["rm"], fixed_scores(store, task.id))
    assert done["prioritized"] == done["open_items"] == 12
    assert done["head"][0]["reason"].startswith("rm margin 0.050")
    # the reason names the two responses by their opening words, never by letters (shuffled per annotator)
    head = next(i for i in store.open_items_for_scoring(task.id) if i["id"] == done["head"][0]["item"])
    named = [t for t in head["responses"] if '"' + " ".join(t.split()[:6]) in done["head"][0]["reason"]]
    assert len(named) == 2 and " A " not in done["head"][0]["reason"]

    by_margin = sorted(margins, key=lambda i: (margins[i], before.index(i)))
    assert served(labeling, BOB, task.id, 12) == by_margin  # bob answered none: the whole order
    cat = served(labeling, CAT, task.id, 12)
    # ann and bob completed `first`; cat's skipped item comes after every item cat never skipped
    assert cat == [i for i in by_margin if i not in (first, skipped.item_id)] + (
        [skipped.item_id] if skipped.item_id != first else [])
    ann = served(labeling, ANN, task.id, 12)  # items with two answers have left the queue
    assert first not in ann and ann == []

    # admins see why an item sits where it does; annotators do not
    fresh = make_task(labeling, "ranking", overlap=1)
    prioritize(store, fresh.name, "variance", [])
    admin_view = labeling.open_next(ADMIN, fresh.id)
    assert admin_view.why.startswith("Queue position 1: responses share")
    assert labeling.open_next(ANN, fresh.id).why == ""

    prioritize(store, task.name, "task-order", [])
    after = [r[0] for r in store.cursor().execute(
        "SELECT id FROM task_items WHERE task_id = ? ORDER BY position", [task.id]).fetchall()]
    assert after == before and store.queue_order(task.id) is None


def test_bad_requests_are_refused_and_leave_the_order_alone(store, load, tmp_path):
    labeling = candidates_labeling(store, load, tmp_path, Clock())
    pairwise = make_task(labeling, "pairwise", overlap=1, max_responses=3)
    demo = make_task(labeling, "demonstration", overlap=1)
    dump = store.dump()
    cases = [
        (demo.name, "margin", ["rm"], "demonstration task"),
        (pairwise.name, "margin", [], "needs one model version"),
        (pairwise.name, "disagreement", ["rm"], "needs two model versions"),
        (pairwise.name, "disagreement", ["rm", "rm"], "two different model versions"),
        (pairwise.name, "variance", ["a", "b"], "at most one"),
        (pairwise.name, "loudest", ["rm"], "unknown order"),
        ("nope", "margin", ["rm"], "no task named"),
        (pairwise.name, "margin", ["reward-9"], "no model version of that name"),
    ]
    for name, by, models, message in cases:
        with pytest.raises(ActiveError, match=message):
            check_request(store, name, by, models)  # what a scoring job checks first: refuses unknown versions
    assert store.dump() == dump


@pytest.mark.slow
def test_the_cli_orders_a_task_by_a_trained_reward_models_margin(project, capsys):
    from trainers.models import load_reward_version, reward_scores

    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    assert main(["train", "reward", root, "--max-steps", "4", "--batch-size", "4", "--max-length", "128"]) == 0
    assert main(["tasks", "add", "compare", "-p", root, "--kind", "pairwise", "--query", "Loki Watch"]) == 0
    capsys.readouterr()
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "disagreement",
                 "--reward-model", "reward-1"]) == 2
    assert "two model versions" in capsys.readouterr().err
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "margin", "--reward-model", "reward-1"]) == 0
    out = capsys.readouterr().out
    assert "open items ordered by margin (reward-1)" in out and "reward-1 margin" in out

    with Store.open(project.store_path) as store:
        task = store.task("compare")
        items = store.open_items_for_scoring(task.id)  # in queue order now
        version = store.model_version("reward-1")
        priorities = [store.item_priority(task.id, item["id"]) for item in items]
    model, tokenizer = load_reward_version(version.base_model, version.path)
    margins = [abs(a - b) for a, b in (reward_scores(model, tokenizer, [item["prompt"]] * 2, item["responses"])
                                       for item in items)]
    assert len(margins) > 5 and margins == sorted(margins)  # the queue starts where the model is least sure
    assert [p[0] for p in priorities] == list(range(1, len(items) + 1))
    assert all(p[2].startswith("reward-1 margin ") for p in priorities)

    # a committee of two: the LoRA reward model and one trained with every weight (--full, a whole model folder)
    assert main(["train", "reward", root, "--full", "--max-steps", "4", "--batch-size", "4", "--max-length", "128",
                 "--seed", "7"]) == 0
    capsys.readouterr()
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "disagreement",
                 "--reward-model", "reward-1,reward-2", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["prioritized"] == len(items) and done["reward_models"] == ["reward-1", "reward-2"]
    gaps = [h["priority"] for h in done["head"]]
    assert gaps == sorted(gaps, reverse=True) and 0 < gaps[0] <= 1  # win-probability gaps, widest first

    # two policy versions disagree too: each prefers the reply it finds likelier per token (SFT vs DPO over it)
    assert main(["import", "-p", root, str(DEMO_DATA / "sft.jsonl")]) == 0
    assert main(["train", "sft", root, "--max-steps", "4", "--batch-size", "4", "--max-length", "128"]) == 0
    assert main(["train", "dpo", root, "--parent", "sft-1", "--max-steps", "2", "--batch-size", "2",
                 "--max-length", "128"]) == 0
    capsys.readouterr()
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "disagreement", "--model", "sft-1,dpo-1",
                 "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["prioritized"] == len(items) and done["head"][0]["reason"].startswith("sft-1 gives")
    assert "dpo-1 p=" in done["head"][0]["reason"]
    with Store.open(project.store_path) as store:
        sft = store.model_version("sft-1")
    from trainers.evaluation import sequence_logps
    from trainers.generation import load_for_generation

    policy, tokenizer = load_for_generation(sft.base_model, sft.path)
    per_token = sequence_logps(policy, tokenizer, [items[0]["prompt"]], [items[0]["responses"][0]], per_token=True)
    summed = sequence_logps(policy, tokenizer, [items[0]["prompt"]], [items[0]["responses"][0]])
    assert summed[0] < per_token[0] < 0  # a mean over the reply's tokens, not their sum
