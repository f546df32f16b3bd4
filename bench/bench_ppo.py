"""PPO on the demo project (issue 4): does PPO raise the reward model's mean score on held-out prompts over
the SFT version it starts from, when that SFT version is well trained (the demo's own SFT settings)?

  1. SFT with the demo settings (the 2M tiny model, every weight, 3 epochs: the demo-loop's SFT).
  2. A reward model (LoRA, --val-split 0.1 so the gate has pairs it never trained on).
  3. PPO from the SFT version with that reward model (`workbench train ppo`), for each learning rate asked.
  4. Every version samples replies to all 120 held-out prompts (products no training row mentions), several
     samples each at temperature 1.0, and the reward model scores them: mean, paired gain per prompt with
     its standard error, and the share of degenerate replies.

    .venv/bin/python bench/bench_ppo.py                                  # ~5 minutes on 2 CPU cores
    .venv/bin/python bench/bench_ppo.py --episodes 128 --lrs 1e-4

Every step goes through the product's own paths. Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "data" / "loki"


def scores_of(project, store, version: str, reward, rows: list[dict], samples: int) -> tuple[list[float], dict]:
    """Mean reward per prompt over `samples` sampled replies, and what the replies look like: degenerate share,
    mean length in words and the brand-trait share (a reward model that learned length can be raised by
    longer replies alone; the trait is what the human labels were about)."""
    from trainers.evaluation import has_brand_trait, is_degenerate, sample_replies
    from trainers.generation import load_for_generation
    from trainers.models import reward_scores
    from workbench.generate import resolve_versions

    (spec,) = resolve_versions(project, store, [version])
    model, tokenizer = load_for_generation(spec["base_model"], spec["adapter"], spec["stacked_on"])
    policies = json.loads((DATA / "policies.json").read_text())
    prompts = [r["prompt"] for r in rows]
    per_prompt = [0.0] * len(prompts)
    replies = []
    for seed in range(samples):
        batch = sample_replies(model, tokenizer, prompts, max_new_tokens=48, seed=100 + seed)
        replies += list(zip(rows, batch, strict=True))
        for i, s in enumerate(reward_scores(reward[0], reward[1], prompts, batch)):
            per_prompt[i] += s / samples
    looks = {"degenerate": sum(is_degenerate(r) for _, r in replies) / len(replies),
             "words": statistics.mean(len(r.split()) for _, r in replies),
             "trait": sum(has_brand_trait(r, policies["policies"][row["issue"]]["name"], policies["empathetic_openings"])
                          for row, r in replies) / len(replies)}
    return per_prompt, looks


def _looks(looks: dict) -> str:
    return f"{looks['words']:.1f} words per reply, brand trait {looks['trait']:.1%}, degenerate {looks['degenerate']:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=1024, help="PPO total_episodes")
    parser.add_argument("--lrs", default="1e-3", help="PPO learning rates, one run each")
    parser.add_argument("--reward-steps", type=int, default=100)
    parser.add_argument("--samples", type=int, default=2, help="sampled replies per held-out prompt and version")
    args = parser.parse_args()

    from trainers.models import load_reward_version
    from workbench import demo
    from workbench.runs import TrainRequest, train
    from workbench.store import Store

    heldout = [json.loads(line) for line in (DATA / "heldout_prompts.jsonl").read_text().splitlines()]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        project, _ = demo.create_demo_project(Path(tmp) / "ppo", DATA)
        with Store.open(project.store_path) as store:
            runs = {}
            for name, request in (
                    ("sft", TrainRequest(stage="sft", adapter=demo.DEMO_SFT["adapter"], trl=demo.DEMO_SFT["trl"])),
                    ("reward", TrainRequest(stage="reward", val_split=0.1,
                                            trl={"max_steps": args.reward_steps, "per_device_train_batch_size": 8}))):
                t0 = time.perf_counter()
                result = train(project, store, request)
                if result.status != "succeeded":
                    raise SystemExit(f"{name} {result.status}: {result.error}")
                runs[name] = result.run_id
                print(f"{name} ({result.run_id}) in {time.perf_counter() - t0:.0f} s; "
                      f"{json.dumps({k: v for k, v in result.version.metrics.items() if k in ('train_loss', 'pairwise_accuracy')})}",
                      flush=True)
            rm = store.model_version(runs["reward"])
            reward = load_reward_version(rm.base_model, rm.path)
            base, looks = scores_of(project, store, runs["sft"], reward, heldout, args.samples)
            print(f"{runs['sft']}: mean held-out reward {statistics.mean(base):.3f}; {_looks(looks)}", flush=True)
            for lr in args.lrs.split(","):
                t0 = time.perf_counter()
                result = train(project, store, TrainRequest(
                    stage="ppo", parent=runs["sft"], reward_model=runs["reward"],
                    trl={"total_episodes": args.episodes, "learning_rate": float(lr), "per_device_train_batch_size": 8}))
                if result.status != "succeeded":
                    print(f"PPO lr {lr}: {result.status}: {result.error}", flush=True)
                    continue
                seconds = time.perf_counter() - t0
                m = result.version.metrics
                after, looks = scores_of(project, store, result.run_id, reward, heldout, args.samples)
                gains = [a - b for a, b in zip(after, base, strict=True)]
                se = statistics.stdev(gains) / math.sqrt(len(gains))
                print(f"PPO lr {lr} ({result.run_id}, {args.episodes} episodes, {seconds:.0f} s; gate "
                      f"{m['reward_gate']['accuracy']:.2f}): run's own 16-prompt check {m['heldout_reward_before']:.3f}"
                      f" -> {m['heldout_reward_after']:.3f}; all {len(heldout)} held-out prompts x {args.samples}: "
                      f"{statistics.mean(base):.3f} -> {statistics.mean(after):.3f}, paired gain "
                      f"{statistics.mean(gains):+.3f} ± {1.96 * se:.3f} (95%), raised on "
                      f"{sum(g > 0 for g in gains)} of {len(gains)} prompts; {_looks(looks)}", flush=True)
    print(f"whole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
