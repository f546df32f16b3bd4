"""The Gradio app: one Blocks page with a module per tab (label, tasks, project, train, leaderboard,
playground), signed in with Gradio's own auth. The server process owns the project's store (one DuckDB
writer per file); every handler is a plain function of the store so tests call it without a browser.

The server process never imports torch or transformers: training, generation and the scoring behind active
selection run as jobs in their own processes (workbench/jobs.py), and the Playground talks to a model worker
process (workbench/playground.py). tests/test_app.py checks the server's imports."""

# No `from __future__ import annotations` here: Gradio injects `gr.Request` by reading annotations at run
# time, and `gr` is imported inside build_app (importing gradio costs seconds; the CLI imports this module).
from workbench.config import Project
from workbench.errors import WorkbenchError
from workbench.store import Store


def build_app(project: Project, store: Store):
    """The whole app. Sign-in is Gradio's own (every page, API route and queue call needs the session
    cookie); what a signed-in user may do is checked in each handler from their role in the store."""
    import gradio as gr

    from annotation.labeling import REVIEWERS, Labeling
    from workbench.jobs import JobRunner
    from workbench.playground import Playground
    from workbench.ui.access import Access
    from workbench.ui.label import LabelView
    from workbench.ui.leaderboard import LeaderboardTab
    from workbench.ui.playground import PlaygroundTab
    from workbench.ui.project import ProjectTab
    from workbench.ui.tasks import TasksView, cancel_scoring_job, start_scoring_job
    from workbench.ui.train import TrainTab, version_choices

    runner = JobRunner(project, store)
    labeling = Labeling(store, max_field_bytes=project.config.max_field_bytes)
    access = Access(store)

    with gr.Blocks(title=f"alignment-workbench: {project.config.name}") as app:
        with gr.Row():
            gr.Markdown("# alignment-workbench", elem_id="title")
            whoami = gr.Markdown(elem_id="whoami")
        with gr.Tab("Label", id="label-tab"):
            label_view = LabelView(labeling, access.user_of)
        with gr.Tab("Tasks", id="tasks-tab", visible=False) as tasks_tab:
            tasks_view = TasksView(labeling, access.user_of,
                                   lambda task, by, models: start_scoring_job(runner, task, by, models),
                                   lambda: cancel_scoring_job(runner))
        with gr.Tab("Project", id="project-tab", visible=False) as project_tab:
            project_view = ProjectTab(store, project.config.name, access, project_tab)
        with gr.Tab("Train", id="train-tab", visible=False) as train_tab:
            train_view = TrainTab(runner, access)
        with gr.Tab("Leaderboard", id="leaderboard-tab", visible=False) as board_tab:
            board_view = LeaderboardTab(store, access, board_tab)
        with gr.Tab("Playground", id="playground-tab", visible=False) as play_tab:
            play_view = PlaygroundTab(Playground(project, store), access)

        def on_load(request: gr.Request):
            user = access.user_of(request)
            if user is None:  # signed in, then removed from the store
                raise gr.Error("your account no longer exists: ask an admin")
            is_admin, reviews = user.role == "admin", user.role in REVIEWERS
            choices = [""] + version_choices(store) if is_admin else []
            rewards = [""] + version_choices(store, "reward") if is_admin else []
            admin_tasks = labeling.task_choices(user) if is_admin else []
            writers = ["base"] + [v for v in version_choices(store) if v not in version_choices(store, "reward")] \
                if reviews else []
            return [f"Signed in as **{user.name}** ({user.role}) · [sign out](/logout)",
                    gr.update(visible=is_admin), gr.update(visible=is_admin), gr.update(visible=is_admin),
                    gr.update(visible=reviews), gr.update(visible=reviews),
                    gr.update(choices=choices), gr.update(choices=rewards), gr.update(choices=admin_tasks),
                    gr.update(choices=writers if is_admin else []), gr.update(choices=writers),
                    gr.update(choices=[""] + writers), gr.Timer(active=is_admin), *label_view.on_load(user)]

        app.load(on_load, outputs=[whoami, tasks_tab, project_tab, train_tab, board_tab, play_tab, train_view.parent,
                                   train_view.reward, tasks_view.task, train_view.gen_versions, play_view.version_a,
                                   play_view.version_b, train_view.timer, label_view.task, *label_view.outputs],
                 api_name="whoami")
        label_view.wire()
        tasks_view.wire(label_view.task)
        project_view.wire()
        train_view.wire(tasks_view.scoring)
        board_view.wire()
        play_view.wire()
    app.labeling, app.label_view = labeling, label_view  # for benchmarks that swap a handler
    return app


def authenticate(store: Store):
    """Gradio's sign-in check: the user's salted scrypt hash in the store."""
    from workbench.auth import check_password

    return lambda name, password: check_password(store, name, password) is not None


class ServeError(WorkbenchError):
    """The server cannot start; the message says why and what to do."""


def serve(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Open the store (this process becomes its one writer) and start the server."""
    from workbench.ui.shortcuts import SHORTCUTS_JS

    store = Store.open(project.store_path)
    app = build_app(project, store)
    try:
        if not store.users():
            raise ServeError("no users yet: add one with `workbench users add NAME --role admin` "
                             "(the app signs everyone in; it has no anonymous access)")
        app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True,
                   auth=authenticate(store), auth_message=f"alignment-workbench: {project.config.name}",
                   head=SHORTCUTS_JS, max_threads=64)
    except ServeError:
        store.close()
        raise
    except OSError as exc:
        store.close()
        if "port" in str(exc).lower():
            raise ServeError(f"port {port} on {host} is in use: stop what holds it, or pass --port N") from None
        raise ServeError(f"cannot start the server on {host}:{port}: {exc}") from None
    return app, store
