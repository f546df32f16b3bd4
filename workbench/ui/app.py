"""The Gradio app: one Blocks page with a module per tab (label, tasks, project, train, leaderboard,
playground), signed in with Gradio's own auth. The server process owns the project's store (one DuckDB
writer per file); every handler is a plain function of the store so tests call it without a browser.

The server process never imports torch or transformers: training, generation and the scoring behind active
selection run as jobs in their own processes (workbench/jobs.py), and the Playground talks to a model worker
process (workbench/playground.py). tests/test_app.py checks the server's imports."""

# No `from __future__ import annotations` here: Gradio injects `gr.Request` by reading annotations at run
# time, and `gr` is imported inside build_app (importing gradio costs seconds; the CLI imports this module).
import logging
import signal
import sys
import threading

from workbench.config import DEFAULT_MAX_UPLOAD_BYTES, Project
from workbench.errors import WorkbenchError
from workbench.store import Store

log = logging.getLogger("workbench.server")


def build_app(project: Project, store: Store):
    """The whole app. Sign-in is Gradio's own (every page, API route and queue call needs the session
    cookie); what a signed-in user may do is checked in each handler from their role in the store."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    from annotation.labeling import REVIEWERS, Labeling
    from workbench.jobs import JobRunner
    from workbench.playground import Playground
    from workbench.ui.access import Access
    from workbench.ui.argilla import ArgillaSection
    from workbench.ui.data import DataSection
    from workbench.ui.downloads import Downloads
    from workbench.ui.history import HistoryView
    from workbench.ui.jobs import JobsTab
    from workbench.ui.judges import JudgesSection, judging_markdown
    from workbench.ui.label import LabelView
    from workbench.ui.leaderboard import LeaderboardTab
    from workbench.ui.playground import PlaygroundTab
    from workbench.ui.project import ProjectTab
    from workbench.ui.render import inline
    from workbench.ui.tasks import (
        TasksView,
        admin_task_choices,
        cancel_scoring_job,
        scoring_markdown,
        start_scoring_job,
    )
    from workbench.ui.train import TrainTab, version_choices
    from workbench.ui.users import UsersTab

    runner = JobRunner(project, store)
    labeling = Labeling(store, max_field_bytes=project.config.max_field_bytes)
    access = Access(store)
    downloads = Downloads.create(get_upload_folder())  # the only files the guard serves (admins' downloads)

    with gr.Blocks(title=f"alignment-workbench: {project.config.name}") as app:
        with gr.Row():
            gr.Markdown("# alignment-workbench", elem_id="title")
            whoami = gr.Markdown(elem_id="whoami")
            # a button in this tab: a Markdown link opens /logout in a new tab and leaves this one signed in
            gr.Button("Sign out", link="/logout", link_target="_self", size="sm", scale=0, elem_id="sign-out")
        job_timer = gr.Timer(1.0, active=False)  # admins: the job lines of the Train and Tasks tabs (train.py)
        with gr.Tab("Label", id="label-tab"):
            label_view = LabelView(labeling, access.user_of)
            history_view = HistoryView(access.user_of)
        with gr.Tab("Tasks", id="tasks-tab", visible=False) as tasks_tab:
            tasks_view = TasksView(labeling, access.user_of,
                                   lambda task, by, models: start_scoring_job(runner, task, by, models),
                                   lambda: cancel_scoring_job(runner))
            judges_view = JudgesSection(store, runner, access)
        with gr.Tab("Project", id="project-tab", visible=False) as project_tab:
            project_view = ProjectTab(store, project.config.name, access, project_tab)
            data_view = DataSection(project, store, access, project_tab, downloads)
            argilla_view = ArgillaSection(project, store, access, project_tab, downloads)
        with gr.Tab("Train", id="train-tab", visible=False) as train_tab:
            train_view = TrainTab(runner, access, job_timer)
        with gr.Tab("Leaderboard", id="leaderboard-tab", visible=False) as board_tab:
            board_view = LeaderboardTab(store, access, board_tab)
        with gr.Tab("Playground", id="playground-tab", visible=False) as play_tab:
            play_view = PlaygroundTab(Playground(project, store), access)
        with gr.Tab("Users", id="users-tab", visible=False) as users_tab:
            users_view = UsersTab(store, access, users_tab)
        with gr.Tab("Versions and jobs", id="jobs-tab", visible=False) as jobs_tab:
            jobs_view = JobsTab(store, access, jobs_tab)

        def on_load(request: gr.Request):
            user = access.user_of(request)
            if user is None:  # signed in, then removed from the store
                raise gr.Error("your account no longer exists: ask an admin")
            is_admin, reviews = user.role == "admin", user.role in REVIEWERS
            choices = [""] + version_choices(store) if is_admin else []
            rewards = [""] + version_choices(store, "reward") if is_admin else []
            admin_tasks = admin_task_choices(store) if is_admin else []
            writers = ["base"] + [v for v in version_choices(store) if v not in version_choices(store, "reward")] \
                if reviews else []
            return [f"Signed in as **{inline(user.name)}** ({user.role})",
                    gr.update(visible=is_admin), gr.update(visible=is_admin), gr.update(visible=is_admin),
                    gr.update(visible=reviews), gr.update(visible=reviews),
                    gr.update(choices=choices), gr.update(choices=rewards), gr.update(choices=admin_tasks),
                    gr.update(choices=writers if is_admin else []), gr.update(choices=writers),
                    gr.update(choices=[""] + writers),
                    gr.Timer(active=is_admin and runner.status()["state"] == "running"),  # train.py: follow
                    *label_view.on_load(user)]

        app.load(on_load, outputs=[whoami, tasks_tab, project_tab, train_tab, board_tab, play_tab, train_view.parent,
                                   train_view.reward, tasks_view.task, train_view.gen_versions, play_view.version_a,
                                   play_view.version_b, train_view.timer, label_view.task, *label_view.outputs],
                 api_name="whoami")

        def admin_tabs(request: gr.Request):  # the admins' people, versions and jobs (workbench/ui/users.py, jobs.py)
            user = access.user_of(request)
            return [gr.update(visible=user is not None and user.role == "admin")] * 2

        app.load(admin_tabs, outputs=[users_tab, jobs_tab], api_name=False)
        label_view.wire()
        history_view.wire(label_view, store)
        tasks_view.wire(label_view.task, job_timer)
        project_view.wire()
        data_view.wire()
        argilla_view.wire()
        train_view.wire((tasks_view.scoring, scoring_markdown), (judges_view.status, judging_markdown))
        judges_view.wire(tasks_view.task, job_timer)
        board_view.wire()
        play_view.wire()
        users_view.wire()
        jobs_view.wire()
    app.labeling, app.label_view = labeling, label_view  # for benchmarks that swap a handler
    app.downloads = downloads  # launch() hands its folder to the guard
    return app


def authenticate(store: Store, signin=None):
    """Gradio's sign-in check: the user's salted scrypt hash in the store, checked by workbench.auth.SignIn
    (throttled per account and address, hashed in a worker thread). A coroutine, so Gradio awaits it rather
    than running the hash on its event loop; the client's address comes from the guard in front of Gradio."""
    from fastapi import HTTPException

    from workbench.auth import SignIn, SignInThrottled
    from workbench.ui.guard import client_address

    signin = signin or SignIn(store)

    async def check(name: str, password: str) -> bool:
        try:
            return await signin.check(name, password, client_address.get() or "unknown") is not None
        except SignInThrottled as exc:
            raise HTTPException(429, detail=str(exc), headers={"Retry-After": str(exc.retry_after)}) from None

    return check


