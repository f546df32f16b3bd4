"""People and their labels: users, labeling tasks (with active ordering), the review leaderboard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli import options


def cmd_users(args: argparse.Namespace) -> int:
    from workbench.auth import AuthError, add_user
    from workbench.store import Store

    project = options.load(args)
    if args.action == "list":
        with Store.open(project.store_path) as store:
            for user in store.users():
                print(f"{user['name']}\t{user['role']}\t{user['created_at']}")
        return 0
    if not args.name or not args.role:
        raise AuthError("give a NAME and --role annotator|reviewer|admin")
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise AuthError("the passwords differ")
    with Store.open(project.store_path) as store:
        add_user(store, args.name, args.role, password)
    print(f"added {args.role} {args.name}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """Labeling tasks from the shell. Whoever can write the project's files is trusted as an admin here."""
    import getpass

    from annotation.labeling import Labeling, LabelingError, User
    from annotation.reports import agreement_markdown, progress_markdown
    from workbench.store import Store

    project = options.load(args)
    cli_admin = User(f"cli:{getpass.getuser()}", "admin")
    with Store.open(project.store_path) as store:
        labeling = Labeling(store, max_field_bytes=project.config.max_field_bytes)
        if args.action == "list":
            for task in store.tasks():
                progress = store.task_progress(task.id)
                print(f"{task.name}\t{task.kind}\toverlap {task.overlap}\t{task.items} items\t"
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
            print(f"created task {task.name} ({task.kind}, {task.overlap} per item): {task.items} items")
            return 0
        if store.task(args.name) is None:
            raise LabelingError(f"no task named {args.name!r}: see `workbench tasks list`")
        if args.action == "prioritize":
            return _prioritize(project, store, args)
        result = (labeling.progress(cli_admin, args.name) if args.action == "progress"
                  else labeling.agreement(cli_admin, args.name))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(progress_markdown(result) if args.action == "progress" else agreement_markdown(result))
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
    from annotation.labeling import LabelingError
    from annotation.leaderboard import leaderboard
    from annotation.reports import leaderboard_markdown
    from workbench.store import Store

    project = options.load(args)
    with Store.open(project.store_path, read_only=True) as store:
        review_ids = None
        if args.review:
            review_ids = []
            for name in args.review:
                task = store.task(name)
                if task is None or task.kind != "review":
                    raise LabelingError(f"--review {name}: no review task of that name (see `workbench tasks list`)")
                review_ids.append(task.id)
        board = leaderboard(store.review_votes(review_ids), rounds=args.rounds, seed=args.seed)
    print(json.dumps(board, indent=2) if args.json else leaderboard_markdown(board))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="add or list the people who sign in (annotator, reviewer, admin)")
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("name", nargs="?")
    options.project(p)
    p.add_argument("--role", choices=["annotator", "reviewer", "admin"])
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("tasks", help="labeling tasks: add, list, progress, agreement, prioritize")
    p.add_argument("action", choices=["add", "list", "progress", "agreement", "prioritize"],
                   help="prioritize: reorder the task's open items so the ones worth labeling come first")
    p.add_argument("name", nargs="?")
    options.project(p)
    p.add_argument("--kind", choices=["demonstration", "pairwise", "ranking", "review", "feedback"],
                   help="feedback: thumbs up or down on one response at a time (KTO's unpaired data)")
    p.add_argument("--overlap", type=int, default=1, help="annotators per item (default 1); review: votes per pair")
    p.add_argument("--versions", help="review: the two model versions compared, A,B (replies from "
                                      "`workbench generate`; prompts tagged heldout unless selected otherwise)")
    options.prompt_selection(p)
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
    options.project(p, positional=True)
    p.add_argument("--review", action="append", help="only votes of this review task (repeatable; default: all)")
    p.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for the score intervals")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_leaderboard)
