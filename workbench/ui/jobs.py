"""The admin's Versions and jobs tab: every model version with its lineage and key figures, and every job the
project ran (training, generation, scoring, judging) with its state; the running one says "step N/M, ETA".
Opening a job shows its loss plot and the tail of its log. Everything is read from the store and the jobs'
own folders; nothing here starts or stops a job (the Train tab does)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import gradio as gr

from workbench.store import ModelVersion, Run, Store
from workbench.ui.access import Access
from workbench.ui.render import code, inline, preformatted, table_text
from workbench.ui.train import loss_svg

# A version's figures worth a column, in this order and under these names (the rest stays in its metrics).
KEY_METRICS = {"steps": "steps", "train_loss": "train loss", "eval_loss": "eval loss",
               "eval_rewards/accuracies": "reward accuracy", "reward_accuracy": "reward accuracy",
               "forgetting_logp_delta": "forgetting Δ log-p"}
KINDS = {"generate": "generation", "score": "scoring", "judge": "judging"}  # anything else is a training stage
LOG_LINES = 200
LOG_BYTES = 64 * 1024
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def _when(value: str | None) -> str:
    return (value or "")[:16]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _figure(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------ versions
def lineage(version: ModelVersion, versions: dict[str, ModelVersion]) -> list[str]:
    """The version's ancestry, oldest first: its parents' ids, then its own (a cycle or a lost parent ends it)."""
    chain, seen, current = [version.id], {version.id}, version
    while current.parent_id and current.parent_id not in seen:
        seen.add(current.parent_id)
        chain.insert(0, current.parent_id)
        current = versions.get(current.parent_id)
        if current is None:
            break
    return chain


def key_metrics(metrics: dict) -> str:
    shown, parts = set(), []
    for key, name in KEY_METRICS.items():
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and name not in shown:
            shown.add(name)
            parts.append(f"{name} {_figure(value)}")
    if metrics.get("warnings"):
        parts.append(f"{len(metrics['warnings'])} warning{'s' * (len(metrics['warnings']) != 1)}")
    return table_text(" · ".join(parts)) or "–"


def versions_markdown(store: Store) -> str:
    """Every model version, newest first: stage, lineage back to the base model, base model, key figures, when it
    was made and by which run."""
    versions = store.model_versions()
    if not versions:
        return "_No model versions yet: train one in the Train tab._"
    by_id = {v.id: v for v in versions}
    rows = ["| version | stage | lineage | base model | key figures | made | run |", "|---|---|---|---|---|---|---|"]
    for v in reversed(versions):
        chain = " → ".join(["base", *lineage(v, by_id)])
        base = Path(v.project_base_model).name or v.project_base_model
        rows.append(f"| **{table_text(v.id)}** | {table_text(v.stage)} | {table_text(chain)} | {table_text(base)} | "
                    f"{key_metrics(v.metrics)} | {_when(v.created_at)} | {table_text(v.run_id or '–')} |")
    return "\n".join(rows)


# ------------------------------------------------------------------ jobs
def _read_lines(path: Path) -> list[dict]:
    """The JSON lines a job appended so far, skipping a half-written last one."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return [row for row in out if isinstance(row, dict)]


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def losses(run: Run) -> list[tuple[float, float]]:
    return [(m["step"], m["loss"]) for m in _read_lines(Path(run.dir) / "metrics.jsonl")
            if isinstance(m.get("step"), int | float) and isinstance(m.get("loss"), int | float)]


def job_progress(run: Run, now: datetime | None = None) -> str:
    """How far a job is: "step 60/200, ETA 2 min 10 s" for training (from its metrics.jsonl), "40/120 replies"
    for the others (progress.json); the ETA only while it runs, from the pace so far."""
    now = now or datetime.now()
    folder, running = Path(run.dir), run.status == "running"
    started = _parse(run.created_at)
    if run.stage in KINDS:
        progress = _read_json(folder / "progress.json")
        done, total = progress.get("done") or 0, progress.get("total")
        unit = {"generate": "replies", "score": "responses scored", "judge": "items judged"}[run.stage]
        line = f"{done}/{total or '?'} {unit}"
        if running and started and done and total:
            line += f", ETA {_duration((now - started).total_seconds() / done * (total - done))}"
        return line
    steps = [m for m in _read_lines(folder / "metrics.jsonl") if isinstance(m.get("step"), int | float)]
    if not steps:
        return "starting" if running else "–"
    step = int(steps[-1]["step"])
    total = steps[-1].get("max_steps") or run.config.get("trl", {}).get("max_steps")
    total = int(total) if isinstance(total, int | float) and total > 0 else None
    line = f"step {step}/{total or '?'}"
    if running and total and step < total:
        first, last = steps[0], steps[-1]
        if isinstance(first.get("time"), int | float) and isinstance(last.get("time"), int | float) \
                and last["step"] > first["step"]:
            pace = (last["time"] - first["time"]) / (last["step"] - first["step"])
        elif started and step:
            pace = (now - started).total_seconds() / step
        else:
            pace = None
        if pace is not None:
            line += f", ETA {_duration(pace * (total - step))}"
    return line


