"""The one job runner, for the CLI and the server: prepare a job folder, run a `trainers/` module on it in its
own process group, follow its progress, cancel it, ingest what it wrote.

Training (workbench/runs.py), generation (workbench/generate.py), scoring (workbench/scoring.py) and judging
three kinds. A `JobKind` says only what differs: how a request becomes a job folder, which module runs it,
how a successful folder is stored, and what the UI shows while it runs. Everything else is here, once:

    run(kind, project, store, request, on_poll)    the CLI: to the end, Ctrl-C cancels
    JobRunner(project, store).start(kind, request) the server: one job at a time, followed and cancellable

The process sees only its folder; the store is written here, by the process that owns it (DuckDB allows one
writer per file). A job that fails or is killed leaves the store as it was, its run marked failed with the
error. Nothing here imports `trainers/` or torch: the web server process never loads a model.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench.config import Project
from workbench.errors import WorkbenchError
from workbench.store import Store

POLL_S = 0.5  # how often a followed job's folder is read: live enough for a loss plot, cheap for the disk
CANCELLED = "cancelled by the user"


class RunError(WorkbenchError):
    """A job that cannot start, or that failed; the message says why."""


class Ended(Protocol):
    """What every kind's result has: how the job ended."""

    status: str
    error: str | None


@dataclass
class Prepared:
    """A job folder ready to run, recorded in the store as a running run."""

    job_id: str
    stage: str  # the run's stage in the store: sft, dpo, ..., generate, score
    job_dir: Path
    module: str  # the job runs `python -m trainers.<module> JOB_DIR`
    accelerate_config: str | None = None  # training only: run the module under `accelerate launch`


@dataclass(frozen=True)
class JobKind:
    """What one kind of job does differently from the others; a plain record, no base class."""

    name: str  # in messages: "the training process exited with code 1"
    prepare: Callable[[Project, Store, Any], Prepared]  # check the request, write the folder, record the run
    ingest: Callable[[Store, Prepared, dict], Any]  # store a succeeded job's output (status.json given)
    result: Callable[..., Any]  # the kind's result type: result(job_id, status, job_dir, error=...)
    view: Callable[[Path, Any], dict]  # live figures for the UI from the folder (and the result, once ended)


def write_job(project: Project, store: Store, stage: str, settings: dict,
              rows: dict[str, list[dict]]) -> tuple[str, Path, dict]:
    """Number a new job of `stage`, write its folder (job.json: its id and `settings`; a JSON-lines file for each
    of `rows`) and record it as a running run: how a generation or scoring job starts."""
    job_id = store.next_run_id(stage)
    job_dir = project.runs_dir / job_id
    if job_dir.exists():
        raise RunError(f"{job_dir} already exists: remove it or let the workbench number the job")
    job_dir.mkdir(parents=True)
    job = {"job_id": job_id, **settings}
    for name, lines in rows.items():
        (job_dir / name).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    (job_dir / "job.json").write_text(json.dumps(job, indent=2), encoding="utf-8")
    store.create_run(run_id=job_id, stage=stage, parent_version_id=None, config=job, dataset_hash="",
                     run_dir=str(job_dir))
    return job_id, job_dir, job


def job_env() -> dict[str, str]:
    """The environment of every process the workbench starts: offline unless asked otherwise, no telemetry, and
    no tokenizer thread pools fighting the job's own threads."""
    return {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "HF_HUB_DISABLE_TELEMETRY": "1",
            "TOKENIZERS_PARALLELISM": "false"}


def launch(job_dir: Path, module: str, accelerate_config: str | None = None) -> subprocess.Popen:
    """Start `python -m trainers.<module> JOB_DIR` in its own process group, with the folder's own logs. With an
    accelerate config (DeepSpeed ZeRO-3, FSDP, several CPU processes) the same module runs under `accelerate
    launch`; its own group lets a cancel stop every process it started."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config] \
        if accelerate_config else [sys.executable]
    with (job_dir / "stdout.log").open("ab") as out, (job_dir / "stderr.log").open("ab") as err:
        return subprocess.Popen([*launcher, "-m", f"trainers.{module}", str(job_dir)], stdout=out, stderr=err,
                                env=job_env(), start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """Stop a job's process and anything it started (its process group), and wait for it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()


def read_json(path: Path, default: Any = None) -> Any:
    """A JSON file a job writes atomically (progress.json, status.json), or `default` before it exists."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def read_jsonl(path: Path) -> list[dict]:
    """Every complete line of a JSON-lines file a job appends to (metrics.jsonl, out.jsonl, scores.jsonl)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_progress(job_dir: Path) -> dict:
    """{"done", "total"} of a generation or scoring job as its process last wrote it."""
    return read_json(job_dir / "progress.json", {"done": 0, "total": None})


def progress_follower(on_progress: Callable[[dict], None]) -> Callable[[Path], None]:
    """An `on_poll` for `run` that reports progress.json each time it changes."""
    last: dict | None = None

    def poll(job_dir: Path) -> None:
        nonlocal last
        progress = read_progress(job_dir)
        if progress != last:
            on_progress(progress)
            last = progress
    return poll


