"""Judging jobs: a model judge pre-labels a task's items. The questions (annotation.judging fills in the judge's
template, both ways round) go into a job folder, trainers.judging asks them in its own process (progress,
cancel), and the ingest here turns the replies into verdicts, stored in one transaction as labels of kind
'judgement' by `judge:<name>`.

    workbench judge compare --judge gpt     # prepares, runs and ingests this job
    python -m trainers.judging JOB_DIR      # the job alone, on a job folder

A job is a run of stage `judge`. One that fails (an endpoint down past its retries) or is cancelled stores
nothing; the next job of the same judge, template and task copies the replies it had and asks only the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from annotation.judging import JudgeError, judge_template_hash, requests_for, verdicts
from workbench import jobs
from workbench.config import Project
from workbench.store import Store


@dataclass
class JudgeRequest:
    task: str  # the task's name or id
    judge: str  # the judge's name
    every: bool = False  # judge items people have finished too (to measure agreement), not only open ones


@dataclass
class JudgeResult:
    job_id: str | None
    status: str
    job_dir: Path | None
    done: dict = field(default_factory=dict)  # what was stored: verdicts by kind
    error: str | None = None


def judge_spec(project: Project, store: Store, judge: dict) -> dict:
    """What trainers.judging needs to ask the judge: its endpoint, or the model version it loads."""
    config = judge["config"]
    if judge["kind"] == "http":
        return {"kind": "http", **{k: config[k] for k in ("url", "model", "api_key_env", "concurrency", "timeout",
                                                           "retries", "max_tokens") if k in config}}
    if config["version"] == "base":
        return {"kind": judge["kind"], "base_model": project.base_model_path(), "adapter": None, "stacked_on": [],
                "max_tokens": config.get("max_tokens", 16)}
    version = store.model_version(config["version"])
    if version is None:
        raise JudgeError(f"judge {judge['name']}: no model version named {config['version']}")
    return {"kind": judge["kind"], **version.load_spec(), "max_tokens": config.get("max_tokens", 16)}


def check_request(store: Store, request: JudgeRequest) -> tuple[dict, dict]:
    task = store.task(request.task)
    if task is None:
        raise JudgeError(f"no task named {request.task!r}")
    judge = store.judge(request.judge)
    if judge is None:
        known = ", ".join(j["name"] for j in store.judges()) or "none yet: add one with `workbench judges add`"
        raise JudgeError(f"no judge named {request.judge!r} (judges: {known})")
    if judge["kind"] == "http" and judge["config"].get("api_key_env") and \
            not os.environ.get(judge["config"]["api_key_env"]):
        raise JudgeError(f"judge {judge['name']} reads its API key from ${judge['config']['api_key_env']}, "
                         "which is not set")
    return task, judge


def prepare_judging(project: Project, store: Store, request: JudgeRequest) -> jobs.Prepared:
    task, judge = check_request(store, request)
    hash_ = judge_template_hash(judge, task.kind)
    items = store.items_to_judge(task.id, f"judge:{judge['name']}", hash_, every=request.every)
    questions = requests_for(judge, task.kind, items)
    spec = {"name": judge["name"], **judge_spec(project, store, judge)}
    earlier = store.unfinished_judge_job(task.id, spec, hash_)  # the same judge asked the same: resume it
    settings = {"task": task.id, "task_kind": task.kind, "judge": spec, "template_hash": hash_,
                "items": len(items), "requests": len(questions), "resumes": earlier}
    rows = [{k: i[k] for k in ("id", "prompt_id", "response_ids")} for i in items]
    job_id, job_dir, _ = jobs.write_job(project, store, "judge", settings,
                                        {"items.jsonl": rows, "requests.jsonl": questions})
    if earlier and (Path(earlier) / "replies.jsonl").exists():
        asked = {q["id"] for q in questions}
        kept = [r for r in jobs.read_jsonl(Path(earlier) / "replies.jsonl") if r["id"] in asked]
        (job_dir / "replies.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    return jobs.Prepared(job_id, "judge", job_dir, "judging")


def _ingest(store: Store, job: jobs.Prepared, status: dict) -> JudgeResult:
    """Every item's verdict, stored in one transaction, then the job marked ended."""
    settings = json.loads((job.job_dir / "job.json").read_text())
    replies = {r["id"]: r for r in jobs.read_jsonl(job.job_dir / "replies.jsonl")}
    judge = {"kind": settings["judge"]["kind"], "config": {}}
    rows = verdicts(judge, settings["task_kind"], jobs.read_jsonl(job.job_dir / "items.jsonl"), replies,
                    name=settings["judge"]["name"], hash_=settings["template_hash"], job_id=job.job_id)
    store.add_judgements(settings["task"], rows, job_id=job.job_id)
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["payload"]["as"]] = kinds.get(row["payload"]["as"], 0) + 1
    store.finish_run(job.job_id, status="succeeded")
    return JudgeResult(job.job_id, "succeeded", job.job_dir,
                       done={"judge": settings["judge"]["name"], "items": len(rows), "by_kind": kinds,
                             "resumed": (status.get("summary") or {}).get("resumed", 0)})


def _view(job_dir: Path, result: JudgeResult | None) -> dict:
    return {"progress": jobs.read_progress(job_dir), "done": result.done if result else None}


JUDGING = jobs.JobKind(name="judging", prepare=prepare_judging, ingest=_ingest, result=JudgeResult, view=_view)


def run_judge(project: Project, store: Store, request: JudgeRequest,
              on_progress: Callable[[dict], None] | None = None) -> JudgeResult:
    """Judge a task's items to the end (Ctrl-C cancels and stores nothing)."""
    return jobs.run(JUDGING, project, store, request, jobs.progress_follower(on_progress) if on_progress else None)

