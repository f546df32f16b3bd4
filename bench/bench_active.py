"""Active selection (issue 6): does labeling the pairs a reward model is least sure of first give a better
reward model for the same number of labels than labeling pairs in random order?

The demo's preference pairs (one pair per prompt) are split by prompt into a pool and a held-out test set.
The pool's chosen and rejected replies are imported as plain responses (no labels), and two pairwise tasks
are made over the pool, one per arm. A scripted annotator answers each served item with the pair's known
winner, through `Labeling.open_next`/`submit` as the Label tab does.

  1. Both arms label the same random seed items first; a reward model (rm-seed) trains on them.
  2. Active arm: `order_queue` by margin with the newest reward model (a scoring job, as `tasks prioritize`
     runs it), then label the next BUDGET/ROUNDS items the queue serves. Random arm: a random queue order,
     then the next BUDGET/ROUNDS items.
  3. After each round a reward model trains from scratch on each arm's labels so far (the same settings) and
     is scored on the held-out pairs (pairwise accuracy, mean margin); the active arm's newest one orders
     the next round.

Repeated over several seeds (the split, the seed items, the random order and the training seed change).

    .venv/bin/python bench/bench_active.py                     # 3 seeds, 3 rounds of 20 labels, ~5 minutes
    .venv/bin/python bench/bench_active.py --seeds 1 --budget 20

Every step goes through the product's own paths. Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "data" / "loki"


def split(path: Path, seed: int, test_prompts: int) -> tuple[list[dict], list[dict]]:
    """One pair per prompt for the pool (the first seen); every pair of a test prompt for the test set. The
    file holds TRL conversational preference rows (prompt, chosen, rejected as message lists)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    prompts = sorted({r["prompt"][-1]["content"] for r in rows})
    random.Random(seed).shuffle(prompts)
    test = set(prompts[:test_prompts])
    pool, seen = [], set()
    for r in rows:
        text = r["prompt"][-1]["content"]
        if text not in test and text not in seen:
            seen.add(text)
            pool.append(r)
    return pool, [r for r in rows if r["prompt"][-1]["content"] in test]


def write_pool(folder: Path, pool: list[dict]) -> list[Path]:
    """The pool's replies as unlabeled responses: two demonstration files, one per side."""
    paths = []
    for side in ("chosen", "rejected"):
        path = folder / f"pool-{side}.jsonl"
        path.write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r[side]}) + "\n" for r in pool))
        paths.append(path)
    return paths


def answer(labeling, user, task_id: str, winners: set[str], n: int, tag: str) -> int:
    """The scripted annotator: answer the next n items the queue serves with the known winner."""
    from annotation.labeling import LETTERS, display_order

    view, done = labeling.open_next(user, task_id), 0
    while view.item_id and done < n:
        item = labeling._content_of(task_id, view.item_id)
        texts = {r["id"]: r["text"] for r in item["responses"]}
        order = display_order(user.name, item)
        choice = next(LETTERS[i] for i, rid in enumerate(order) if texts[rid] in winners)
        done += 1
        view = labeling.submit(user, task_id, view.item_id, f"{tag}-{done}", choice=choice)
    return done


def train_reward(project, store, annotator: str, settings: dict, seed: int) -> str:
    from workbench.runs import TrainRequest, train
    from workbench.store import ExportFilters

    result = train(project, store, TrainRequest(stage="reward", adapter=settings["adapter"],
                                                trl={**settings["trl"], "seed": seed},
                                                filters=ExportFilters(annotators=[annotator])))
    if result.status != "succeeded":
        raise SystemExit(f"reward run {result.run_id} {result.status}: {result.error}")
    return result.run_id


def held_out(store, version: str, test: list[dict]) -> dict:
    from trainers.models import load_reward_version, load_tokenizer
    from trainers.reward import pairwise

    v = store.model_version(version)
    model, _ = load_reward_version(v.base_model, v.path)
    tokenizer = load_tokenizer(v.base_model)
    # 91% of the demo's pairs have the longer reply chosen: a model that learned length alone gets those right.
    # The rest are the pairs only the content decides (a polite reply with the wrong policy beats a short one).
    counter = [r for r in test if len(r["chosen"][0]["content"]) <= len(r["rejected"][0]["content"])]
    return pairwise(model, tokenizer, test) | {"counter_length": pairwise(model, tokenizer, counter)["pairwise_accuracy"],
                                               "counter_pairs": len(counter)}


