"""What the loop does to a real pretrained model (issue 18): SmolLM2-135M-Instruct, the base model, after SFT
(LoRA) and after DPO (LoRA over the SFT version), on the demo's held-out prompts (products no training row
mentions).

    .venv/bin/python bench/bench_real_model.py                       # 120 prompts, the demo's settings
    .venv/bin/python bench/bench_real_model.py --heldout 24 --sft-steps 10 --dpo-steps 4   # a quick look

Each of the three models samples one reply per prompt at temperature 1.0 (96 new tokens), with the same seeds,
so the three replies to a prompt are paired: the paired difference of two stages is the mean, over prompts, of
(trait in the later reply) - (trait in the earlier one), with a 95% normal interval. Shares carry Wilson 95%
intervals. Forgetting is each version's own after-run figure (trainers/evaluation.py `forgetting_check`: the
per-token log-prob change of a general passage and of general questions' replies against the base model).
Training goes through the product's path (`workbench.runs.train`), on a project built as `workbench demo DIR
--base-model smollm2` builds it. Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share: honest near 0 and 1, where the normal one is not."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired(later: list[bool], earlier: list[bool], z: float = 1.96) -> tuple[float, float, float]:
    """Mean paired difference of two stages' flags on the same prompts and seeds, with a 95% interval."""
    diffs = [int(a) - int(b) for a, b in zip(later, earlier, strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else 0.0
    return mean, mean - z * sd / math.sqrt(n), mean + z * sd / math.sqrt(n)


def report(name: str, flags: dict, seconds: float, forgetting: tuple | None) -> dict:
    n = len(flags["trait"])
    trait, bad = sum(flags["trait"]), sum(flags["degenerate"])
    return {"stage": name, "samples": n, "trait_share": trait / n, "trait_ci": wilson(trait, n),
            "degenerate_share": bad / n, "degenerate_ci": wilson(bad, n), "seconds": seconds,
            "forgetting": forgetting, "trait": flags["trait"], "degenerate": flags["degenerate"],
            "opening_share": sum(flags["opening"]) / n, "policy_share": sum(flags["policy"]) / n,
            "replies": flags["replies"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="the demo project folder (default: a fresh temporary one)")
    parser.add_argument("--base-model", default="smollm2", help="what `workbench demo --base-model` takes")
    parser.add_argument("--heldout", type=int, default=120, help="held-out prompts sampled (of 120)")
    parser.add_argument("--sft-steps", type=int, help="default: the demo's (DEMO_SFT_LORA)")
    parser.add_argument("--sft-lr", type=float, help="default: the demo's")
    parser.add_argument("--replay", type=float, help="SFT's general replay share (default: the demo's)")
    parser.add_argument("--dpo-steps", type=int, help="default: the demo's (DEMO_DPO_LORA)")
    parser.add_argument("--dpo-lr", type=float, help="default: the demo's")
    parser.add_argument("--dpo-beta", type=float, help="default: the demo's")
    parser.add_argument("--out", type=Path, help="write the figures (with every reply's flags) as JSON here")
    args = parser.parse_args()

    from trainers.evaluation import trait_report
    from trainers.models import load_tokenizer, load_version
    from workbench.demo import DEMO_DPO_LORA, DEMO_SFT_LORA, create_demo_project, default_data_dir
    from workbench.runs import TrainRequest, train
    from workbench.store import Store

    data = default_data_dir()
    heldout = [json.loads(line) for line in (data / "heldout_prompts.jsonl").read_text().splitlines()][:args.heldout]
    policies = json.loads((data / "policies.json").read_text())
    sft = json.loads(json.dumps(DEMO_SFT_LORA))
    dpo = json.loads(json.dumps(DEMO_DPO_LORA))
    if args.replay is not None:
        sft["replay"] = args.replay
    for settings, key, value in ((sft, "max_steps", args.sft_steps), (sft, "learning_rate", args.sft_lr),
                                 (dpo, "max_steps", args.dpo_steps),
                                 (dpo, "learning_rate", args.dpo_lr), (dpo, "beta", args.dpo_beta)):
        if value is not None:
            settings["trl"][key] = value
    root = args.project or Path(tempfile.mkdtemp(prefix="bench-real-")) / "loki-real"
    started = time.perf_counter()
    project, _ = create_demo_project(root, data, base_model=args.base_model, log=lambda *_: None)
    base = project.base_model_path()
    tokenizer = load_tokenizer(base)
    print(f"project {project.root} on {base} ({time.perf_counter() - started:.0f} s); {len(heldout)} prompts; "
          f"SFT {sft['trl']}, replay {sft.get('replay', 0.0)}; DPO {dpo['trl']}", flush=True)

    openings = tuple(" ".join(o.split()[:3]) for o in policies["empathetic_openings"])

    def sample(model) -> dict:
        """The trait's two halves are kept apart too (an empathetic opening; the issue's policy by name), so a
        run that learns one and not the other shows which."""
        out = trait_report(model, tokenizer, heldout, policies, samples_per_prompt=1)
        names = [policies["policies"][r["issue"]]["name"] for r in heldout]
        return {"trait": out["trait_flags"], "degenerate": out["degenerate_flags"], "replies": out["replies"],
                "opening": [rep.lstrip().startswith(openings) for rep in out["replies"]],
                "policy": [name in rep for name, rep in zip(names, out["replies"], strict=True)]}

    rows = []
    t0 = time.perf_counter()
    rows.append(report("base", sample(load_version(base, None)), time.perf_counter() - t0, (0.0, 0.0)))
    parent = None
    with Store.open(project.store_path) as store:
        for stage, settings in (("sft", sft), ("dpo", dpo)):
            t0 = time.perf_counter()
            result = train(project, store, TrainRequest(stage=stage, parent=parent, trl=settings["trl"],
                                                          replay=settings.get("replay", 0.0)))
            if result.status != "succeeded":
                print(f"{stage} run {result.run_id} {result.status}: {result.error}")
                return 1
            trained = time.perf_counter() - t0
            v = result.version
            spec = v.load_spec()
            flags = sample(load_version(spec["base_model"], spec["adapter"], stacked_on=spec["stacked_on"]))
            m = v.metrics
            rows.append(report(stage, flags, time.perf_counter() - t0,
                               (m.get("forgetting_logp_delta"), m.get("forgetting_chat_logp_delta"))))
            rows[-1]["train_seconds"], rows[-1]["warnings"] = trained, result.warnings
            parent = result.run_id
            print(f"{stage} {result.run_id}: trained in {trained:.0f} s; warnings: {result.warnings or 'none'}",
                  flush=True)
    total = time.perf_counter() - started

    print("\n| model | trait share (95% CI) | opening / policy named | degenerate (95% CI) | forgetting passage / "
          "replies | time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        f = r["forgetting"]
        forget = "—" if f is None or f[0] is None else f"{f[0]:+.3f} / {f[1]:+.3f}"
        print(f"| {r['stage']} | {r['trait_share']:.1%} ({r['trait_ci'][0]:.1%}-{r['trait_ci'][1]:.1%}) | "
              f"{r['opening_share']:.1%} / {r['policy_share']:.1%} | "
              f"{r['degenerate_share']:.1%} ({r['degenerate_ci'][0]:.1%}-{r['degenerate_ci'][1]:.1%}) | {forget} | "
              f"{r['seconds']:.0f} s |")
    by = {r["stage"]: r for r in rows}
    diffs = {}
    for later, earlier in (("sft", "base"), ("dpo", "sft"), ("dpo", "base")):
        for what in ("trait", "degenerate"):
            d = paired(by[later][what], by[earlier][what])
            diffs[f"{what} {later}-{earlier}"] = d
            print(f"paired {what} {later} - {earlier}: {d[0]:+.1%} (95% CI {d[1]:+.1%} to {d[2]:+.1%})")
    print(f"whole loop (project, three samplings, two runs): {total:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "paired": diffs, "seconds": total, "sft": sft, "dpo": dpo},
                                       indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
