"""The Gradio app shell. The server process owns the project's store (one DuckDB writer per file); every
handler is a plain function of the store so tests call it without a browser."""

# No `from __future__ import annotations` here: Gradio injects `gr.Request` by reading annotations at run
# time, and `gr` is imported inside build_app (importing gradio costs seconds; the CLI imports this module).
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


def start_job(runner: "JobRunner", stage: str, parent: str | None, reward_model: str | None, max_steps: float | None,
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


def job_view(runner: "JobRunner"):
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


def cancel_job(runner: "JobRunner") -> str:
    job = runner.cancel()
    return f"**{job.run_id}**: {job.state}" if job else "No job to cancel."


def build_app(project: Project, store: Store):
    """The whole app. Sign-in is Gradio's own (every page, API route and queue call needs the session
    cookie); what a signed-in user may do is checked in each handler from their role in the store."""
    import gradio as gr

    from annotation.labeling import AccessDenied, Labeling, User, require
    from annotation.views import LabelView, TasksView
    from workbench.jobs import JobRunner

    runner = JobRunner(project, store)
    labeling = Labeling(store, max_field_bytes=project.config.max_field_bytes)

    def user_of(request: gr.Request) -> User | None:
        record = store.user(request.username) if request is not None and request.username else None
        return User(record["name"], record["role"]) if record else None

    def admin(request: gr.Request) -> User:
        try:
            return require(user_of(request), "admin")
        except AccessDenied as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title=f"alignment-workbench: {project.config.name}") as app:
        with gr.Row():
            gr.Markdown("# alignment-workbench", elem_id="title")
            whoami = gr.Markdown(elem_id="whoami")
        with gr.Tab("Label", id="label-tab"):
            label_view = LabelView(labeling, user_of)
        with gr.Tab("Tasks", id="tasks-tab", visible=False) as tasks_tab:
            tasks_view = TasksView(labeling, user_of)
        with gr.Tab("Project", id="project-tab", visible=False) as project_tab:
            stats = gr.Markdown(elem_id="stats")
            refresh = gr.Button("Refresh", elem_id="refresh")
        with gr.Tab("Train", id="train-tab", visible=False) as train_tab:
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
            timer = gr.Timer(1.0, active=False)

        def on_load(request: gr.Request):
            user = user_of(request)
            if user is None:  # signed in, then removed from the store
                raise gr.Error("your account no longer exists: ask an admin")
            is_admin = user.role == "admin"
            choices = [""] + version_choices(store) if is_admin else []
            rewards = [""] + version_choices(store, "reward") if is_admin else []
            admin_tasks = labeling.task_choices(user) if is_admin else []
            return [f"Signed in as **{user.name}** ({user.role}) · [sign out](/logout)",
                    gr.update(visible=is_admin), gr.update(visible=is_admin), gr.update(visible=is_admin),
                    gr.update(choices=choices), gr.update(choices=rewards), gr.update(choices=admin_tasks),
                    gr.Timer(active=is_admin), *label_view.on_load(user)]

        app.load(on_load, outputs=[whoami, tasks_tab, project_tab, train_tab, parent, reward, tasks_view.task, timer,
                                   label_view.task, *label_view.outputs], api_name="whoami")
        label_view.wire()
        tasks_view.wire(label_view.task)

        def show_stats(request: gr.Request) -> str:
            admin(request)
            return stats_markdown(store, project.config.name)

        def start_from_ui(stage, parent, reward, max_steps, lr, full, request: gr.Request):
            admin(request)
            return start_job(runner, stage, parent, reward, max_steps, lr, full)

        def cancel_from_ui(request: gr.Request) -> str:
            admin(request)
            return cancel_job(runner)

        def tick(request: gr.Request):
            admin(request)
            return job_view(runner)

        project_tab.select(show_stats, outputs=stats, api_name="stats")
        refresh.click(show_stats, outputs=stats, api_name=False)
        start.click(start_from_ui, inputs=[stage, parent, reward, max_steps, lr, full], outputs=job_status,
                    api_name="start_training")
        cancel.click(cancel_from_ui, outputs=job_status, api_name="cancel_training")
        timer.tick(tick, outputs=[job_status, plot], api_name=False)
    app.labeling, app.label_view = labeling, label_view  # for benchmarks that swap a handler
    return app


def authenticate(store: Store):
    """Gradio's sign-in check: the user's salted scrypt hash in the store."""
    from workbench.auth import check_password

    return lambda name, password: check_password(store, name, password) is not None


def _shortcuts() -> str:
    from annotation.views import SHORTCUTS_JS

    return SHORTCUTS_JS


class ServeError(Exception):
    """The server cannot start; the message says why and what to do."""


def serve(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Open the store (this process becomes its one writer) and start the server."""
    store = Store.open(project.store_path)
    app = build_app(project, store)
    try:
        if not store.users():
            raise ServeError("no users yet: add one with `workbench users add NAME --role admin` "
                             "(the app signs everyone in; it has no anonymous access)")
        app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True,
                   auth=authenticate(store), auth_message=f"alignment-workbench: {project.config.name}",
                   head=_shortcuts(), max_threads=64)
    except ServeError:
        store.close()
        raise
    except OSError as exc:
        store.close()
        if "port" in str(exc).lower():
            raise ServeError(f"port {port} on {host} is in use: stop what holds it, or pass --port N") from None
        raise ServeError(f"cannot start the server on {host}:{port}: {exc}") from None
    return app, store
