"""Model judges: `judges add|list|template|agreement|prioritize|accept` manage them and read what they said;
`judge TASK --judge NAME` runs one over a task's items as a job."""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from pathlib import Path

from workbench.cli import options


def _add(store, args: argparse.Namespace) -> int:
    from annotation.judging import JudgeError, check_template

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.name):
        raise JudgeError(f"judge name {args.name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    given = [k for k in ("endpoint", "reward_model", "model_version") if getattr(args, k)]
    if len(given) != 1:
        raise JudgeError("a judge is one of: --endpoint URL --model NAME (an OpenAI-compatible server), "
                         "--reward-model VERSION, or --model-version VERSION|base (prompted in a job)")
    if args.endpoint:
        if not args.model:
            raise JudgeError("--endpoint needs --model: the model name the server serves")
        kind, config = "http", {"url": args.endpoint, "model": args.model, "api_key_env": args.api_key_env,
                                "concurrency": args.concurrency, "timeout": args.timeout, "retries": args.retries}
    elif args.reward_model:
        kind, config = "reward", {"version": args.reward_model}
    else:
        kind, config = "model", {"version": args.model_version}
    if kind != "reward":
        config["max_tokens"] = args.max_tokens
    for mode in ("pairwise", "pointwise"):
        path = getattr(args, f"{mode}_template")
        if path:
            if kind == "reward":
                raise JudgeError("a reward-model judge reads no template: it scores each response")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise JudgeError(f"--{mode}-template {path}: {exc.strerror}") from None
            config[f"{mode}_template"] = check_template(mode, text)
    if kind in ("reward", "model") and config["version"] != "base" and store.model_version(config["version"]) is None:
        raise JudgeError(f"no model version named {config['version']} (see `workbench versions list`)")
    store.save_judge(args.name, kind, config, f"cli:{getpass.getuser()}")
    print(f"judge {args.name} ({kind}) saved; run it with `workbench judge TASK --judge {args.name}`")
    return 0


def cmd_judges(args: argparse.Namespace) -> int:
    from annotation.judge_agreement import accept_confident, judge_report, order_by_judges
    from annotation.judging import JudgeError, template_for
    from annotation.reports import judges_markdown
    from workbench.store import Store

    if args.action == "template":  # the default an admin copies and edits
        text = template_for({"config": {}}, "feedback" if args.mode == "pointwise" else "pairwise")
        if not args.out:
            print(text)
            return 0
        if Path(args.out).exists():
            raise JudgeError(f"--out {args.out} exists: edit it, or choose another file")
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"the default {args.mode} template is in {args.out}: edit it, then "
              f"`workbench judges add NAME ... --{args.mode}-template {args.out}`")
        return 0
    project = options.load(args)
    with Store.open(project.store_path, read_only=args.action in ("list", "agreement")) as store:
        if args.action == "list":
            for judge in store.judges():
                shown = {k: v for k, v in judge["config"].items() if not k.endswith("_template")}
                print(f"{judge['name']}\t{judge['kind']}\t{json.dumps(shown)}")
            return 0
        if not args.name:
            raise JudgeError(f"judges {args.action} needs a name: " +
                             ("the judge's" if args.action == "add" else "the task's"))
        if args.action == "add":
            return _add(store, args)
        task = store.task(args.name)
        if task is None:
            raise JudgeError(f"no task named {args.name!r}: see `workbench tasks list`")
        if args.action == "suggestions":  # read-write: the store is opened for writing unless list/agreement
            if args.show:
                store.set_task_suggestions(task.id, args.show)
            from annotation.suggestions import SHOWN

            print(f"task {task.name}: judges' verdicts are {SHOWN[store.task_suggestions(task.id)]}")
            return 0
        if args.action == "agreement":
            places = store.item_response_ids(task.id)
            result = judge_report(store.task_answers(task.id), store.judgements(task.id), places)
            print(json.dumps(result, indent=2) if args.json else f"# {task.name}\n\n" + judges_markdown(result))
            return 0
        if args.action == "prioritize":
            ordered, head = order_by_judges(store, task.id)
            print(f"task {task.name}: {ordered} open items ordered by judge doubt; first in the queue:")
            for item, reason in head:
                print(f"  {item}\t{reason}")
            return 0
        # accept
        if not args.judge:
            raise JudgeError("judges accept needs --judge NAME: whose verdicts to accept")
        count, mine = accept_confident(store, task.id, args.judge, args.min_probability, f"cli:{getpass.getuser()}")
        print(f"task {task.name}: accepted {count} of {mine} verdicts of judge:{args.judge} with "
              f"probability >= {args.min_probability} (export them with --judges accepted)")
        return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from workbench.judging import JudgeRequest, run_judge
    from workbench.store import Store

    project = options.load(args)

    def show(progress: dict) -> None:  # on stderr: --json keeps stdout for the result
        if progress.get("total"):
            print(f"  {progress['done']}/{progress['total']} questions answered", file=sys.stderr, flush=True)

    with Store.open(project.store_path) as store:
        result = run_judge(project, store, JudgeRequest(task=args.task, judge=args.judge, every=args.all_items),
                           on_progress=show)
    if result.status != "succeeded":
        print(f"workbench judge: job {result.job_id} {result.status}: {result.error}", file=sys.stderr)
        print(f"  logs: {result.job_dir}/stderr.log; nothing was stored, and running it again resumes",
              file=sys.stderr)
        return 1
    done = result.done
    if args.json:
        print(json.dumps(done | {"job": result.job_id}, indent=2))
    else:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(done["by_kind"].items())) or "nothing left to judge"
        print(f"judge {done['judge']} on {args.task}: {done['items']} items ({kinds}); job {result.job_id}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="pre-label a task's items with a model judge, as a job")
    p.add_argument("task", help="a pairwise, ranking or feedback task")
    options.project(p)
    p.add_argument("--judge", required=True, help="the judge's name (see `workbench judges list`)")
    p.add_argument("--all-items", action="store_true",
                   help="also the items people have finished (to measure the judge against them)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("judges", help="model judges: add, list, template, agreement, prioritize, accept")
    p.add_argument("action", choices=["add", "list", "template", "agreement", "prioritize", "accept", "suggestions"],
                   help="add NAME: a judge; agreement TASK: each judge against people; prioritize TASK: serve "
                        "first where judges are unsure or disagree; accept TASK --judge NAME: its confident verdicts; "
                        "suggestions TASK [--show MODE]: whether annotators see judges' verdicts")
    p.add_argument("name", nargs="?", help="the judge (add) or the task")
    options.project(p)
    g = p.add_argument_group("add: what the judge is (one of)")
    g.add_argument("--endpoint", help="an OpenAI-compatible server's base URL, e.g. http://localhost:8000/v1")
    g.add_argument("--reward-model", help="a reward-model version: its score per response")
    g.add_argument("--model-version", help="a policy version, or 'base', prompted with the template in a job")
    g = p.add_argument_group("add: endpoint settings")
    g.add_argument("--model", help="the model name the endpoint serves")
    g.add_argument("--api-key-env", help="the environment variable holding the API key (never stored)")
    g.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds before a request is given up (default 60)")
    g.add_argument("--retries", type=int, default=3, help="retries of a failed request, with backoff (default 3)")
    g.add_argument("--max-tokens", type=int, default=16, help="reply length a prompted judge may use (default 16)")
    g.add_argument("--pairwise-template", help="a file: the pairwise question, with {prompt}, {a} and {b}")
    g.add_argument("--pointwise-template", help="a file: the feedback question, with {prompt} and {response}")
    p.add_argument("--mode", choices=["pairwise", "pointwise"], default="pairwise", help="template: which default")
    p.add_argument("--out", help="template: write the default to this new file (else print it)")
    p.add_argument("--judge", help="accept: whose verdicts")
    p.add_argument("--show", choices=["hidden", "after", "preselect"],
                   help="suggestions: hidden (default), after the annotator's answer, or preselect before it")
    p.add_argument("--min-probability", type=float, default=0.9,
                   help="accept: verdicts at least this sure (default 0.9; a prompted judge is 1 when both orders agree)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_judges)
