"""Scoring jobs: the model side of active selection. The task's open items and the model versions' load specs go
into a job folder, trainers.scoring scores every response in its own process (progress, cancel), and the
ingest here hands the scores to annotation.active, which orders the queue through the store.

    workbench tasks prioritize NAME --by margin --model reward-1     # prepares, runs and ingests this job
    python -m trainers.scoring JOB_DIR                               # the job alone, on a job folder

A job is recorded as a run of stage `score` (as generation jobs are runs of stage `generate`), so a crashed
one shows as failed with its error and leaves the queue order as it was. Orders that need no model (word
overlap, task order) run at once, without a job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from annotation.active import check_request, needs_scores, prioritize
from workbench import jobs
from workbench.config import Project
from workbench.store import ModelVersion, Store


@dataclass
class ScoreRequest:
    task: str  # the task's name or id
    by: str  # an annotation.active strategy
    models: list[str] = field(default_factory=list)  # model versions that score, in order


@dataclass
class ScoreResult:
    job_id: str | None  # None: an order that needed no model, done at once
    status: str
    job_dir: Path | None
    done: dict = field(default_factory=dict)  # annotation.active.prioritize's summary
    error: str | None = None


def load_spec(version: ModelVersion) -> dict:
    """What trainers.scoring loads to score with a version: a reward model scores (prompt, reply) pairs, a
    policy version its mean log-prob per token of each reply."""
    return {"name": version.id, "kind": "reward" if version.stage == "reward" else "policy", **version.load_spec()}


def prepare_scoring(project: Project, store: Store, request: ScoreRequest) -> jobs.Prepared:
    """Check the request, then write the job folder (job.json + items.jsonl) and record the job."""
    task, versions = check_request(store, request.task, request.by, request.models)
    if not needs_scores(request.by, request.models):
        raise jobs.RunError(f"--by {request.by} without a model needs no scoring job")
    items = store.open_items_for_scoring(task.id)
    settings = {"task": task.id, "by": request.by, "models": [load_spec(v) for v in versions],
                "items": len(items), "responses": sum(len(i["responses"]) for i in items)}
    rows = [{k: i[k] for k in ("id", "prompt", "responses")} for i in items]
    job_id, job_dir, _ = jobs.write_job(project, store, "score", settings, {"items.jsonl": rows})
    return jobs.Prepared(job_id, "score", job_dir, "scoring")


def _ingest(store: Store, job: jobs.Prepared, status: dict) -> ScoreResult:
    """Order the queue from the job's scores of the items it was given, then mark the job ended."""
    settings = json.loads((job.job_dir / "job.json").read_text())
    scores: dict[str, dict[str, list[float]]] = {spec["name"]: {} for spec in settings["models"]}
    for row in jobs.read_jsonl(job.job_dir / "scores.jsonl"):
        scores[row["model"]][row["item"]] = row["scores"]
    done = prioritize(store, settings["task"], settings["by"], list(scores), scores,
                      items=jobs.read_jsonl(job.job_dir / "items.jsonl"))
    store.finish_run(job.job_id, status="succeeded")
    return ScoreResult(job.job_id, "succeeded", job.job_dir, done=done)


def _view(job_dir: Path, result: ScoreResult | None) -> dict:
    return {"progress": jobs.read_progress(job_dir), "done": result.done if result else None}


SCORING = jobs.JobKind(name="scoring", prepare=prepare_scoring, ingest=_ingest, result=ScoreResult, view=_view)


def order_queue(project: Project, store: Store, request: ScoreRequest,
                on_progress: Callable[[dict], None] | None = None) -> ScoreResult:
    """Reorder a task's queue to the end: through a scoring job when models score (Ctrl-C cancels it and leaves
    the order as it was), else at once."""
    if needs_scores(request.by, request.models):
        return jobs.run(SCORING, project, store, request, jobs.progress_follower(on_progress) if on_progress else None)
    done = prioritize(store, request.task, request.by, request.models)
    return ScoreResult(None, "succeeded", None, done=done)