def short_errors(app) -> None:
    """Every handler's unexpected error reaches the user as one short line with a reference; the traceback
    goes to the server's log under that reference. Errors meant for the user (gr.Error) pass unchanged."""
    import functools
    import secrets

    import gradio as gr

    def wrap(fn):
        @functools.wraps(fn)  # keeps the signature, so Gradio still hands gr.Request to the handler
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception:
                ref = secrets.token_hex(4)
                log.exception("handler %s failed (ref %s)", getattr(fn, "__name__", "?"), ref)
                raise gr.Error(f"Something went wrong on the server (ref {ref}). The detail is in the server's "
                               f"log.", print_exception=False) from None
        return handler

    for block_fn in app.fns.values():
        if block_fn.fn is not None and not getattr(block_fn.fn, "__wrapped__", None):
            block_fn.fn = wrap(block_fn.fn)


class ServeError(WorkbenchError):
    """The server cannot start; the message says why and what to do."""


def launch(app, store: Store, *, title: str, host: str, port: int, block: bool, hosts: frozenset[str],
           signin=None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES):
    """Start Gradio behind the guard (workbench/ui/guard.py) with the settings a shared server needs;
    `max_upload_bytes`: the most an admin may upload at once (workbench.toml's max_upload_bytes)."""
    from gradio.routes import App, ORJSONResponse

    from workbench.auth import Sessions
    from workbench.ui.guard import Guard, script_hash
    from workbench.ui.label import LABEL_CSS
    from workbench.ui.render import html_text
    from workbench.ui.shortcuts import SHORTCUTS_JS

    class GuardedApp(App):
        """Gradio's own FastAPI app with the guard outside everything else (its CORS and compression
        included); handed to launch() as gr.Server does."""

        def build_middleware_stack(self):
            return Guard(super().build_middleware_stack(), hosts=hosts, role_of=self.role_of,
                         script_hashes=(script_hash(SHORTCUTS_JS),), downloads=app.downloads.root,
                         max_upload_bytes=max_upload_bytes)

        @property
        def tokens(self):
            return self._sessions

        @tokens.setter
        def tokens(self, value: dict) -> None:  # Gradio sets {} at start: sessions that end with their user
            self._sessions = Sessions(store, value)

        def role_of(self, scope) -> str | None:
            from starlette.requests import HTTPConnection

            cookies = HTTPConnection(scope).cookies
            token = cookies.get(f"access-token-{self.cookie_id}") or cookies.get(
                f"access-token-unsecure-{self.cookie_id}")
            name = self.tokens.get(token) if token else None
            user = store.user(name) if name else None
            return user["role"] if user and not user["deactivated_at"] else None

    import gradio as gr

    short_errors(app)
    # openapi_url=None: FastAPI's own schema of Gradio's routes is nobody's business.
    server = GuardedApp(default_response_class=ORJSONResponse, openapi_url=None)
    app.launch(_app=server, server_name=host, server_port=port, prevent_thread_lock=not block,
               auth=authenticate(store, signin), auth_message=f"alignment-workbench: {html_text(title)}",
               head=SHORTCUTS_JS, css=LABEL_CSS, max_threads=64,
               # Gradio announces each finished event to screen readers as "common.complete", a key its English
               # dictionary lacks, so the key itself was read out (and shown to anyone copying the page's text)
               i18n=gr.I18n(en={"common.complete": "Done"}),
               show_error=False,  # an unexpected error's text stays in the log (short_errors)
               footer_links=["settings"],  # no "Use via API" page: admins script it with gradio_client
               run_history=False,  # would keep every submit's inputs in the browser's storage
               max_file_size=max_upload_bytes,  # per file; the guard also caps a whole upload (admins only)
               ssr_mode=False,  # SSR puts a Node proxy in front of Python, and of the guard
               mcp_server=False, enable_monitoring=False)


def serve(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
          allowed_hosts: list[str] | tuple[str, ...] = ()):
    """Open the store (this process becomes its one writer) and start the server. It answers to the names in
    `allowed_hosts`, the loopback names and the bind address."""
    from workbench.ui import guard

    # the server's log (stderr): sign-ins, refused requests, handler errors with their references
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own startup probes
    store = Store.open(project.store_path)
    if block and threading.current_thread() is threading.main_thread():
        # `kill` (SIGTERM) ends the server as Ctrl-C does: through exit, so the store is checkpointed and closed
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = build_app(project, store)
    try:
        if not store.users():
            raise ServeError("no users yet: add one with `workbench users add NAME --role admin` "
                             "(the app signs everyone in; it has no anonymous access)")
        launch(app, store, title=project.config.name, host=host, port=port, block=block,
               hosts=guard.allowed_hosts(host, allowed_hosts), max_upload_bytes=project.config.max_upload_bytes)
    except ServeError:
        store.close()
        raise
    except OSError as exc:
        store.close()
        if "port" in str(exc).lower():
            raise ServeError(f"port {port} on {host} is in use: stop what holds it, or pass --port N") from None
        raise ServeError(f"cannot start the server on {host}:{port}: {exc}") from None
    return app, store
