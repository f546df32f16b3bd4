"""Jobs inside the server (training runs and generation jobs): one at a time, each in its own process,
followed and cancellable.

The server owns the store, so a job's run is prepared and ingested here (on the job's own thread, with
its own cursor); the trainer process sees only its run folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from trainers.run_folder import read_metrics
from workbench.config import Project
from workbench.generate import (
    GenerateRequest,
    ingest_generation,
    launch_generation,
    prepare_generation,
    read_progress,
)
from workbench.runs import RunError, RunResult, TrainRequest, ingest, launch, prepare_run
from workbench.store import Store


@dataclass
class Job:
    run_id: str
    stage: str
    run_dir: Path
    state: str = "running"  # running | succeeded | failed | cancelled
    error: str | None = None
    result: RunResult | None = None
    added: int | None = None  # generation: new responses stored
    cancel_requested: bool = field(default=False, repr=False)


class JobRunner:
    def __init__(self, project: Project, store: Store):
        self.project = project
        self.store = store
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._proc = None
        self._thread: threading.Thread | None = None

    def _refuse_if_busy(self) -> None:
        if self._job is not None and self._job.state == "running":
            raise RunError(f"job {self._job.run_id} is still running: wait for it or cancel it first")

    def start_generation(self, request: GenerateRequest) -> Job:
        """Prepare and launch a generation job (same one-at-a-time rule as training)."""
        with self._lock:
            self._refuse_if_busy()
            job_id, job_dir, _ = prepare_generation(self.project, self.store, request)
            self._proc = launch_generation(job_dir)
            self._job = job = Job(run_id=job_id, stage="generate", run_dir=job_dir)
            self._thread = threading.Thread(target=self._finish, args=(job, self._proc), daemon=True)
            self._thread.start()
            return job

    def start(self, request: TrainRequest) -> Job:
        """Prepare and launch a run; refuses while another job runs (jobs run one at a time)."""
        with self._lock:
            self._refuse_if_busy()
            run_id, run_dir, _ = prepare_run(self.project, self.store, request)
            self._proc = launch(run_dir, request.stage, request.accelerate_config)
            self._job = job = Job(run_id=run_id, stage=request.stage, run_dir=run_dir)
            self._thread = threading.Thread(target=self._finish, args=(job, self._proc), daemon=True)
            self._thread.start()
            return job

    def _finish(self, job: Job, proc) -> None:
        returncode = proc.wait()
        if job.cancel_requested:
            self.store.finish_run(job.run_id, status="cancelled", error="cancelled by the user")
            job.state, job.error = "cancelled", "cancelled by the user"
            return
        if job.stage == "generate":
            result = ingest_generation(self.store, job.run_id, job.run_dir, returncode)
            job.state, job.error, job.added = result.status, result.error, result.added
            return
        job.result = ingest(self.store, job.run_id, job.run_dir, returncode)
        job.state, job.error = job.result.status, job.result.error

    def cancel(self) -> Job | None:
        with self._lock:
            job, proc = self._job, self._proc
            if job is None or job.state != "running":
                return job
            job.cancel_requested = True
            # The trainer runs in its own process group: stop it and anything it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        self.wait()
        return job

    def wait(self, timeout: float | None = None) -> Job | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._job

    def status(self) -> dict:
        job = self._job
        if job is None:
            return {"state": "idle"}
        if job.stage == "generate":
            return {"run_id": job.run_id, "stage": job.stage, "state": job.state, "error": job.error, "losses": [],
                    "last": None, "warnings": [], "progress": read_progress(job.run_dir), "added": job.added}
        metrics = read_metrics(job.run_dir)
        losses = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
        return {"run_id": job.run_id, "stage": job.stage, "state": job.state, "error": job.error,
                "losses": losses, "last": metrics[-1] if metrics else None,
                "warnings": job.result.warnings if job.result else []}
