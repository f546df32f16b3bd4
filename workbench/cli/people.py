"""People and their labels: users, labeling tasks (with active ordering), the review leaderboard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.cli import options


def cmd_users(args: argparse.Namespace) -> int:
    """People from the shell. Whoever can write the project's files is trusted as an admin here; only the
    last-admin rule applies (the browser also stops an admin demoting or deactivating themselves)."""
    from workbench.auth import AuthError, add_user, reset_password, set_active, set_role
    from workbench.store import Store

    project = options.load(args)
    if args.action == "list":
        with Store.open(project.store_path) as store:
            for user in store.users():
                state = f"\tdeactivated {user['deactivated_at']}" if user["deactivated_at"] else ""
                print(f"{user['name']}\t{user['role']}\t{user['created_at']}{state}")
        return 0
    if not args.name:
        raise AuthError(f"`users {args.action}` needs the user's NAME")
    if args.action == "role":
        role = args.new_role or args.role
        if not role:
            raise AuthError("give the new role: `workbench users role NAME annotator|reviewer|admin`")
        with Store.open(project.store_path) as store:
            old = set_role(store, args.name, role)
        print(f"{args.name}: {old} -> {role}")
        return 0
    if args.action in ("deactivate", "activate"):
        with Store.open(project.store_path) as store:
            changed = set_active(store, args.name, args.action == "activate")
        state = "active" if args.action == "activate" else "deactivated (their labels stay)"
        print(f"{args.name}: {state}" + ("" if changed else ", as before"))
        return 0
    if args.action == "add" and not args.role:
        raise AuthError("give a NAME and --role annotator|reviewer|admin")
    password = _read_password(args)
    with Store.open(project.store_path) as store:
        if args.action == "add":
            add_user(store, args.name, args.role, password)
        else:
            reset_password(store, args.name, password)
    print(f"added {args.role} {args.name}" if args.action == "add" else f"new password for {args.name}")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    """One line from standard input (--password-stdin, or a pipe), else typed twice at a prompt."""
    from workbench.auth import AuthError

    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    import getpass

    password = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != password:
        raise AuthError("the passwords differ")
    return password


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
                      f"{progress['complete']} complete\t{progress['answers']}/{progress['needed']} answers"
                      + (f"\tarchived {task.archived}" if task.archived else ""))
            return 0
        if not args.name:
            raise LabelingError(f"`tasks {args.action}` needs the task's NAME")
        if args.action == "add":
            if not args.kind:
                raise LabelingError("give the task's --kind: demonstration, pairwise, ranking or review")
            guidelines = args.guidelines or ""
            if guidelines and Path(guidelines).is_file():
                guidelines = Path(guidelines).read_text(encoding="utf-8")
            task = labeling.create_task(cli_admin, name=args.name, kind=args.kind,
                                        overlap=1 if args.overlap is None else args.overlap, guidelines=guidelines,
                                        sources=args.source, tags=args.tag, query=args.query,
                                        max_responses=args.max_responses,
                                        versions=args.versions.split(",") if args.versions else None)
            print(f"created task {task.name} ({task.kind}, {task.overlap} per item): {task.items} items")
            return 0
        if store.task(args.name) is None:
            raise LabelingError(f"no task named {args.name!r}: see `workbench tasks list`")
        if args.action in ("edit", "archive", "unarchive", "delete"):
            print(_change_task(store, args))
            return 0
        if args.action == "prioritize":
            return _prioritize(project, store, args)
        result = (labeling.progress(cli_admin, args.name) if args.action == "progress"
                  else labeling.agreement(cli_admin, args.name))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(progress_markdown(result) if args.action == "progress" else agreement_markdown(result))
    return 0


def _change_task(store, args: argparse.Namespace) -> str:
    """edit, archive, unarchive or delete a task; the line to print."""
    from annotation.labeling import LabelingError
    from workbench.store import StoreError

    try:
        if args.action == "edit":
            guidelines = args.guidelines
            if guidelines and Path(guidelines).is_file():
                guidelines = Path(guidelines).read_text(encoding="utf-8")
            if guidelines is None and args.overlap is None:
                raise LabelingError("`tasks edit` changes --guidelines and/or --overlap: give one")
            task = store.edit_task(args.name, guidelines=guidelines, overlap=args.overlap)
            return f"task {task.name}: overlap {task.overlap}, guidelines {len(task.guidelines)} characters"
        if args.action == "delete":
            done = store.delete_task(args.name)
            return f"deleted task {done['task']} and its {done['items']} items"
        changed = store.archive_task(args.name, args.action == "archive")
        state = "archived (out of annotators' lists; its labels stay)" if args.action == "archive" else "active"
        return f"task {args.name}: {state}" + ("" if changed else ", as before")
    except StoreError as exc:
        raise LabelingError(str(exc)) from None


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
    p = sub.add_parser("users", help="the people who sign in (annotator, reviewer, admin): add, list, change a "
                                     "role, reset a password, deactivate or reactivate")
    p.add_argument("action", choices=["add", "list", "role", "reset-password", "deactivate", "activate"],
                   help="deactivate: the user can no longer sign in, their labels stay; activate: undo it")
    p.add_argument("name", nargs="?")
    p.add_argument("new_role", nargs="?", metavar="ROLE", choices=["annotator", "reviewer", "admin"],
                   help="role: the user's new role")
    options.project(p)
    p.add_argument("--role", choices=["annotator", "reviewer", "admin"])
    p.add_argument("--password-stdin", action="store_true",
                   help="add, reset-password: read the password from standard input")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("tasks", help="labeling tasks: add, list, progress, agreement, prioritize, edit, archive, "
                                     "unarchive, delete")
    p.add_argument("action", choices=["add", "list", "progress", "agreement", "prioritize", "edit", "archive",
                                      "unarchive", "delete"],
                   help="prioritize: reorder the task's open items so the ones worth labeling come first; edit: "
                        "new --guidelines or --overlap; archive: out of annotators' lists and queues, labels kept; "
                        "delete: only while nobody has answered")
    p.add_argument("name", nargs="?")
    options.project(p)
    p.add_argument("--kind", choices=["demonstration", "pairwise", "ranking", "review", "feedback"],
                   help="feedback: thumbs up or down on one response at a time (KTO's unpaired data)")
    p.add_argument("--overlap", type=int, help="annotators per item (default 1); review: votes per pair; edit: "
                                                "never below the answers an item already has")
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
