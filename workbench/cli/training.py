"""Models: train a stage into a new model version, generate replies from versions, export a version."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.cli import options

# What a training run prints as it goes and at the end, where the stage reports it.
LIVE_FIGURES = ("loss", "eval_loss", "learning_rate", "rewards/accuracies", "rewards/margins", "logps/chosen",
                "accuracy", "margin", "eval_accuracy", "objective/scores", "objective/kl")
FINAL_FIGURES = ("train_tokens", "train_loss", "eval_loss", "pairwise_accuracy", "mean_margin", "eval_rewards/accuracies",
                 "eval_rewards/margins", "kl_to_reference", "chosen_logp_first", "chosen_logp_last", "degenerate_share",
                 "heldout_reward_before", "heldout_reward_after")


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.runs import TrainRequest, train
    from workbench.store import Store

    project = options.load(args)
    request = TrainRequest.from_options(
        args.stage, algorithm=args.algorithm, parent=args.parent, reward_model=args.reward_model,
        min_reward_accuracy=args.min_reward_accuracy, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        max_length=args.max_length, max_steps=args.max_steps, seed=args.seed, val_split=args.val_split,
        replay=args.replay,
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=args.target_modules, layers=args.layers, qlora=args.qlora, full=args.full, beta=args.beta,
        loss=args.loss, loss_weights=args.loss_weights, settings=args.set, filters=options.filters(args),
        accelerate_config=args.accelerate_config, resume=args.resume)

    def show(m: dict) -> None:
        figures = "  ".join(f"{k}={m[k]:.4g}" for k in LIVE_FIGURES if isinstance(m.get(k), int | float))
        if figures:
            print(f"  step {m['step']:>5}  {figures}", flush=True)

    with Store.open(project.store_path) as store:
        print(f"training {args.stage} on {project.config.name} (base {project.base_model_path()})", flush=True)
        result = train(project, store, request, on_metrics=show)
    if result.status != "succeeded":
        print(f"workbench train: run {result.run_id} {result.status}: {result.error}", file=sys.stderr)
        print(f"  logs: {result.run_dir}/stderr.log", file=sys.stderr)
        return 1
    metrics = result.version.metrics
    print(f"model version {result.run_id}: adapter in {result.version.path}")
    for key in FINAL_FIGURES:
        value = metrics.get(key)
        if isinstance(value, int | float):
            print(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value:.4g}")
    for sample in metrics.get("samples", [])[:3]:
        print(f"  sample: {sample['prompt'][:60]!r} -> {sample['reply'][:100]!r}")
    for warning in result.warnings:
        print(f"  WARNING: {warning}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from workbench.generate import GenerateRequest, generate
    from workbench.store import Store

    project = options.load(args)
    sampling = {k: v for k, v in {"n": args.n, "temperature": args.temperature, "top_p": args.top_p,
                                  "top_k": args.top_k, "max_new_tokens": args.max_new_tokens,
                                  "repetition_penalty": args.repetition_penalty, "seed": args.seed}.items()
                if v is not None}
    request = GenerateRequest(versions=[v.strip() for v in args.versions.split(",") if v.strip()],
                              sources=args.source or [], tags=args.tag or [], query=args.query, limit=args.limit,
                              sampling=sampling, batch_size=args.batch_size, backend=args.backend,
                              skip_existing=args.skip_existing)

    def show(progress: dict) -> None:
        if progress.get("total"):
            print(f"  {progress['done']}/{progress['total']} replies", flush=True)

    with Store.open(project.store_path) as store:
        result = generate(project, store, request, on_progress=show)
    if result.status != "succeeded":
        print(f"workbench generate: job {result.job_id} {result.status}: {result.error}", file=sys.stderr)
        print(f"  logs: {result.job_dir}/stderr.log", file=sys.stderr)
        return 1
    summary = result.summary
    print(f"job {result.job_id}: {summary['replies']} replies ({result.added} new responses) from "
          f"{args.versions} with {summary['backend']}"
          + (f" ({summary['why_not_vllm']})" if summary.get("why_not_vllm") else "")
          + f"; {summary['tokens']} tokens in {summary['seconds']} s = {summary['tokens_per_s']} tokens/s")
    return 0


def cmd_export_version(args: argparse.Namespace) -> int:
    from workbench.store import Store
    from workbench.versions import VersionError, export_version

    project = options.load(args)
    with Store.open(project.store_path) as store:
        version = store.model_version(args.version)
    if version is None:
        raise VersionError(f"no model version {args.version!r} (see `workbench stats`)")
    out = export_version(version, args.out, merge=args.merge)
    print(f"wrote {args.version} ({'merged model' if args.merge else 'adapter'}) to {out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one stage (sft, reward, dpo, kto, ppo) into a new model version")
    p.add_argument("stage", choices=["sft", "reward", "dpo", "kto", "ppo"])
    options.project(p, positional=True)
    p.add_argument("--parent", help="model version to start from (its adapter is continued; DPO's reference)")
    p.add_argument("--reward-model", help="ppo: the reward model version that scores the policy's replies")
    p.add_argument("--min-reward-accuracy", type=float,
                   help="ppo: refuse to start unless the reward model ranks at least this share of held-out human "
                        "pairs right (default 0.6; 0 turns the check off)")
    p.add_argument("--algorithm", choices=["ppo", "rloo"], default="ppo",
                   help="ppo: PPO (trl.experimental) or RLOO (TRL's maintained RLOOTrainer)")
    g = p.add_argument_group("training (TRL's config fields)")
    g.add_argument("--epochs", type=float)
    g.add_argument("--lr", type=float, help="learning rate")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--max-length", type=int)
    g.add_argument("--max-steps", type=int)
    g.add_argument("--seed", type=int)
    g.add_argument("--beta", type=float, help="dpo, kto: KL strength")
    g.add_argument("--loss", type=lambda s: s.split(","), help="dpo: loss types, e.g. sigmoid or ipo or sigmoid,sft")
    g.add_argument("--loss-weights", type=lambda s: [float(x) for x in s.split(",")], help="dpo: e.g. 1,1")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="any field of TRL's SFTConfig/DPOConfig")
    p.add_argument("--val-split", type=float, default=0.0, help="fraction of prompts held out for evaluation")
    p.add_argument("--replay", type=float, default=0.0, metavar="SHARE",
                   help="sft: make this share of the training rows the base model's own replies to general "
                        "questions, so the run does not teach it to answer everything in the project's voice "
                        "(e.g. 0.2; at most 0.5)")
    g = p.add_argument_group("adapter")
    g.add_argument("--lora-r", type=int)
    g.add_argument("--lora-alpha", type=int)
    g.add_argument("--lora-dropout", type=float)
    g.add_argument("--target-modules", nargs="+")
    g.add_argument("--layers", type=int, nargs="+", help="layers_to_transform: tune only these layers")
    g.add_argument("--qlora", action="store_true", help="4-bit NF4 base (bitsandbytes); refused where unsupported")
    g.add_argument("--full", action="store_true", help="train every weight (small models only)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a failed or cancelled run from its last checkpoint")
    p.add_argument("--accelerate-config", help="run under accelerate launch with this config (trainers/accelerate/)")
    options.label_filters(p)
    options.pairs(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="sample replies from model versions for chosen prompts (candidates, A/B)")
    options.project(p, positional=True)
    p.add_argument("--versions", required=True, help="comma-separated model versions; 'base' is the base model")
    options.prompt_selection(p)
    p.add_argument("--limit", type=int, help="at most this many prompts (in import order)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave out prompts that already have a reply of every version named")
    g = p.add_argument_group("sampling")
    g.add_argument("--n", type=int, help="replies per prompt and version (default 1)")
    g.add_argument("--temperature", type=float, help="default 0.8; 0 is greedy")
    g.add_argument("--top-p", type=float, help="default 0.95")
    g.add_argument("--top-k", type=int, help="default 0 (off)")
    g.add_argument("--max-new-tokens", type=int, help="default 128")
    g.add_argument("--repetition-penalty", type=float, help="default 1.0 (off)")
    g.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per generate call (HF backend)")
    p.add_argument("--backend", choices=["auto", "hf"], default="auto",
                   help="auto: vLLM when installed and a GPU is present, else HF generate")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export-version", help="write a model version as a PEFT adapter or a merged model folder")
    p.add_argument("version")
    options.project(p)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--merge", action="store_true", help="merge the adapter(s) into the base: a full model folder")
    p.set_defaults(func=cmd_export_version)
