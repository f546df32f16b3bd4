"""Option groups several commands share, declared once, and the one way every command finds its project."""

from __future__ import annotations

import argparse
from datetime import datetime

from workbench.config import Project

PROJECT_HELP = "project folder (default: $WORKBENCH_PROJECT, else the nearest folder up with workbench.toml)"


def project(p: argparse.ArgumentParser, *, positional: bool = False) -> None:
    """`-p/--project DIR` on every command; `positional` also keeps the older `COMMAND DIR` form that the
    README showed for train, generate, leaderboard, stats and serve."""
    p.add_argument("-p", "--project", help=PROJECT_HELP)
    if positional:
        p.add_argument("project_dir", nargs="?", metavar="project", help="the same as -p (older form)")


def load(args: argparse.Namespace) -> Project:
    from workbench.config import ProjectError, load_project

    given = [d for d in (getattr(args, "project_dir", None), getattr(args, "project", None)) if d]
    if len(set(given)) > 1:
        raise ProjectError(f"two projects given ({given[0]} and {given[1]}): give one, with -p")
    return load_project(given[0] if given else None)


def new_project_path(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """Commands that create a project take its folder as PATH or as -p, like every other command."""
    p.add_argument("path", nargs="?", default=None, help="the project folder to create" +
                   (f" (default: {default})" if default else ""))
    p.add_argument("-p", "--project", help="the same as PATH")
    p.set_defaults(default_path=default)


def path_of(args: argparse.Namespace) -> str:
    from workbench.config import ProjectError

    given = [d for d in (args.path, args.project) if d]
    if len(set(given)) > 1:
        raise ProjectError(f"two folders given ({given[0]} and {given[1]}): give one")
    if not given and not args.default_path:
        raise ProjectError("give the project folder to create: PATH or -p PATH")
    return given[0] if given else args.default_path


def pairs(p: argparse.ArgumentParser) -> None:
    """How labels become preference pairs: export and the preference training stages."""
    from workbench.store import PAIR_RULES, TIE_RULES

    g = p.add_argument_group("preference pairs")
    g.add_argument("--min-votes", type=int, default=1, help="pairs with at least this many votes")
    g.add_argument("--min-agreement", type=float, default=0.0, help="share of votes for the majority outcome, 0..1")
    g.add_argument("--exclude-ties", action="store_true", help="drop pairs where any vote was a tie or 'both bad'")
    g.add_argument("--pairs", choices=list(PAIR_RULES),
                   help="which pairs an N-way ranking gives (default: all; an imported UltraFeedback ranking: "
                        "best_vs_worst): " + "; ".join(f"{k}: {v}" for k, v in PAIR_RULES.items()))
    g.add_argument("--min-margin", type=float, default=1.0, help="--pairs margin: the least score margin or rank gap")
    g.add_argument("--ties", choices=list(TIE_RULES), default="drop",
                   help="tied pairs: drop them, or keep them as rows with tie=true and label_smoothing 0.5")
    g.add_argument("--vote-smoothing", action="store_true",
                   help="give each pair a label_smoothing column from its vote split (3-2: 0.4, 5-0: 0); "
                        "dpo trains with it per pair")


def label_filters(p: argparse.ArgumentParser) -> None:
    """Which labels an export or a training run reads."""
    g = p.add_argument_group("which labels")
    g.add_argument("--annotator", action="append", help="only labels by this annotator (repeatable)")
    g.add_argument("--source", action="append",
                   help="only labels from this source: an import file path or name (glob), or 'ui' (repeatable)")
    g.add_argument("--no-review-votes", action="store_true",
                   help="preferences: leave out votes from A/B reviews (by default they are pairs like any other)")
    g.add_argument("--judges", choices=["exclude", "include", "only", "accepted"], default="exclude",
                   help="model judges' verdicts (annotator judge:NAME): left out (default), included beside "
                        "people's labels, the only labels, or only those an admin accepted beside people's")


def filters(args: argparse.Namespace, **more):
    """The ExportFilters of `pairs` and `label_filters`, plus any of its other fields in `more`."""
    from workbench.store import ExportFilters

    return ExportFilters(min_votes=args.min_votes, min_agreement=args.min_agreement, exclude_ties=args.exclude_ties,
                         pairs=args.pairs or "all", pairs_chosen=args.pairs is not None, min_margin=args.min_margin, ties=args.ties, smoothing=args.vote_smoothing,
                         annotators=args.annotator or [], sources=args.source or [],
                         review_votes=not args.no_review_votes, judges=args.judges, **more)


def prompt_selection(p: argparse.ArgumentParser) -> None:
    """Which prompts a generation job or a new task takes."""
    g = p.add_argument_group("which prompts")
    g.add_argument("--source", action="append", help="only prompts from files matching this glob (repeatable)")
    g.add_argument("--tag", action="append", help="only prompts with this tag (repeatable), e.g. heldout")
    g.add_argument("--query", help="only prompts whose text contains this (case-insensitive)")


def date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