def one_seed(seed: int, args, folder: Path) -> dict:
    from annotation.labeling import Labeling, User
    from trainers.tiny_model import default_corpus
    from workbench.demo import demo_corpus
    from workbench.ingest import import_files
    from workbench.projects import init_project
    from workbench.scoring import ScoreRequest, order_queue
    from workbench.store import Store

    pool, test = split(Path(args.data), seed, args.test_prompts)
    winners = {r["chosen"][0]["content"] for r in pool}
    project = init_project(folder / f"active-{seed}", corpus=demo_corpus(DATA) + default_corpus(), name="active")
    settings = {"adapter": {"full": args.full}, "trl": {"num_train_epochs": args.epochs, "learning_rate": args.lr,
                                                        "per_device_train_batch_size": 8, "logging_steps": 10}}
    admin = User("admin", "admin")
    out = {"pool": len(pool), "test_pairs": len(test)}
    with Store.open(project.store_path) as store:
        import_files(store, write_pool(folder, pool), max_field_bytes=project.config.max_field_bytes, tags=["pool"])
        labeling = Labeling(store)
        tasks = {arm: labeling.create_task(admin, name=arm, kind="pairwise", overlap=1, tags=["pool"],
                                           max_responses=2) for arm in ("active", "random")}
        pairs = [frozenset(i["response_ids"]) for i in store.open_items_for_scoring(tasks["active"]["id"])]
        rng = random.Random(seed)
        seed_pairs = set(rng.sample(pairs, args.seed_labels))
        for arm, task in tasks.items():  # the same seed pairs first in both arms
            ids = [i["id"] for i in store.open_items_for_scoring(task.id) if frozenset(i["response_ids"]) in seed_pairs]
            store.set_queue_order(task.id, {i: (1.0, "seed") for i in ids}, {"by": "seed"})
            answer(labeling, User(arm, "annotator"), task.id, winners, args.seed_labels, f"seed-{arm}")
        t0 = time.perf_counter()
        rm_seed = train_reward(project, store, "active", settings, seed)
        out["seed"] = held_out(store, rm_seed, test)
        out["train_s"] = time.perf_counter() - t0
        ids = [i["id"] for i in store.open_items_for_scoring(tasks["random"]["id"])]
        store.set_queue_order(tasks["random"]["id"], {i: (rng.random(), "random") for i in ids}, {"by": "random"})
        latest = {"active": rm_seed}
        out["curve"] = {"active": [], "random": []}
        step = args.budget // args.rounds
        for k in range(args.rounds):  # batch-mode active learning: reorder by the newest reward model each round
            t0 = time.perf_counter()
            ordered = order_queue(project, store, ScoreRequest("active", "margin", [latest["active"]]))  # a scoring job
            if ordered.status != "succeeded":
                raise SystemExit(f"scoring job {ordered.job_id} {ordered.status}: {ordered.error}")
            out["prioritize_s"] = time.perf_counter() - t0
            out["prioritized"] = ordered.done["prioritized"]
            for arm, task in tasks.items():
                answer(labeling, User(arm, "annotator"), task.id, winners, step, f"{arm}-{k}")
                latest[arm] = train_reward(project, store, arm, settings, seed)
                scored = held_out(store, latest[arm], test)
                out["curve"][arm].append(scored["pairwise_accuracy"])
                out.setdefault("counter", {}).setdefault(arm, []).append(scored["counter_length"])
        out["picked"] = {arm: _picked_hardness(store, task.id, arm, pool) for arm, task in tasks.items()}
        for arm in tasks:
            out[arm] = held_out(store, latest[arm], test)
    return out


def _picked_hardness(store, task_id: str, annotator: str, pool: list[dict]) -> float:
    """Share of the arm's labeled pairs whose rejected reply opens like a chosen one would (hard pairs: a polite
    reply with the wrong policy) rather than a curt or generic one: what margin selection should favour."""
    rejected = {r["rejected"][0]["content"] for r in pool}
    answers = [a for a in store.task_answers(task_id) if a["annotator"] == annotator]
    loser = [store.response_text(a["rejected_id"]) for a in answers]
    hard = [t for t in loser if t in rejected and len(t.split()) >= 25]
    return len(hard) / max(len(loser), 1)


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(DATA / "preferences.jsonl"),
                        help="TRL conversational preference rows (JSON lines); the demo's by default")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-labels", type=int, default=10)
    parser.add_argument("--budget", type=int, default=60, help="labels per arm after the seed")
    parser.add_argument("--rounds", type=int, default=3, help="reorder by the newest reward model this many times")
    parser.add_argument("--test-prompts", type=int, default=100)
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--full", action="store_true", help="train every weight of the tiny model, not LoRA")
    args = parser.parse_args()
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            r = one_seed(seed, args, Path(tmp))
            results.append(r)
            print(f"seed {seed}: pool {r['pool']} pairs, test {r['test_pairs']} pairs; held-out accuracy "
                  f"rm-seed ({args.seed_labels} labels) {r['seed']['pairwise_accuracy']:.3f}, "
                  f"active {r['active']['pairwise_accuracy']:.3f}, random {r['random']['pairwise_accuracy']:.3f} "
                  f"({args.seed_labels + args.budget} labels each); mean margin active "
                  f"{r['active']['mean_margin']:.3f}, random {r['random']['mean_margin']:.3f}; hard pairs labeled "
                  f"active {r['picked']['active']:.0%}, random {r['picked']['random']:.0%}; prioritize "
                  f"{r['prioritized']} items in {r['prioritize_s']:.1f} s (a reward run {r['train_s']:.0f} s); accuracy "
                  f"after each round active {_fmt(r['curve']['active'])}, random {_fmt(r['curve']['random'])}; on the "
                  f"{r['seed']['counter_pairs']} pairs whose chosen reply is not the longer: rm-seed "
                  f"{r['seed']['counter_length']:.3f}, active {_fmt(r['counter']['active'])}, random "
                  f"{_fmt(r['counter']['random'])}",
                  flush=True)
    act = [r["active"]["pairwise_accuracy"] for r in results]
    rnd = [r["random"]["pairwise_accuracy"] for r in results]
    wins = sum(a > b for a, b in zip(act, rnd, strict=True))
    cact = [r["counter"]["active"][-1] for r in results]
    crnd = [r["counter"]["random"][-1] for r in results]
    print(f"mean accuracy on pairs whose chosen reply is not the longer: active {statistics.mean(cact):.3f}, "
          f"random {statistics.mean(crnd):.3f}")
    print(f"mean held-out accuracy active {statistics.mean(act):.3f}, random {statistics.mean(rnd):.3f}, "
          f"ratio {statistics.mean(act) / statistics.mean(rnd):.3f}; active better in {wins} of {len(act)} seeds")
    print(f"whole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
