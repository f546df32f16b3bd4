"""`workbench` command line: a thin table from subcommands to functions. Errors the user can fix print one
clear line and exit 2; nothing here holds logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.store import ExportFilters

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _project(args: argparse.Namespace):
    from workbench.config import load_project

    return load_project(getattr(args, "project_dir", None) or getattr(args, "project", None))


def cmd_init(args: argparse.Namespace) -> int:
    from workbench.projects import init_project

    corpus = None
    if args.corpus:
        corpus = [line for f in args.corpus for line in Path(f).read_text(encoding="utf-8").splitlines() if line]
    project = init_project(args.path, base_model=args.base_model, corpus=corpus, name=args.name)
    print(f"created project {project.config.name} at {project.root}")
    print(f"  base model: {project.base_model_path()}")
    print(f"  store:      {project.store_path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from workbench.ingest import import_files
    from workbench.store import Store

    project = _project(args)
    with Store.open(project.store_path) as store:
        reports = import_files(store, args.files, fmt=args.format, kind=args.kind,
                               max_field_bytes=project.config.max_field_bytes, tags=args.tag)
    for report in reports:
        print(report.summary())
    return 0


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.exporters import export
    from workbench.store import Store

    project = _project(args)
    filters = _pair_filters(args, since=args.since, until=args.until)
    style = args.style or "conversational"
    with Store.open(project.store_path) as store:
        result = export(store, kind=args.kind, out_dir=args.out, fmt=args.format, style=style, split=args.split,
                        seed=args.seed, filters=filters, project_name=project.config.name)
    rows = ", ".join(f"{s}: {n}" for s, n in result.counts.items())
    print(f"wrote {args.kind} ({style}, {args.format}) to {result.out_dir}: {rows}")
    print(f"  card: {result.card}")
    print(f"  sha256: {result.content_hash}")
    if result.pairs:
        from workbench.exporters import FATES

        fates = ", ".join(f"{FATES.get(k, k)}: {n}" for k, n in sorted(result.pairs["fates"].items(), key=lambda kv: -kv[1]))
        print(f"  pairs ({result.pairs['rule']}, ties {result.pairs['ties']}): {fates}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from workbench.store import Store

    project = _project(args)
    with Store.open(project.store_path) as store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    print(f"project {project.config.name} ({project.root})")
    print(f"  base model: {project.config.base_model}")
    print(f"  prompts: {stats['prompts']}" + "".join(f", tagged {t}: {n}" for t, n in stats["prompts_by_tag"].items()))
    print("  responses by origin: " + (", ".join(f"{k}: {v}" for k, v in stats["responses_by_origin"].items()) or "none"))
    print("  labels by kind: " + (", ".join(f"{k}: {v}" for k, v in stats["labels_by_kind"].items()) or "none"))
    print("  labels by annotator: " + (", ".join(f"{k}: {v}" for k, v in stats["labels_by_annotator"].items()) or "none"))
    print(f"  imports: {stats['imports']}")
    print("  runs: " + (", ".join(f"{k}: {v}" for k, v in stats["runs_by_status"].items()) or "none"))
    print(f"  model versions: {len(stats['model_versions'])}")
    for mv in stats["model_versions"]:
        print(f"    {mv['id']} ({mv['stage']}, parent {mv['parent'] or '-'}, {mv['created_at']})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from workbench.app import serve
    from workbench.config import load_project

    project = load_project(args.project_dir or getattr(args, "project", None))
    print(f"serving {project.config.name} on http://{args.host}:{args.port}")
    serve(project, host=args.host, port=args.port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import create_demo_project

    project, reports = create_demo_project(args.path, args.data)
    for report in reports:
        print(report.summary())
    print(f"demo project ready at {project.root}")
    if args.serve:
        from workbench.app import serve
        from workbench.demo import DEMO_PASSWORD, DEMO_USERS

        print(f"serving {project.config.name} on http://{args.host}:{args.port}")
        print("sign in as " + ", ".join(f"{name} ({role})" for name, role in DEMO_USERS)
              + f"; the demo password is {DEMO_PASSWORD}")
        serve(project, host=args.host, port=args.port)
    return 0


def _pair_options(p: argparse.ArgumentParser) -> None:
    """How labels become preference pairs: shared by export and by the preference training stages."""
    from workbench.store import PAIR_RULES, TIE_RULES

    g = p.add_argument_group("preference pairs")
    g.add_argument("--min-votes", type=int, default=1, help="pairs with at least this many votes")
    g.add_argument("--min-agreement", type=float, default=0.0, help="share of votes for the majority outcome, 0..1")
    g.add_argument("--exclude-ties", action="store_true", help="drop pairs where any vote was a tie or 'both bad'")
    g.add_argument("--pairs", choices=list(PAIR_RULES), default="all",
                   help="which pairs an N-way ranking gives: " + "; ".join(f"{k}: {v}" for k, v in PAIR_RULES.items()))
    g.add_argument("--min-margin", type=float, default=1.0, help="--pairs margin: the least score margin or rank gap")
    g.add_argument("--ties", choices=list(TIE_RULES), default="drop",
                   help="tied pairs: drop them, or keep them as rows with tie=true and label_smoothing 0.5")
    g.add_argument("--vote-smoothing", action="store_true",
                   help="give each pair a label_smoothing column from its vote split (3-2: 0.4, 5-0: 0); "
                        "dpo trains with it per pair")


def _pair_filters(args: argparse.Namespace, **more) -> ExportFilters:
    from workbench.store import ExportFilters

    return ExportFilters(min_votes=args.min_votes, min_agreement=args.min_agreement, exclude_ties=args.exclude_ties,
                         pairs=args.pairs, min_margin=args.min_margin, ties=args.ties, smoothing=args.vote_smoothing,
                         annotators=args.annotator or [], sources=args.source or [],
                         review_votes=not args.no_review_votes, **more)


def _key_values(items: list[str] | None) -> dict:
    """--set KEY=VALUE pairs, values read as JSON where they parse (numbers, true, lists) else as text."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            from workbench.runs import RunError

            raise RunError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.runs import TrainRequest, train
    from workbench.store import Store

    project = _project(args)
    adapter = {k: v for k, v in {
        "r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
        "target_modules": args.target_modules, "layers_to_transform": args.layers,
        "qlora": args.qlora or None, "full": args.full or None}.items() if v is not None}
    trl = {k: v for k, v in {
        "num_train_epochs": args.epochs, "learning_rate": args.lr, "per_device_train_batch_size": args.batch_size,
        "max_length": args.max_length, "max_steps": args.max_steps, "seed": args.seed}.items() if v is not None}
    if args.stage == "ppo" and "max_length" in trl:
        trl["response_length" if args.algorithm == "ppo" else "max_completion_length"] = trl.pop("max_length")
    if args.stage == "dpo":
        trl |= {k: v for k, v in {"beta": args.beta, "loss_type": args.loss,
                                  "loss_weights": args.loss_weights}.items() if v is not None}
    if args.stage == "kto" and args.beta is not None:
        trl["beta"] = args.beta
    trl |= _key_values(args.set)
    from workbench.runs import RunError

    stage = "rloo" if args.stage == "ppo" and args.algorithm == "rloo" else args.stage
    if args.algorithm == "rloo" and args.stage != "ppo":
        raise RunError("--algorithm rloo applies to `train ppo`")
    if args.min_reward_accuracy is not None and args.stage != "ppo":
        raise RunError("--min-reward-accuracy applies to `train ppo` (the reward gate)")
    gate = {} if args.min_reward_accuracy is None else {"min_reward_accuracy": args.min_reward_accuracy}
    request = TrainRequest(stage=stage, parent=args.parent, reward_model=args.reward_model, adapter=adapter, trl=trl, val_split=args.val_split, **gate,
                           filters=_pair_filters(args),
                           accelerate_config=args.accelerate_config, resume=args.resume)

    def show(m: dict) -> None:
        keys = ("loss", "eval_loss", "learning_rate", "rewards/accuracies", "rewards/margins", "logps/chosen",
                "accuracy", "margin", "eval_accuracy", "objective/scores", "objective/kl")
        figures = "  ".join(f"{k}={m[k]:.4g}" for k in keys if isinstance(m.get(k), int | float))
        if figures:
            print(f"  step {m['step']:>5}  {figures}", flush=True)

    with Store.open(project.store_path) as store:
        print(f"training {args.stage} on {project.config.name} (base {project.base_model_path()})", flush=True)
        result = train(project, store, request, on_metrics=show)
    if result.status != "succeeded":
        print(f"workbench train: run {result.run_id} {result.status}: {result.error}", file=sys.stderr)
        print(f"  logs: {result.run_dir}/stderr.log", file=sys.stderr)
        return 1
    metrics = result.version["metrics"]
    print(f"model version {result.run_id}: adapter in {result.version['path']}")
    for key in ("train_loss", "eval_loss", "pairwise_accuracy", "mean_margin", "eval_rewards/accuracies", "eval_rewards/margins", "kl_to_reference",
                "chosen_logp_first", "chosen_logp_last", "degenerate_share", "heldout_reward_before",
                "heldout_reward_after"):
        if isinstance(metrics.get(key), int | float):
            print(f"  {key}: {metrics[key]:.4g}")
    for sample in metrics.get("samples", [])[:3]:
        print(f"  sample: {sample['prompt'][:60]!r} -> {sample['reply'][:100]!r}")
    for warning in result.warnings:
        print(f"  WARNING: {warning}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from workbench.generate import GenerateRequest, generate
    from workbench.store import Store

    project = _project(args)
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
    from workbench.versions import export_version

    project = _project(args)
    with Store.open(project.store_path) as store:
        version = store.model_version(args.version)
    if version is None:
        print(f"workbench export-version: error: no model version {args.version!r} (see `workbench stats`)",
              file=sys.stderr)
        return 2
    out = export_version(version, args.out, merge=args.merge)
    print(f"wrote {args.version} ({'merged model' if args.merge else 'adapter'}) to {out}")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from workbench.auth import add_user
    from workbench.store import Store

    project = _project(args)
    if args.action == "list":
        with Store.open(project.store_path) as store:
            for user in store.users():
                print(f"{user['name']}\t{user['role']}\t{user['created_at']}")
        return 0
    if not args.name or not args.role:
        print("workbench users add: error: give a NAME and --role annotator|reviewer|admin", file=sys.stderr)
        return 2
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("workbench users add: error: the passwords differ", file=sys.stderr)
            return 2
    with Store.open(project.store_path) as store:
        add_user(store, args.name, args.role, password)
    print(f"added {args.role} {args.name}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """Labeling tasks from the shell. Whoever can write the project's files is trusted as an admin here."""
    import getpass

    from annotation.labeling import Labeling, LabelingError, User
    from workbench.store import Store

    project = _project(args)
    cli_admin = User(f"cli:{getpass.getuser()}", "admin")
    with Store.open(project.store_path) as store:
        labeling = Labeling(store, max_field_bytes=project.config.max_field_bytes)
        if args.action == "list":
            for task in store.tasks():
                progress = store.task_progress(task["id"])
                print(f"{task['name']}\t{task['kind']}\toverlap {task['overlap']}\t{task['items']} items\t"
                      f"{progress['complete']} complete\t{progress['answers']}/{progress['needed']} answers")
            return 0
        if not args.name:
            raise LabelingError(f"`tasks {args.action}` needs the task's NAME")
        if args.action == "add":
            if not args.kind:
                raise LabelingError("give the task's --kind: demonstration, pairwise, ranking or review")
            guidelines = args.guidelines or ""
            if guidelines and Path(guidelines).is_file():
                guidelines = Path(guidelines).read_text(encoding="utf-8")
            task = labeling.create_task(cli_admin, name=args.name, kind=args.kind, overlap=args.overlap,
                                        guidelines=guidelines, sources=args.source, tags=args.tag,
                                        query=args.query, max_responses=args.max_responses,
                                        versions=args.versions.split(",") if args.versions else None)
            print(f"created task {task['name']} ({task['kind']}, {task['overlap']} per item): {task['items']} items")
            return 0
        if store.task(args.name) is None:
            raise LabelingError(f"no task named {args.name!r}: see `workbench tasks list`")
        if args.action == "prioritize":
            return _prioritize(project, store, args)
        result = (labeling.progress(cli_admin, args.name) if args.action == "progress"
                  else labeling.agreement(cli_admin, args.name))
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        elif args.action == "progress":
            from annotation.reports import progress_markdown

            print(progress_markdown(result))
        else:
            from annotation.reports import agreement_markdown

            print(agreement_markdown(result))
    return 0


def _prioritize(project, store, args: argparse.Namespace) -> int:
    from annotation.active import ActiveError
    from workbench.scoring import ScoreRequest, order_queue

    if not args.by:
        raise ActiveError("give the order: --by margin, disagreement, variance or task-order")
    models = [m.strip() for m in (args.model or "").split(",") if m.strip()]

    def show(progress: dict) -> None:  # on stderr: --json keeps stdout for the result
        if progress.get("total"):
            print(f"  {progress['done']}/{progress['total']} responses scored", file=sys.stderr, flush=True)

    result = order_queue(project, store, ScoreRequest(task=args.name, by=args.by, models=models), on_progress=show)
    if result.status != "succeeded":
        print(f"workbench tasks prioritize: job {result.job_id} {result.status}: {result.error}", file=sys.stderr)
        print(f"  logs: {result.job_dir}/stderr.log; the queue order is as it was", file=sys.stderr)
        return 1
    done = result.done
    if args.json:
        print(json.dumps(done, indent=2))
    elif args.by == "task-order":
        print(f"task {done['task']}: back in the order it was made with")
    else:
        print(f"task {done['task']}: {done['prioritized']} of {done['open_items']} open items ordered by {args.by}"
              + (f" ({', '.join(models)})" if models else "") + "; first in the queue:")
        for head in done["head"]:
            print(f"  {head['item']}\t{head['reason']}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from annotation.leaderboard import leaderboard
    from annotation.reports import leaderboard_markdown
    from workbench.store import Store

    project = _project(args)
    with Store.open(project.store_path, read_only=True) as store:
        review_ids = None
        if args.review:
            review_ids = []
            for name in args.review:
                task = store.task(name)
                if task is None or task["kind"] != "review":
                    from annotation.labeling import LabelingError

                    raise LabelingError(f"--review {name}: no review task of that name (see `workbench tasks list`)")
                review_ids.append(task["id"])
        board = leaderboard(store.review_votes(review_ids), rounds=args.rounds, seed=args.seed)
    print(json.dumps(board, indent=2) if args.json else leaderboard_markdown(board))
    return 0


def cmd_argilla(args: argparse.Namespace) -> int:
    from workbench import argilla
    from workbench.store import Store

    project = _project(args)
    if args.action == "import":
        with Store.open(project.store_path) as store:
            report = argilla.import_dataset(store, args.source, task=args.task, prompt_field=args.prompt_field,
                                               users_file=args.users, tags=args.tag)
        print(report.summary())
    elif args.action == "export":
        if not args.out:
            raise argilla.ArgillaFormatError("export needs --out FOLDER (a new or empty folder)")
        with Store.open(project.store_path, read_only=True) as store:
            report = argilla.export_task(store, args.source, args.out, version=args.version, users_file=args.users)
        print(report.summary())
    else:
        from workbench.argilla import live as argilla_live

        server = argilla_live.Server.configured(args.api_url, args.api_key)
        with Store.open(project.store_path, read_only=args.action == "push") as store:
            if args.action == "push":
                print(argilla_live.push(store, server, args.source, workspace=args.workspace, name=args.name,
                                        users_file=args.users))
            else:
                print(argilla_live.pull(store, server, args.source, workspace=args.workspace, task=args.task,
                                        prompt_field=args.prompt_field, tags=args.tag).summary())
    return 0


def cmd_demo_loop(args: argparse.Namespace) -> int:
    from workbench.demo import demo_loop

    results = demo_loop(args.path, args.data, samples_per_prompt=args.samples_per_prompt)
    sft, dpo = results["sft"], results["dpo"]
    print(f"brand trait on held-out products (sampled at temperature 1.0, {dpo['samples']} replies each):")
    print(f"  after SFT ({sft['version']}): {sft['trait_share']:.1%}  degenerate {sft['degenerate_share']:.1%}")
    print(f"  after DPO ({dpo['version']}): {dpo['trait_share']:.1%}  degenerate {dpo['degenerate_share']:.1%}")
    print(f"  whole loop: {results['seconds']:.0f} s")
    for example in dpo["examples"][:2]:
        print(f"  e.g. {example['prompt'][:60]!r} -> {example['reply'][:120]!r}")
    return 0


def make_parser() -> argparse.ArgumentParser:
    from workbench.importers import FORMATS, KINDS

    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    project_help = "project folder (default: $WORKBENCH_PROJECT, else the nearest folder up with workbench.toml)"

    p = sub.add_parser("init", help="create a project (config + DuckDB store + tiny offline model)")
    p.add_argument("path")
    p.add_argument("--base-model", help="Hub id or local model folder; default: build a tiny offline model")
    p.add_argument("--corpus", nargs="+", help="text files to train the tiny model's tokenizer on")
    p.add_argument("--name", help="project name (default: the folder name)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", help="load prompts, demonstrations or preference pairs from files")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--format", choices=list(FORMATS), help="override format detection")
    p.add_argument("--kind", choices=KINDS, help="what the rows are (default: from the format); "
                                                  "'prompts' keeps only the prompts of any format")
    p.add_argument("--tag", action="append", help="tag the new prompts (repeatable), e.g. --tag heldout")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write curated data in TRL-ready columns plus a dataset card")
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--kind", choices=["sft", "preferences", "unpaired"], required=True,
                   help="unpaired: thumbs up/down feedback as TRL's prompt/completion/label (for KTO)")
    p.add_argument("--format", choices=["jsonl", "parquet", "hf"], default="jsonl")
    p.add_argument("--style", choices=["conversational", "standard", "messages"],
                   help="conversational (default): message lists; standard: strings; messages: sft only")
    p.add_argument("--out", required=True, type=Path, help="a new (or empty) folder")
    p.add_argument("--split", type=float, default=0.0, help="fraction of prompts held out as 'test'")
    p.add_argument("--seed", type=int, default=0)
    _pair_options(p)
    p.add_argument("--annotator", action="append", help="only labels by this annotator (repeatable)")
    p.add_argument("--source", action="append",
                   help="only labels from this source: an import file path or name (glob), or 'ui'")
    p.add_argument("--since", type=_date, help="only labels created at or after this date")
    p.add_argument("--until", type=_date, help="only labels created before this date")
    p.add_argument("--no-review-votes", action="store_true", help="preferences: leave out votes from A/B reviews")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="train one stage (sft, reward, dpo, ppo) into a new model version")
    p.add_argument("stage", choices=["sft", "reward", "dpo", "kto", "ppo"])
    p.add_argument("project_dir", nargs="?", metavar="project", help=project_help)
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--parent", help="model version to start from (its adapter is continued; DPO's reference)")
    p.add_argument("--reward-model", help="ppo: the reward model version that scores the policy's replies")
    p.add_argument("--min-reward-accuracy", type=float,
                   help="ppo: refuse to start unless the reward model ranks at least this share of held-out human "
                        "pairs right (default 0.6; 0 turns the check off)")
    p.add_argument("--algorithm", choices=["ppo", "rloo"], default="ppo",
                   help="ppo: PPO (trl.experimental) or RLOO (TRL's maintained RLOOTrainer)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--val-split", type=float, default=0.0, help="fraction of prompts held out for evaluation")
    p.add_argument("--lora-r", type=int)
    p.add_argument("--lora-alpha", type=int)
    p.add_argument("--lora-dropout", type=float)
    p.add_argument("--target-modules", nargs="+")
    p.add_argument("--layers", type=int, nargs="+", help="layers_to_transform: tune only these layers")
    p.add_argument("--qlora", action="store_true", help="4-bit NF4 base (bitsandbytes); refused where unsupported")
    p.add_argument("--full", action="store_true", help="train every weight (small models only)")
    p.add_argument("--beta", type=float, help="dpo: KL strength")
    p.add_argument("--loss", type=lambda s: s.split(","), help="dpo: loss types, e.g. sigmoid or ipo or sigmoid,sft")
    p.add_argument("--loss-weights", type=lambda s: [float(x) for x in s.split(",")], help="dpo: e.g. 1,1")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any field of TRL's SFTConfig/DPOConfig")
    p.add_argument("--resume", metavar="RUN_ID", help="continue a failed or cancelled run from its last checkpoint")
    p.add_argument("--accelerate-config", help="run under accelerate launch with this config (trainers/accelerate/)")
    p.add_argument("--annotator", action="append", help="train only on labels by this annotator")
    p.add_argument("--source", action="append", help="train only on labels from this source (glob)")
    p.add_argument("--no-review-votes", action="store_true",
                   help="leave out votes from A/B reviews (by default they are preference pairs like any other)")
    _pair_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="sample replies from model versions for chosen prompts (candidates, A/B)")
    p.add_argument("project_dir", nargs="?", metavar="project", help=project_help)
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--versions", required=True, help="comma-separated model versions; 'base' is the base model")
    p.add_argument("--source", action="append", help="only prompts from files matching this glob (repeatable)")
    p.add_argument("--tag", action="append", help="only prompts with this tag (repeatable), e.g. heldout")
    p.add_argument("--query", help="only prompts whose text contains this (case-insensitive)")
    p.add_argument("--limit", type=int, help="at most this many prompts (in import order)")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave out prompts that already have a reply of every version named")
    p.add_argument("--n", type=int, help="replies per prompt and version (default 1)")
    p.add_argument("--temperature", type=float, help="default 0.8; 0 is greedy")
    p.add_argument("--top-p", type=float, help="default 0.95")
    p.add_argument("--top-k", type=int, help="default 0 (off)")
    p.add_argument("--max-new-tokens", type=int, help="default 128")
    p.add_argument("--repetition-penalty", type=float, help="default 1.0 (off)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per generate call (HF backend)")
    p.add_argument("--backend", choices=["auto", "hf"], default="auto",
                   help="auto: vLLM when installed and a GPU is present, else HF generate")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export-version", help="write a model version as a PEFT adapter or a merged model folder")
    p.add_argument("version")
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--merge", action="store_true", help="merge the adapter(s) into the base: a full model folder")
    p.set_defaults(func=cmd_export_version)

    p = sub.add_parser("users", help="add or list the people who sign in (annotator, reviewer, admin)")
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("name", nargs="?")
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--role", choices=["annotator", "reviewer", "admin"])
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("tasks", help="labeling tasks: add, list, progress, agreement")
    p.add_argument("action", choices=["add", "list", "progress", "agreement", "prioritize"],
                   help="prioritize: reorder the task's open items so the ones worth labeling come first")
    p.add_argument("name", nargs="?")
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--kind", choices=["demonstration", "pairwise", "ranking", "review", "feedback"],
                   help="feedback: thumbs up or down on one response at a time (KTO's unpaired data)")
    p.add_argument("--overlap", type=int, default=1, help="annotators per item (default 1); review: votes per pair")
    p.add_argument("--versions", help="review: the two model versions compared, A,B (replies from "
                                      "`workbench generate`; prompts tagged heldout unless selected otherwise)")
    p.add_argument("--source", action="append", help="only prompts from files matching this glob (repeatable)")
    p.add_argument("--tag", action="append", help="only prompts with this tag (repeatable)")
    p.add_argument("--query", help="only prompts whose text contains this (case-insensitive)")
    p.add_argument("--max-responses", type=int, help="responses per prompt: pairwise default 2, ranking 4 (max 5); "
                                                      "review: pairs per prompt (default 1); feedback: responses "
                                                      "judged per prompt, model replies first (default 1)")
    p.add_argument("--guidelines", help="guidelines text, or a Markdown file with them")
    p.add_argument("--by", choices=["margin", "disagreement", "variance", "task-order"],
                   help="prioritize: margin (smallest margin first), disagreement (two model versions disagree "
                        "most first), variance (responses vary most first), task-order (undo)")
    p.add_argument("--model", "--reward-model", dest="model",
                   help="prioritize: the model version that scores replies, a reward model or a policy "
                        "(disagreement: two, A,B)")
    p.add_argument("--json", action="store_true", help="progress, agreement or prioritize as JSON")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("leaderboard", help="model versions ranked from blind A/B votes (win rates, Bradley-Terry)")
    p.add_argument("project_dir", nargs="?", metavar="project", help=project_help)
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--review", action="append", help="only votes of this review task (repeatable; default: all)")
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for the score intervals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("argilla", help="Argilla (v2) datasets: import one, export a task, push to / pull from a server")
    p.add_argument("action", choices=["import", "export", "push", "pull"])
    p.add_argument("source", help="import: the dataset folder (to_disk, or to_hub saved locally); export, push: "
                                  "the task; pull: the dataset's name on the server")
    p.add_argument("-p", "--project", help=project_help)
    p.add_argument("--out", help="export: the folder to write (new or empty)")
    p.add_argument("--task", help="import, pull: the task to create or update (default: the dataset's name)")
    p.add_argument("--prompt-field", help="import, pull: the field that holds the prompt (default: guessed from "
                                          "the settings' mapping, a chat field, or names like prompt/instruction)")
    p.add_argument("--users", help="a JSON file of Argilla user ids -> names ({id: name} or the users API's list)")
    p.add_argument("--tag", action="append", help="import, pull: tag the imported prompts (repeatable)")
    p.add_argument("--version", help="export: suggest this model version's newest reply to each prompt")
    p.add_argument("--workspace", help="push, pull: the Argilla workspace (default: the server's default)")
    p.add_argument("--name", help="push: the dataset's name on the server (default: the task's name)")
    p.add_argument("--api-url", help="push, pull: the Argilla server (default: $ARGILLA_API_URL)")
    p.add_argument("--api-key", help="push, pull: its API key (default: $ARGILLA_API_KEY)")
    p.set_defaults(func=cmd_argilla)

    p = sub.add_parser("stats", help="what the project holds")
    p.add_argument("project", nargs="?", help=project_help)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("serve", help="start the workbench server")
    p.add_argument("project_dir", nargs="?", metavar="project", help=project_help)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo-loop", help="SFT then DPO on the demo project; brand-trait share on held-out prompts")
    p.add_argument("path", nargs="?", default="demo-loop-project")
    p.add_argument("--data", type=Path, help="demo data folder (default: data/loki of this checkout)")
    p.add_argument("--samples-per-prompt", type=int, default=2, help="sampled replies per held-out prompt (120 prompts)")
    p.set_defaults(func=cmd_demo_loop)

    p = sub.add_parser("demo", help="create (or reuse) the Loki Phones demo project, optionally serve it")
    p.add_argument("path", nargs="?", default="demo-project")
    p.add_argument("--data", type=Path, help="demo data folder (default: data/loki of this checkout)")
    p.add_argument("--serve", action="store_true")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from annotation.active import ActiveError
    from annotation.labeling import LabelingError
    from workbench.app import ServeError
    from workbench.argilla import ArgillaFormatError
    from workbench.auth import AuthError
    from workbench.config import ProjectError
    from workbench.exporters import ExportError
    from workbench.generate import GenerationError
    from workbench.importers import ImportError_
    from workbench.runs import RunError
    from workbench.store import StoreError
    from workbench.versions import VersionError

    args = make_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except (ProjectError, StoreError, ImportError_, ExportError, ServeError, RunError, VersionError, AuthError,
            LabelingError, GenerationError, ArgillaFormatError, ActiveError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
