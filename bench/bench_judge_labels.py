"""What judge labels are worth (issue 21): a reward model trained on N human pairs, against the same N plus a
judge's verdicts on a pool of pairs no person labeled, both scored on held-out pairs nobody trained on.

The demo's 500 preference pairs are split, seeded: the 87 about the Loki Watch (53 prompts) are the test (held out from
every run); of the rest, --judge-pairs train the judge (a reward model of its own, reward-1), --human pairs are
the people's labels, and the remainder is the unlabeled pool, a pairwise task the judge answers through
`workbench judge`. Every run trains through `workbench train reward` with the same settings; what differs is
which labels its export reads:

  human        --source human.jsonl                                     (N human pairs)
  +judge       --source human.jsonl --source "judge job *" --judges include   (N + every verdict)
  +accepted    the same with --judges accepted, after `judges accept --min-probability P` (N + the sure ones)
  +truth       --source human.jsonl --source pool.jsonl                 (N + the pool's true labels: the ceiling)

    .venv/bin/python bench/bench_judge_labels.py                       # the tiny model, N = 40 (about 6 minutes)
    .venv/bin/python bench/bench_judge_labels.py --human 20,40,80 --seeds 0,1

Accuracy is the share of the 87 test pairs whose chosen reply the model scores above the rejected one, with a
Wilson 95% interval. Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = ROOT / "data" / "loki"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy(project, version_id: str, test: list[dict]) -> tuple[int, int]:
    from trainers.models import load_reward_version, reward_scores
    from workbench.store import Store

    with Store.open(project.store_path, read_only=True) as store:
        version = store.model_version(version_id)
    model, tokenizer = load_reward_version(version.base_model, version.path)
    prompts = [r["prompt"] for r in test]
    chosen = reward_scores(model, tokenizer, prompts, [r["chosen"][-1]["content"] for r in test])
    rejected = reward_scores(model, tokenizer, prompts, [r["rejected"][-1]["content"] for r in test])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)), len(test)


def one_round(args, human_n: int, seed: int) -> dict:
    from bench.bench_judges import new_project, watch_split
    from workbench.cli import main as wb
    from workbench.config import load_project
    from workbench.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-judge-labels-"))
    root = new_project(tmp, args.base_model)
    test, rest = watch_split()
    random.Random(seed).shuffle(rest)
    parts = {"judge_train.jsonl": rest[:args.judge_pairs], "human.jsonl": rest[args.judge_pairs:args.judge_pairs + human_n],
             "pool.jsonl": rest[args.judge_pairs + human_n:]}
    for name, part in parts.items():
        (tmp / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    # the test pairs are never imported: no run can read them
    assert wb(["import", "-p", root, *(str(tmp / n) for n in parts)]) == 0
    assert wb(["tasks", "add", "pool", "-p", root, "--kind", "pairwise", "--source", "pool.jsonl"]) == 0
    common = ["--max-steps", str(args.steps), "--batch-size", "8", "--max-length", "256", "--seed", str(seed)]
    project = load_project(root)
    times = {}

    def train(label: str, *extra: str) -> str:
        t0 = time.perf_counter()
        assert wb(["train", "reward", root, *common, *extra]) == 0, label
        times[label] = round(time.perf_counter() - t0, 1)
        with Store.open(project.store_path, read_only=True) as store:
            return max((v["id"] for v in store.stats()["model_versions"] if v["stage"] == "reward"),
                       key=lambda v: int(v.split("-")[1]))

    judge_version = train("judge", "--source", "judge_train.jsonl")
    assert wb(["judges", "add", "rm", "-p", root, "--reward-model", judge_version]) == 0
    assert wb(["judge", "pool", "-p", root, "--judge", "rm", "--all-items"]) == 0
    assert wb(["judges", "accept", "pool", "-p", root, "--judge", "rm", "--min-probability",
               str(args.min_probability)]) == 0
    with Store.open(project.store_path, read_only=True) as store:
        verdicts = store.judgements(store.task("pool").id)
    truth = {(r["prompt"][-1]["content"], r["chosen"][-1]["content"]) for r in parts["pool.jsonl"]}
    agreed = accepted_right = accepted = 0
    with Store.open(project.store_path, read_only=True) as store:
        text = dict(store.cursor().execute("SELECT id, text FROM responses").fetchall())
        prompt = {p: m[-1]["content"] for p, m in store.cursor().execute("SELECT id, messages FROM prompts").fetchall()}
    for v in verdicts:
        if v["payload"].get("as") != "preference":
            continue
        right = (prompt[v["prompt_id"]], text[v["chosen_id"]]) in truth
        agreed += right
        if v["payload"].get("accepted_by"):
            accepted += 1
            accepted_right += right
    arms = {"human": ["--source", "human.jsonl"],
            "+judge": ["--source", "human.jsonl", "--source", "judge job *", "--judges", "include"],
            "+accepted": ["--source", "human.jsonl", "--source", "judge job *", "--source", "accepted by *",
                          "--judges", "accepted"],
            "+truth": ["--source", "human.jsonl", "--source", "pool.jsonl"]}
    out = {"human_pairs": human_n, "seed": seed, "pool": len(parts["pool.jsonl"]), "judge_train": args.judge_pairs,
           "verdicts": len(verdicts), "judge_right": agreed, "accepted": accepted, "accepted_right": accepted_right,
           "arms": {}}
    for arm, extra in arms.items():
        if arm not in args.arms.split(","):
            continue
        version = train(arm, *extra)
        k, n = accuracy(project, version, test)
        out["arms"][arm] = {"version": version, "right": k, "pairs": n, "accuracy": k / n, "ci": wilson(k, n),
                            "seconds": times[arm]}
        print(f"N={human_n} seed {seed} {arm:10s} {k}/{n} = {k / n:.1%} (95% CI {wilson(k, n)[0]:.1%}-"
              f"{wilson(k, n)[1]:.1%}), {times[arm]:.0f} s", file=sys.stderr, flush=True)
    out["judge_accuracy_on_test"] = dict(zip(("right", "pairs"), accuracy(project, judge_version, test), strict=True))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="tiny")
    parser.add_argument("--human", default="40", help="N: human pairs (comma-separated for several)")
    parser.add_argument("--judge-pairs", type=int, default=150, help="pairs the judge (a reward model) trains on")
    parser.add_argument("--steps", type=int, default=60, help="reward training steps of every run")
    parser.add_argument("--min-probability", type=float, default=0.7, help="judges accept: how sure a verdict")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--arms", default="human,+judge,+accepted,+truth")
    args = parser.parse_args()
    results = [one_round(args, int(n), int(s)) for n in args.human.split(",") for s in args.seeds.split(",")]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
