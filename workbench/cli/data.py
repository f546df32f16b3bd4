"""Data in and out: import files, export curated datasets, exchange tasks with Argilla."""

from __future__ import annotations

import argparse
from pathlib import Path

from workbench.cli import options


def cmd_import(args: argparse.Namespace) -> int:
    from workbench.ingest import import_files
    from workbench.store import Store

    project = options.load(args)
    with Store.open(project.store_path) as store, _ProgressBar() as bar:
        reports = import_files(store, args.files, fmt=args.format, kind=args.kind,
                               max_field_bytes=project.config.max_field_bytes,
                               max_file_bytes=project.config.max_file_bytes, tags=args.tag,
                               on_error=args.on_error, max_rejects=args.max_rejects,
                               rejects_dir=project.root / "rejects", progress=bar.update)
    for report in reports:
        print(report.summary())
    return 0


class _ProgressBar:
    """A bar per file on stderr, shown only once an import has run 2 s and only on a terminal (tqdm's
    `delay` and `disable=None`), so short imports and scripts print nothing extra."""

    def __init__(self):
        self.bar = None
        self.name: str | None = None

    def update(self, name: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if name != self.name:
            self.close()
            self.name = name
            self.bar = tqdm(total=total or None, unit="B", unit_scale=True, delay=2, disable=None,
                            desc=Path(name).name, leave=False)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.exporters import FATES, export
    from workbench.store import Store

    project = options.load(args)
    filters = options.filters(args, since=args.since, until=args.until)
    style = args.style or "conversational"
    with Store.open(project.store_path) as store:
        result = export(store, kind=args.kind, out_dir=args.out, fmt=args.format, style=style, split=args.split,
                        seed=args.seed, filters=filters, project_name=project.config.name)
    rows = ", ".join(f"{s}: {n}" for s, n in result.counts.items())
    print(f"wrote {args.kind} ({style}, {args.format}) to {result.out_dir}: {rows}")
    print(f"  card: {result.card}")
    print(f"  sha256: {result.content_hash}")
    if result.pairs:
        fates = ", ".join(f"{FATES.get(k, k)}: {n}" for k, n in sorted(result.pairs["fates"].items(), key=lambda kv: -kv[1]))
        print(f"  pairs ({result.pairs['rule']}, ties {result.pairs['ties']}): {fates}")
    return 0


def cmd_argilla(args: argparse.Namespace) -> int:
    from workbench import argilla
    from workbench.store import Store

    project = options.load(args)
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
        from workbench.argilla import live

        server = live.Server.configured(args.api_url, args.api_key)
        with Store.open(project.store_path, read_only=args.action == "push") as store:
            if args.action == "push":
                print(live.push(store, server, args.source, workspace=args.workspace, name=args.name,
                                users_file=args.users))
            else:
                print(live.pull(store, server, args.source, workspace=args.workspace, task=args.task,
                                prompt_field=args.prompt_field, tags=args.tag).summary())
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from workbench.importers import FORMATS, KINDS, ON_ERROR
    from workbench.ingest import DEFAULT_MAX_REJECTS

    p = sub.add_parser("import", help="load prompts, demonstrations or preference pairs from files")
    p.add_argument("files", nargs="+", type=Path)
    options.project(p)
    p.add_argument("--format", choices=list(FORMATS), help="override format detection")
    p.add_argument("--kind", choices=KINDS, help="what the rows are (default: from the format); "
                                                  "'prompts' keeps only the prompts of any format")
    p.add_argument("--tag", action="append", help="tag the new prompts (repeatable), e.g. --tag heldout")
    p.add_argument("--on-error", choices=ON_ERROR, default="fail",
                   help="fail (default): any bad row refuses the import; skip: import the good rows and list each "
                        "bad one, with its reason, in PROJECT/rejects/FILE.TIME.rejects.jsonl")
    p.add_argument("--max-rejects", default=DEFAULT_MAX_REJECTS,
                   help=f"with --on-error skip: refuse the whole import when a file has more bad rows than this, "
                        f"a count (50) or a share (2%%); default {DEFAULT_MAX_REJECTS.replace('%', '%%')}")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write curated data in TRL-ready columns plus a dataset card")
    options.project(p)
    p.add_argument("--kind", choices=["sft", "preferences", "unpaired"], required=True,
                   help="unpaired: thumbs up/down feedback as TRL's prompt/completion/label (for KTO)")
    p.add_argument("--format", choices=["jsonl", "parquet", "hf"], default="jsonl")
    p.add_argument("--style", choices=["conversational", "standard", "messages"],
                   help="conversational (default): message lists; standard: strings; messages: sft only")
    p.add_argument("--out", required=True, type=Path, help="a new (or empty) folder")
    p.add_argument("--split", type=float, default=0.0, help="fraction of prompts held out as 'test'")
    p.add_argument("--seed", type=int, default=0)
    options.pairs(p)
    options.label_filters(p)
    p.add_argument("--since", type=options.date, help="only labels created at or after this date")
    p.add_argument("--until", type=options.date, help="only labels created before this date")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("argilla", help="Argilla (v2) datasets: import one, export a task, push to / pull from a server")
    p.add_argument("action", choices=["import", "export", "push", "pull"])
    p.add_argument("source", help="import: the dataset folder (to_disk, or to_hub saved locally); export, push: "
                                  "the task; pull: the dataset's name on the server")
    options.project(p)
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
