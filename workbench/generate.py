"""Generation jobs: snapshot the chosen prompts into a job folder, run trainers.generation in its own
process, and store the replies as model responses (with their sampling settings) in one transaction.

A job is recorded as a run of stage `generate` (same table, same statuses as training runs), so a crashed
job shows as failed with its error and stores nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.config import Project
from workbench.runs import how_it_ended
from workbench.store import Store


class GenerationError(Exception):
    """A generation job that cannot start, or that failed; the message says why."""


@dataclass
class GenerateRequest:
    versions: list[str]  # model version ids, or "base" for the project's base model
    sources: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    query: str | None = None
    limit: int | None = None
    sampling: dict = field(default_factory=dict)  # trainers.generation.Sampling fields
    batch_size: int = 16
    backend: str = "auto"  # auto: vLLM when installed and a GPU is present, else HF generate; hf: always HF
    skip_existing: bool = False  # leave out prompts that already have a reply of every version asked for


@dataclass
class GenerateResult:
    job_id: str
    status: str
    job_dir: Path
    added: int = 0
    summary: dict = field(default_factory=dict)
    error: str | None = None


def resolve_versions(project: Project, store: Store, names: list[str]) -> list[dict]:
    """What loads each named version for generation: its base model, its adapter (None for the base or a
    --full version) and the adapters merged under it; refuses unknown, reward and foreign versions."""
    base_model = project.base_model_path()
    out = []
    for name in names:
        if name == "base":
            out.append({"id": "base", "adapter": None, "stacked_on": []})
            continue
        version = store.model_version(name)
        if version is None:
            raise GenerationError(f"--versions: no model version {name!r} (see `workbench stats`; 'base' is the "
                                  "base model)")
        if version["stage"] == "reward":
            raise GenerationError(f"--versions: {name} is a reward model; it scores replies, it does not write them")
        if version["config"].get("project_base_model", version["base_model"]) != base_model:
            raise GenerationError(f"--versions: {name} was trained on {version['base_model']}, not this project's "
                                  f"base model {base_model}")
        out.append({"id": name, **how_to_load(version)})
    return out


def how_to_load(version: dict) -> dict:
    """The base model, adapter and merged-under adapters that load a policy version. A --full version is a
    whole model; an adapter sits on the base its run used (a DPO run over a --full SFT version trains its
    adapter over that SFT model, not over the project's base)."""
    full = bool(version["config"].get("adapter", {}).get("full"))
    return {"adapter": None if full else version["path"], "stacked_on": list(version["metrics"].get("stacked_on", [])),
            "base_model": version["path"] if full else version["base_model"]}


def prepare_generation(project: Project, store: Store, request: GenerateRequest) -> tuple[str, Path, dict]:
    """Check everything, then write the job folder (job.json + prompts.jsonl) and record the job."""
    from trainers.generation import Sampling
    from trainers.models import SettingsError, check_base_model

    if not request.versions:
        raise GenerationError("--versions: name at least one model version (or 'base')")
    if len(set(request.versions)) != len(request.versions):
        raise GenerationError(f"--versions: {','.join(request.versions)} names a version twice")
    if request.backend not in ("auto", "hf"):
        raise GenerationError(f"--backend {request.backend!r}: choose auto or hf")
    if request.batch_size < 1:
        raise GenerationError("--batch-size must be 1 or more")
    try:
        sampling = Sampling(**request.sampling)
    except (TypeError, ValueError) as exc:
        raise GenerationError(f"sampling settings: {exc}") from None
    base_model = project.base_model_path()
    try:
        check_base_model(base_model)
    except SettingsError as exc:
        raise GenerationError(str(exc)) from None
    versions = resolve_versions(project, store, request.versions)
    prompts = store.selected_prompts(sources=request.sources, tags=request.tags, query=request.query,
                                     limit=request.limit)
    if request.skip_existing and prompts:
        ids = [p["prompt_id"] for p in prompts]
        have = {v: store.prompts_with_replies_of(v, ids) for v in request.versions}
        prompts = [p for p in prompts if not all(p["prompt_id"] in have[v] for v in request.versions)]
    if not prompts:
        raise GenerationError("no prompts match this selection" +
                              (" that lack replies" if request.skip_existing else "") + ": nothing to generate")
    job_id = store.next_run_id("generate")
    job_dir = project.runs_dir / job_id
    if job_dir.exists():
        raise GenerationError(f"{job_dir} already exists: remove it or let the workbench number the job")
    job_dir.mkdir(parents=True)
    job = {"job_id": job_id, "base_model": base_model, "versions": versions, "sampling": asdict(sampling),
           "batch_size": request.batch_size, "backend": request.backend,
           "selection": {"sources": request.sources, "tags": request.tags, "query": request.query,
                         "limit": request.limit}, "prompts": len(prompts)}
    (job_dir / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts), encoding="utf-8")
    (job_dir / "job.json").write_text(json.dumps(job, indent=2), encoding="utf-8")
    store.create_run(run_id=job_id, stage="generate", parent_version_id=None, config=job, dataset_hash="",
                     run_dir=str(job_dir))
    return job_id, job_dir, job


def launch_generation(job_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
           "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}
    with (job_dir / "stdout.log").open("ab") as out, (job_dir / "stderr.log").open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "trainers.generation", str(job_dir)], stdout=out, stderr=err,
                                env=env, start_new_session=True)


def read_progress(job_dir: Path) -> dict:
    path = job_dir / "progress.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"done": 0, "total": None}


def ingest_generation(store: Store, job_id: str, job_dir: Path, returncode: int) -> GenerateResult:
    """Store the job's replies (all or none) and mark it ended."""
    status, error = how_it_ended(job_dir, returncode, "generation")
    if error is not None:
        store.finish_run(job_id, status="failed", error=error)
        return GenerateResult(job_id, "failed", job_dir, error=error)
    job = json.loads((job_dir / "job.json").read_text())
    rows = [json.loads(line) for line in (job_dir / "out.jsonl").read_text(encoding="utf-8").splitlines() if line]
    summary = status["summary"]
    added = store.add_generated(rows, job_id=job_id, sampling=job["sampling"], backend=summary.get("backend", "hf"))
    store.finish_run(job_id, status="succeeded")
    return GenerateResult(job_id, "succeeded", job_dir, added=added, summary=summary)


def generate(project: Project, store: Store, request: GenerateRequest,
             on_progress: Callable[[dict], None] | None = None) -> GenerateResult:
    """Prepare, run to the end (reporting progress), ingest. Ctrl-C cancels and stores nothing."""
    job_id, job_dir, _ = prepare_generation(project, store, request)
    proc = launch_generation(job_dir)
    last = None
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            progress = read_progress(job_dir)
            if on_progress and progress != last:
                on_progress(progress)
                last = progress
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        store.finish_run(job_id, status="cancelled", error="cancelled by the user")
        return GenerateResult(job_id, "cancelled", job_dir, error="cancelled by the user")
    return ingest_generation(store, job_id, job_dir, proc.returncode)