def metrics_follower(on_metrics: Callable[[dict], None]) -> Callable[[Path], None]:
    """An `on_poll` for `run` that reports each new line of metrics.jsonl once."""
    seen = 0

    def poll(job_dir: Path) -> None:
        nonlocal seen
        lines = read_jsonl(job_dir / "metrics.jsonl")
        for line in lines[seen:]:
            on_metrics(line)
        seen = len(lines)
    return poll


def how_it_ended(folder: Path, returncode: int, what: str) -> tuple[dict | None, str | None]:
    """(status.json, None) for a process that succeeded, else (status or None, the error to record): its
    own error when it wrote one, else its exit code and the last lines of its stderr."""
    status = read_json(folder / "status.json")
    if status is not None and status["status"] == "succeeded" and returncode == 0:
        return status, None
    if status is not None and status.get("error"):
        return status, status["error"]
    tail = (folder / "stderr.log").read_text(errors="replace").strip().splitlines()[-5:]
    return status, f"the {what} process exited with code {returncode}" + (": " + " | ".join(tail) if tail else "")


def ingest(kind: JobKind, store: Store, job: Prepared, returncode: int) -> Any:
    """Read how the job ended from its folder and record it: the kind stores a success, a failure only marks
    the run failed with its error."""
    status, error = how_it_ended(job.job_dir, returncode, kind.name)
    if error is None:
        try:
            return kind.ingest(store, job, status)
        except Exception as exc:  # output the store refuses (the task went away meanwhile): a failed job, not a crash
            error = f"storing the {kind.name} results failed: {type(exc).__name__}: {exc}"
    store.finish_run(job.job_id, status="failed", error=error)
    return kind.result(job.job_id, "failed", job.job_dir, error=error)


def _cancelled(kind: JobKind, store: Store, job: Prepared) -> Any:
    store.finish_run(job.job_id, status="cancelled", error=CANCELLED)
    return kind.result(job.job_id, "cancelled", job.job_dir, error=CANCELLED)


def run(kind: JobKind, project: Project, store: Store, request: Any,
        on_poll: Callable[[Path], None] | None = None) -> Any:
    """The CLI's way: prepare, launch, follow (`on_poll(job_dir)` every POLL_S and once at the end), ingest.
    Ctrl-C stops the process, marks the run cancelled and stores nothing."""
    job = kind.prepare(project, store, request)
    proc = launch(job.job_dir, job.module, job.accelerate_config)
    try:
        while proc.poll() is None:
            time.sleep(POLL_S)
            if on_poll:
                on_poll(job.job_dir)
    except KeyboardInterrupt:
        stop(proc)
        return _cancelled(kind, store, job)
    if on_poll:
        on_poll(job.job_dir)
    return ingest(kind, store, job, proc.returncode)


@dataclass
class Job:
    """The server's current (or last) job, as the UI sees it."""

    run_id: str
    stage: str
    run_dir: Path
    kind: JobKind = field(repr=False)
    state: str = "running"  # running | succeeded | failed | cancelled
    error: str | None = None
    result: Any = None
    cancel_requested: bool = field(default=False, repr=False)


class JobRunner:
    """The server's jobs: one at a time (a second one would fight the first for the machine), each in its own
    process, ingested on the job's own thread (with its own store cursor) when the process ends."""

    def __init__(self, project: Project, store: Store):
        self.project = project
        self.store = store
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self, kind: JobKind, request: Any) -> Job:
        """Prepare and launch a job; refuses while another job runs."""
        with self._lock:
            if self._job is not None and self._job.state == "running":
                raise RunError(f"job {self._job.run_id} is still running: wait for it or cancel it first")
            prepared = kind.prepare(self.project, self.store, request)
            self._proc = proc = launch(prepared.job_dir, prepared.module, prepared.accelerate_config)
            self._job = job = Job(run_id=prepared.job_id, stage=prepared.stage, run_dir=prepared.job_dir, kind=kind)
            self._thread = threading.Thread(target=self._finish, args=(job, prepared, proc), daemon=True)
            self._thread.start()
            return job

    def _finish(self, job: Job, prepared: Prepared, proc: subprocess.Popen) -> None:
        returncode = proc.wait()
        if job.cancel_requested:
            job.result = _cancelled(job.kind, self.store, prepared)
        else:
            job.result = ingest(job.kind, self.store, prepared, returncode)
        job.state, job.error = job.result.status, job.result.error

    def cancel(self, kind: JobKind | None = None) -> Job | None:
        """Stop the running job (only if it is of `kind`, when given: the Tasks tab cancels scoring, never a
        training run) and wait until it is marked cancelled."""
        with self._lock:
            job, proc = self._job, self._proc
            if job is None or job.state != "running" or (kind is not None and job.kind is not kind):
                return job
            job.cancel_requested = True
            stop(proc)
        self.wait()
        return job

    def wait(self, timeout: float | None = None) -> Job | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._job

    def current(self) -> Job | None:
        return self._job

    def status(self) -> dict:
        """What the UI shows: the job, its state and error, and its kind's live figures."""
        job = self._job
        if job is None:
            return {"state": "idle"}
        return {"run_id": job.run_id, "stage": job.stage, "state": job.state, "error": job.error, "losses": [],
                "last": None, "warnings": []} | job.kind.view(job.run_dir, job.result)
