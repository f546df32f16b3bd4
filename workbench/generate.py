"""Generation jobs: snapshot the chosen prompts into a job folder, run trainers.generation in its own
process, and store the replies as model responses (with their sampling settings) in one transaction.

A job is recorded as a run of stage `generate` (same table, same statuses as training runs), so a crashed
job shows as failed with its error and stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench import jobs
from workbench.config import Project
from workbench.errors import WorkbenchError, excerpt
from workbench.store import Store


class GenerationError(WorkbenchError):
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

    def check(self) -> None:
        """Every setting a form or a flag can get wrong, one line each: n=0 or 0 tokens would run a job that
        writes nothing, and limit -1 reached DuckDB as a Binder error."""
        for flag, value in (("--limit", self.limit), ("--batch-size", self.batch_size)):
            if value is None and flag == "--limit":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise GenerationError(f"{flag} {excerpt(value)}: give a whole number")
            if value < 1:
                raise GenerationError(f"{flag} {value}: must be 1 or more")
        # Ranges of n, max_new_tokens, temperature and top_p are Sampling's own checks; the types are not.
        for key in ("n", "max_new_tokens", "top_k", "seed"):
            value = self.sampling.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise GenerationError(f"sampling settings: {key} {excerpt(value)} is not a whole number")
        for key in ("top_k", "seed"):
            if isinstance(self.sampling.get(key), int) and self.sampling[key] < 0:
                raise GenerationError(f"sampling settings: {key} must be 0 or more, got {self.sampling[key]}")
        for key in ("temperature", "top_p", "repetition_penalty"):
            value = self.sampling.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or value != value):  # NaN
                raise GenerationError(f"sampling settings: {key} {excerpt(value)} is not a number")
        for what, values in (("--versions", self.versions), ("--source", self.sources), ("--tag", self.tags)):
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise GenerationError(f"{what} {excerpt(values)}: give a list of names")
        if self.query is not None and not isinstance(self.query, str):
            raise GenerationError(f"--query {excerpt(self.query)}: give text")


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
            raise GenerationError(f"--versions: no model version {excerpt(name)} (see `workbench stats`; 'base' is the "
                                  "base model)")
        if version.stage == "reward":
            raise GenerationError(f"--versions: {name} is a reward model; it scores replies, it does not write them")
        if version.project_base_model != base_model:
            raise GenerationError(f"--versions: {name} was trained on {version.base_model}, not this project's "
                                  f"base model {base_model}")
        out.append({"id": name, **version.load_spec()})
    return out


def prepare_generation(project: Project, store: Store, request: GenerateRequest) -> tuple[str, Path, dict]:
    """Check everything, then write the job folder (job.json + prompts.jsonl) and record the job."""
    from trainers.generation import Sampling  # light at import: transformers loads only in the job's process
    from trainers.models import SettingsError, check_base_model

    request.check()
    if not request.versions:
        raise GenerationError("--versions: name at least one model version (or 'base')")
    if len(set(request.versions)) != len(request.versions):
        raise GenerationError(f"--versions: {excerpt(','.join(request.versions))} names a version twice")
    if request.backend not in ("auto", "hf"):
        raise GenerationError(f"--backend {excerpt(request.backend)}: choose auto or hf")
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
    settings = {"base_model": base_model, "versions": versions, "sampling": asdict(sampling),
                "batch_size": request.batch_size, "backend": request.backend,
                "selection": {"sources": request.sources, "tags": request.tags, "query": request.query,
                              "limit": request.limit}, "prompts": len(prompts)}
    return jobs.write_job(project, store, "generate", settings, {"prompts.jsonl": prompts})


def _prepare(project: Project, store: Store, request: GenerateRequest) -> jobs.Prepared:
    job_id, job_dir, _ = prepare_generation(project, store, request)
    return jobs.Prepared(job_id, "generate", job_dir, "generation")


def _ingest(store: Store, job: jobs.Prepared, status: dict) -> GenerateResult:
    """Store the job's replies (all or none) and mark it ended."""
    settings = json.loads((job.job_dir / "job.json").read_text())
    rows = jobs.read_jsonl(job.job_dir / "out.jsonl")
    summary = status["summary"]
    added = store.add_generated(rows, job_id=job.job_id, sampling=settings["sampling"],
                                backend=summary.get("backend", "hf"))
    store.finish_run(job.job_id, status="succeeded")
    return GenerateResult(job.job_id, "succeeded", job.job_dir, added=added, summary=summary)


def _view(job_dir: Path, result: GenerateResult | None) -> dict:
    return {"progress": jobs.read_progress(job_dir), "added": result.added if result else None}


GENERATION = jobs.JobKind(name="generation", prepare=_prepare, ingest=_ingest, result=GenerateResult, view=_view)


def generate(project: Project, store: Store, request: GenerateRequest,
             on_progress: Callable[[dict], None] | None = None) -> GenerateResult:
    """Prepare, run to the end (reporting progress), ingest. Ctrl-C cancels and stores nothing."""
    return jobs.run(GENERATION, project, store, request, jobs.progress_follower(on_progress) if on_progress else None)
