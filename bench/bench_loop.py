"""The closed loop on the demo project (issue 5), with a scripted reviewer that prefers the brand trait
(an empathetic opening and the policy that fits the customer's issue):

  1. SFT, then DPO round 1 (the demo-loop settings).
  2. Generate replies from both on the unlabeled pool prompts; a blind A/B review, DPO vs SFT, voted by the
     scripted reviewer: the reply with the trait wins; both with it is a tie, neither is 'both bad'.
  3. The leaderboard: DPO's head-to-head win rate over SFT and its 95% interval.
  4. DPO round 2: the same settings, from the same SFT version, on the preference data plus the A/B votes.
  5. Both rounds on the held-out prompts (never trained on): trait share of sampled replies, and a blind
     A/B review of each round against SFT by the same scripted reviewer.

    .venv/bin/python bench/bench_loop.py                      # ~15 minutes on 2 CPU cores
    .venv/bin/python bench/bench_loop.py --dpo-steps 100      # a quick look

Every step goes through the product's own paths (train, generate, review tasks, Labeling.submit,
leaderboard). Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "data" / "loki"


def scripted_votes(labeling, user, task_id: str, issue_of: dict, policies: dict) -> dict:
    """Vote on every item of a review: the reply with the brand trait wins."""
    from annotation.labeling import LETTERS, display_order
    from trainers.evaluation import has_brand_trait

    openings = policies["empathetic_openings"]
    counts = {"A": 0, "B": 0, "tie": 0, "both bad": 0}
    view, n = labeling.open_next(user, task_id), 0
    while view.item_id:
        n += 1
        item = labeling._content_of(task_id, view.item_id)
        issue = issue_of[item["messages"][-1]["content"]]
        policy = policies["policies"][issue]["name"]
        texts = {r["id"]: r["text"] for r in item["responses"]}
        trait = [has_brand_trait(texts[rid], policy, openings) for rid in display_order(user.name, item)]
        choice = "tie" if all(trait) else "both bad" if not any(trait) else LETTERS[trait.index(True)]
        counts[choice] += 1
        view = labeling.submit(user, task_id, view.item_id, f"bench-{task_id}-{n}", choice=choice)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", help="project folder (default: a temporary one)")
    parser.add_argument("--dpo-steps", type=int, default=800)
    parser.add_argument("--n", type=int, default=2, help="replies per pool prompt and version for the A/B review")
    parser.add_argument("--samples-per-prompt", type=int, default=2, help="held-out trait share samples")
    args = parser.parse_args()

    from annotation.labeling import Labeling, User
    from annotation.leaderboard import head_to_head, leaderboard
    from trainers.evaluation import trait_report
    from trainers.generation import load_for_generation
    from workbench import demo
    from workbench.generate import GenerateRequest, generate, resolve_versions
    from workbench.runs import TrainRequest, train
    from workbench.store import Store

    policies = json.loads((DATA / "policies.json").read_text())
    rows = [json.loads(line) for name in ("prompts.jsonl", "heldout_prompts.jsonl")
            for line in (DATA / name).read_text().splitlines()]
    issue_of = {r["prompt"][-1]["content"]: r["issue"] for r in rows}
    heldout = [json.loads(line) for line in (DATA / "heldout_prompts.jsonl").read_text().splitlines()]
    dpo_settings = json.loads(json.dumps(demo.DEMO_DPO))
    dpo_settings["trl"]["max_steps"] = args.dpo_steps
    demo.DEMO_DPO = dpo_settings
    admin, reviewer = User("admin", "admin"), User("rev", "reviewer")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.dir) if args.dir else Path(tmp) / "loop"
        first = demo.demo_loop(path, DATA, samples_per_prompt=args.samples_per_prompt)
        sft, dpo1 = first["sft"]["version"], first["dpo"]["version"]
        project = demo.load_project(path)
        sampling = {"n": args.n, "temperature": 1.0, "max_new_tokens": 96}
        with Store.open(project.store_path) as store:
            t0 = time.perf_counter()
            result = generate(project, store, GenerateRequest(versions=[sft, dpo1], tags=["pool"], sampling=sampling))
            print(f"generated {result.summary['replies']} pool replies in {time.perf_counter() - t0:.0f} s "
                  f"({result.summary['tokens_per_s']} tokens/s)", flush=True)
            labeling = Labeling(store)
            review = labeling.create_task(admin, name="ab-pool", kind="review", overlap=1, tags=["pool"],
                                          versions=[dpo1, sft], max_responses=args.n)
            counts = scripted_votes(labeling, reviewer, review.id, issue_of, policies)
            board = leaderboard(store.review_votes([review.id]), rounds=1000)
            pool = head_to_head(board, dpo1, sft)
            print(f"A/B on pool prompts, {review.items} pairs, votes {counts}: {dpo1} beats {sft} "
                  f"{pool['a_wins']}-{pool['b_wins']} ({pool['ties']} ties/both bad), win rate "
                  f"{pool['a_win_rate']:.1%} [95% {pool['low']:.1%} .. {pool['high']:.1%}]", flush=True)

            t0 = time.perf_counter()
            second = train(project, store, TrainRequest(stage="dpo", parent=sft, trl=dpo_settings["trl"]))
            if second.status != "succeeded":
                raise SystemExit(f"DPO round 2 {second.status}: {second.error}")
            dpo2 = second.run_id
            rows1 = store.model_version(dpo1).config["rows"]
            rows2 = second.version.config["rows"]
            print(f"DPO round 2 ({dpo2}) on {rows2} preference rows (round 1: {rows1}), "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)

            shares = {}
            for version in (sft, dpo1, dpo2):
                (spec,) = resolve_versions(project, store, [version])
                model, tokenizer = load_for_generation(spec["base_model"], spec["adapter"], spec["stacked_on"])
                shares[version] = trait_report(model, tokenizer, heldout, policies,
                                               samples_per_prompt=args.samples_per_prompt)
                print(f"held-out trait share {version}: {shares[version]['trait_share']:.1%}, degenerate "
                      f"{shares[version]['degenerate_share']:.1%}", flush=True)

            generate(project, store, GenerateRequest(versions=[sft, dpo1, dpo2], tags=["heldout"],
                                                     sampling=sampling))
            held = {}
            for version in (dpo1, dpo2):
                task = labeling.create_task(admin, name=f"ab-heldout-{version}", kind="review", overlap=1,
                                            versions=[version, sft], max_responses=args.n)
                votes = scripted_votes(labeling, reviewer, task.id, issue_of, policies)
                held[version] = head_to_head(leaderboard(store.review_votes([task.id]), rounds=1000), version, sft)
                h = held[version]
                print(f"A/B on held-out prompts, {version} vs {sft} ({task.items} pairs, votes {votes}): "
                      f"{h['a_wins']}-{h['b_wins']}, win rate {h['a_win_rate']:.1%} "
                      f"[95% {h['low']:.1%} .. {h['high']:.1%}]", flush=True)
    print(f"claim 1, DPO beats SFT with the 95% interval above 50%: pool {pool['low'] > 0.5}, "
          f"held-out {held[dpo1]['low'] > 0.5}")
    print(f"claim 2, round 2 (with the A/B votes) no worse than round 1: trait share "
          f"{shares[dpo2]['trait_share']:.1%} vs {shares[dpo1]['trait_share']:.1%}; held-out win rate vs SFT "
          f"{held[dpo2]['a_win_rate']:.1%} vs {held[dpo1]['a_win_rate']:.1%}")
    print(f"whole run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
