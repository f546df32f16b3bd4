"""The Gradio app shell. The server process owns the project's store (one DuckDB writer per file); every
handler is a plain function of the store so tests call it without a browser."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.config import Project
from workbench.store import Store

if TYPE_CHECKING:  # the jobs module imports transformers: keep the CLI's start-up light
    from workbench.jobs import JobRunner


def stats_markdown(store: Store, project_name: str) -> str:
    s = store.stats()
    lines = [f"## {project_name}", "", "| what | count |", "|---|---|", f"| prompts | {s['prompts']} |"]
    lines += [f"| prompts tagged `{t}` | {n} |" for t, n in s["prompts_by_tag"].items()]
    lines += [f"| responses ({origin}) | {n} |" for origin, n in s["responses_by_origin"].items()]
    lines += [f"| labels: {kind} | {n} |" for kind, n in s["labels_by_kind"].items()]
    lines += [f"| labels by annotator `{who}` | {n} |" for who, n in s["labels_by_annotator"].items()]
    lines += [f"| imports | {s['imports']} |", f"| model versions | {len(s['model_versions'])} |"]
    return "\n".join(lines)


def version_choices(store: Store, stage: str | None = None) -> list[str]:
    return [v["id"] for v in store.stats()["model_versions"] if stage is None or v["stage"] == stage]


def start_job(runner: JobRunner, stage: str, parent: str | None, reward_model: str | None, max_steps: float | None,
              learning_rate: float | None, full: bool) -> str:
    """Start a training job from the UI's settings; returns a line for the status box."""
    from workbench.runs import RunError, TrainRequest

    trl = {k: v for k, v in {"max_steps": int(max_steps) if max_steps else None,
                             "learning_rate": learning_rate or None}.items() if v is not None}
    request = TrainRequest(stage=stage, parent=parent or None, reward_model=reward_model or None,
                           adapter={"full": True} if full else {}, trl=trl)
    try:
        job = runner.start(request)
    except RunError as exc:
        return f"**Not started:** {exc}"
    return f"Started **{job.run_id}**: logs and adapter in `{job.run_dir}`"


def job_view(runner: JobRunner):
    """(status markdown, loss table) for the live view."""
    import pandas as pd

    status = runner.status()
    if status["state"] == "idle":
        return "No training job yet.", pd.DataFrame({"step": [], "loss": []})
    lines = [f"**{status['run_id']}** ({status['stage']}): {status['state']}"]
    if status["last"]:
        figures = {k: v for k, v in status["last"].items() if isinstance(v, int | float)}
        lines.append(", ".join(f"{k} {v:.4g}" for k, v in list(figures.items())[:8]))
    if status["error"]:
        lines.append(f"Error: {status['error']}")
    lines += [f"Warning: {w}" for w in status["warnings"]]
    steps, losses = zip(*status["losses"], strict=True) if status["losses"] else ((), ())
    return "\n\n".join(lines), pd.DataFrame({"step": list(steps), "loss": list(losses)})


def cancel_job(runner: JobRunner) -> str:
    job = runner.cancel()
    return f"**{job.run_id}**: {job.state}" if job else "No job to cancel."


def build_app(project: Project, store: Store):
    import gradio as gr

    from workbench.jobs import JobRunner

    runner = JobRunner(project, store)
    with gr.Blocks(title=f"alignment-workbench: {project.config.name}") as app:
        gr.Markdown("# alignment-workbench", elem_id="title")
        with gr.Tab("Project"):
            stats = gr.Markdown(elem_id="stats")
            refresh = gr.Button("Refresh", elem_id="refresh")
        with gr.Tab("Train"):
            with gr.Row():
                stage = gr.Dropdown(["sft", "reward", "dpo", "ppo"], value="sft", label="Stage", elem_id="stage")
                parent = gr.Dropdown([], label="Parent version", allow_custom_value=True, elem_id="parent")
                reward = gr.Dropdown([], label="Reward model (ppo)", allow_custom_value=True, elem_id="reward")
            with gr.Row():
                max_steps = gr.Number(value=50, label="Max steps", precision=0, elem_id="max-steps")
                lr = gr.Number(value=None, label="Learning rate (0: the stage default)", elem_id="lr")
                full = gr.Checkbox(label="Full fine-tuning (small models)", elem_id="full")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start")
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            job_status = gr.Markdown(elem_id="job-status")
            plot = gr.LinePlot(x="step", y="loss", title="Training loss", elem_id="loss-plot")
            timer = gr.Timer(1.0)

        def show_stats() -> str:
            return stats_markdown(store, project.config.name)

        def choices():
            return (gr.update(choices=[""] + version_choices(store)),
                    gr.update(choices=[""] + version_choices(store, "reward")))

        app.load(show_stats, outputs=stats, api_name="stats")
        app.load(choices, outputs=[parent, reward], api_name=False)
        refresh.click(show_stats, outputs=stats, api_name=False)
        start.click(lambda *a: start_job(runner, *a), inputs=[stage, parent, reward, max_steps, lr, full],
                    outputs=job_status, api_name=False)
        cancel.click(lambda: cancel_job(runner), outputs=job_status, api_name=False)
        timer.tick(lambda: job_view(runner), outputs=[job_status, plot], api_name=False)
    return app


class ServeError(Exception):
    """The server cannot start; the message says why and what to do."""


def serve(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Open the store (this process becomes its one writer) and start the server."""
    store = Store.open(project.store_path)
    app = build_app(project, store)
    try:
        app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True)
    except OSError as exc:
        store.close()
        if "port" in str(exc).lower():
            raise ServeError(f"port {port} on {host} is in use: stop what holds it, or pass --port N") from None
        raise ServeError(f"cannot start the server on {host}:{port}: {exc}") from None
    return app, store