def jobs_markdown(store: Store, now: datetime | None = None) -> str:
    runs = store.runs()
    if not runs:
        return "_No jobs yet: training, generation, scoring and judging jobs show here._"
    now = now or datetime.now()
    rows = ["| job | kind | state | started | took | progress | error |", "|---|---|---|---|---|---|---|"]
    for run in runs:
        started, ended = _parse(run.created_at), _parse(run.finished_at)
        took = _duration(((ended or now) - started).total_seconds()) if started else "–"
        progress = job_progress(run, now) if run.status == "running" else "–"
        error = run.error or ""
        error = error if len(error) <= 80 else error[:79] + "…"
        rows.append(f"| **{table_text(run.id)}** | {table_text(KINDS.get(run.stage, f'training ({run.stage})'))} | "
                    f"{table_text(run.status)} | {_when(run.created_at)} | {took} | {table_text(progress)} | "
                    f"{table_text(error) or '–'} |")
    return "\n".join(rows)


def log_tail(folder: Path, name: str) -> str:
    """The last LOG_LINES lines (at most LOG_BYTES) of one of a job's logs, with progress bars' carriage-return
    redraws reduced to their last state and terminal control codes removed."""
    path = folder / name
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - LOG_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [_CONTROL.sub("", line.rsplit("\r", 1)[-1]) for line in text.split("\n")]
    return "\n".join(lines[-LOG_LINES:]).strip("\n")


def job_details(store: Store, job_id: str) -> tuple[str, str, str]:
    """(what the job is and how it ended, its loss plot as SVG, the tails of its logs) for one job."""
    run = store.run((job_id or "").strip())
    if run is None:
        return "_Choose a job from the list._" if not job_id else f"No job {code(job_id)}: choose one from the list.", \
            "", ""
    lines = [f"### {inline(run.id)}: {inline(KINDS.get(run.stage, f'training ({run.stage})'))}, {inline(run.status)}",
             f"Started {_when(run.created_at)}" + (f", ended {_when(run.finished_at)}" if run.finished_at else "")
             + f" · folder {code(run.dir)}"]
    if run.parent_version_id:
        lines.append(f"Trained from {code(run.parent_version_id)}.")
    lines.append(f"Progress: {inline(job_progress(run))}")
    if run.error:
        lines.append(f"Error: {inline(run.error)}")
    version = store.model_version(run.id)
    if version is not None:
        lines.append(f"Made the model version {code(version.id)}.")
    folder = Path(run.dir)
    logs = [(name, log_tail(folder, name)) for name in ("stderr.log", "stdout.log")]
    shown = [f"<p><strong>{name}</strong> (last {LOG_LINES} lines)</p>{preformatted(text)}"
             for name, text in logs if text]
    return "\n\n".join(lines), loss_svg(losses(run)), "\n".join(shown) or "<p>No log yet.</p>"


class JobsTab:
    """Layout first (inside the app's Blocks), then `wire`."""

    def __init__(self, store: Store, access: Access, tab: gr.Tab):
        self.store, self.access, self.tab = store, access, tab
        gr.Markdown("### Model versions")
        self.versions = gr.Markdown(elem_id="versions-table", latex_delimiters=[])  # no math in names
        gr.Markdown("### Jobs")
        self.jobs = gr.Markdown(elem_id="jobs-table", latex_delimiters=[])
        with gr.Row():
            self.job = gr.Dropdown([], label="Job", allow_custom_value=True, elem_id="job-choice", scale=3)
            self.open = gr.Button("Open", elem_id="job-open")
            self.refresh = gr.Button("Refresh", elem_id="jobs-refresh")
        self.detail = gr.Markdown(elem_id="job-detail", latex_delimiters=[])
        self.plot = gr.Markdown(elem_id="job-loss-plot")  # our SVG (numbers only)
        self.log = gr.Markdown(elem_id="job-log", latex_delimiters=[])  # the log's text through render.preformatted
        self.timer = gr.Timer(2.0, active=False)  # while the tab shows a running job

    def wire(self) -> None:
        store, access = self.store, self.access

        def overview(request: gr.Request):
            access.admin(request)
            runs = store.runs()
            running = any(r.status == "running" for r in runs)
            return (versions_markdown(store), jobs_markdown(store), gr.update(choices=[r.id for r in runs]),
                    gr.Timer(active=running))

        def open_job(job_id, request: gr.Request):
            access.admin(request)
            return job_details(store, job_id)

        def tick(job_id, request: gr.Request):
            access.admin(request)
            runs = store.runs()
            if not any(r.status == "running" for r in runs):  # the last refresh after the job ended
                return (versions_markdown(store), jobs_markdown(store), *job_details(store, job_id),
                        gr.Timer(active=False))
            return (gr.skip(), jobs_markdown(store), *job_details(store, job_id), gr.Timer(active=True))

        outputs = [self.versions, self.jobs, self.job, self.timer]
        self.tab.select(overview, outputs=outputs, api_name="versions_and_jobs")
        self.refresh.click(overview, outputs=outputs, api_name=False)
        self.open.click(open_job, inputs=self.job, outputs=[self.detail, self.plot, self.log], api_name="job")
        self.job.change(open_job, inputs=self.job, outputs=[self.detail, self.plot, self.log], api_name=False,
                        show_progress="hidden")
        self.timer.tick(tick, inputs=self.job, outputs=[self.versions, self.jobs, self.detail, self.plot, self.log,
                                                        self.timer], api_name=False, show_progress="hidden")
