"""`workbench` command line: each command group's parsers sit beside their handlers (projects, data,
training, people, judges); options several commands share are declared once (options.py). Every error a user can
fix is a `WorkbenchError`: caught once here, printed as one line, exit status 2."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def make_parser() -> argparse.ArgumentParser:
    from workbench.cli import data, judges, people, projects, training

    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (projects, data, training, people, judges):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from workbench.errors import WorkbenchError

    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
