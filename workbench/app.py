"""The Gradio app shell. The server process owns the project's store (one DuckDB writer per file); every
handler is a plain function of the store so tests call it without a browser.

The server process never imports torch or transformers: training, generation and the scoring behind active
selection run as jobs in their own processes (workbench/jobs.py), and the Playground talks to a model worker
process (workbench/playground.py). tests/test_app.py checks the server's imports."""

# No `from __future__ import annotations` here: Gradio injects `gr.Request` by reading annotations at run
# time, and `gr` is imported inside build_app (importing gradio costs seconds; the CLI imports this module).
from workbench.config import Project
from workbench.errors import WorkbenchError
from workbench.jobs import JobRunner, RunError
from workbench.store import Store


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
    from workbench.runs import TRAINING, TrainRequest

    trl = {k: v for k, v in {"max_steps": int(max_steps) if max_steps else None,
                             "learning_rate": learning_rate or None}.items() if v is not None}
    request = TrainRequest(stage=stage, parent=parent or None, reward_model=reward_model or None,
                           adapter={"full": True} if full else {}, trl=trl)
    try:
        job = runner.start(TRAINING, request)
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
    if status.get("progress"):
        done, total = status["progress"].get("done", 0), status["progress"].get("total")
        lines.append(f"{done}/{total or '?'} replies" + (f"; {status['added']} new responses stored"
                                                          if status.get("added") is not None else ""))
    if status["last"]:
        figures = {k: v for k, v in status["last"].items() if isinstance(v, int | float)}
        lines.append(", ".join(f"{k} {v:.4g}" for k, v in list(figures.items())[:8]))
    if status["error"]:
        lines.append(f"Error: {status['error']}")
    lines += [f"Warning: {w}" for w in status["warnings"]]
    steps, losses = zip(*status["losses"], strict=True) if status["losses"] else ((), ())
    return "\n\n".join(lines), pd.DataFrame({"step": list(steps), "loss": list(losses)})


def start_generation_job(runner: JobRunner, versions: list[str], tags: str, n: float | None,
                         temperature: float | None, max_new_tokens: float | None, limit: float | None) -> str:
    """Start a generation job from the UI's settings; returns a line for the status box."""
    from workbench.generate import GENERATION, GenerateRequest, GenerationError

    sampling = {k: v for k, v in {"n": int(n) if n else None, "temperature": temperature,
                                  "max_new_tokens": int(max_new_tokens) if max_new_tokens else None}.items()
                if v is not None}
    request = GenerateRequest(versions=list(versions or []), tags=[t.strip() for t in (tags or "").split(",")
                                                                     if t.strip()],
                              limit=int(limit) if limit else None, sampling=sampling)
    try:
        job = runner.start(GENERATION, request)
    except (RunError, GenerationError) as exc:
        return f"**Not started:** {exc}"
    return f"Started **{job.run_id}**: generating from {', '.join(request.versions)}"


def cancel_job(runner: JobRunner) -> str:
    job = runner.cancel()
    return f"**{job.run_id}**: {job.state}" if job else "No job to cancel."


def start_scoring_job(runner: JobRunner, task: str, by: str, models: list[str]) -> str:
    """Start the scoring job behind a queue order that needs models (the Tasks tab's Reorder); a bad request
    raises annotation.active.ActiveError, as an order worked out at once does."""
    from workbench.scoring import SCORING, ScoreRequest

    try:
        job = runner.start(SCORING, ScoreRequest(task=task, by=by, models=models))
    except RunError as exc:
        return f"**Not started:** {exc}"
    return f"Started **{job.run_id}**: {', '.join(models)} score{'s' if len(models) == 1 else ''} the open items; " \
           f"the new order follows below when it is done."


def cancel_scoring_job(runner: JobRunner) -> str:
    from workbench.scoring import SCORING

    job = runner.cancel(SCORING)
    if job is None or job.stage != "score":
        return "No scoring job to cancel."
    return f"**{job.run_id}**: {job.state}" + (": the queue order is as it was" if job.state == "cancelled" else "")


def build_app(project: Project, store: Store):
    """The whole app. Sign-in is Gradio's own (every page, API route and queue call needs the session
    cookie); what a signed-in user may do is checked in each handler from their role in the store."""
    import gradio as gr

    from annotation.labeling import REVIEWERS, AccessDenied, Labeling, User, require
    from annotation.leaderboard import leaderboard
    from annotation.reports import leaderboard_markdown, leaderboard_svg
    from annotation.views import LabelView, TasksView, scoring_markdown
    from workbench.playground import Playground, PlaygroundError

    runner = JobRunner(project, store)
    labeling = Labeling(store, max_field_bytes=project.config.max_field_bytes)
    playground = Playground(project, store)

    def user_of(request: gr.Request) -> User | None:
        record = store.user(request.username) if request is not None and request.username else None
        return User(record["name"], record["role"]) if record else None

    def admin(request: gr.Request) -> User:
        try:
            return require(user_of(request), "admin")
        except AccessDenied as exc:
            raise gr.Error(str(exc)) from None

    def reviewer(request: gr.Request) -> User:
        try:
            return require(user_of(request), *REVIEWERS)
        except AccessDenied as exc:
            raise gr.Error(str(exc)) from None

    with gr.Blocks(title=f"alignment-workbench: {project.config.name}") as app:
        with gr.Row():
            gr.Markdown("# alignment-workbench", elem_id="title")
            whoami = gr.Markdown(elem_id="whoami")
        with gr.Tab("Label", id="label-tab"):
            label_view = LabelView(labeling, user_of)
        with gr.Tab("Tasks", id="tasks-tab", visible=False) as tasks_tab:
            tasks_view = TasksView(labeling, user_of, lambda task, by, models: start_scoring_job(runner, task, by, models),
                                   lambda: cancel_scoring_job(runner))
        with gr.Tab("Project", id="project-tab", visible=False) as project_tab:
            stats = gr.Markdown(elem_id="stats")
            refresh = gr.Button("Refresh", elem_id="refresh")
        with gr.Tab("Train", id="train-tab", visible=False) as train_tab:
            with gr.Row():
                stage = gr.Dropdown(["sft", "reward", "dpo", "kto", "ppo"], value="sft", label="Stage", elem_id="stage")
                parent = gr.Dropdown([], label="Parent version", allow_custom_value=True, elem_id="parent")
                reward = gr.Dropdown([], label="Reward model (ppo)", allow_custom_value=True, elem_id="reward")
            with gr.Row():
                max_steps = gr.Number(value=50, label="Max steps", precision=0, elem_id="max-steps")
                lr = gr.Number(value=None, label="Learning rate (0: the stage default)", elem_id="lr")
                full = gr.Checkbox(label="Full fine-tuning (small models)", elem_id="full")
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="start")
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Accordion("Generate candidates (for ranking tasks or an A/B review)", open=False):
                with gr.Row():
                    gen_versions = gr.Dropdown([], multiselect=True, allow_custom_value=True,
                                               label="Versions ('base': the base model)",
                                               elem_id="gen-versions")
                    gen_tags = gr.Textbox(value="heldout", label="Prompts with tags (comma separated)",
                                          elem_id="gen-tags")
                    gen_limit = gr.Number(value=None, precision=0, label="At most N prompts", elem_id="gen-limit")
                with gr.Row():
                    gen_n = gr.Number(value=1, precision=0, label="Replies per prompt", elem_id="gen-n")
                    gen_temperature = gr.Number(value=0.8, label="Temperature (0: greedy)", elem_id="gen-temperature")
                    gen_tokens = gr.Number(value=128, precision=0, label="Max new tokens", elem_id="gen-tokens")
                gen_start = gr.Button("Generate", elem_id="gen-start")
            job_status = gr.Markdown(elem_id="job-status")
            plot = gr.LinePlot(x="step", y="loss", title="Training loss", elem_id="loss-plot")
            timer = gr.Timer(1.0, active=False)
        with gr.Tab("Leaderboard", id="leaderboard-tab", visible=False) as board_tab:
            board_refresh = gr.Button("Refresh", elem_id="board-refresh")
            board_plot = gr.HTML(elem_id="board-plot")
            board_table = gr.Markdown(elem_id="board-table")
        with gr.Tab("Playground", id="playground-tab", visible=False) as play_tab:
            with gr.Row():
                play_a = gr.Dropdown([], value="base", label="Version", allow_custom_value=True, elem_id="play-a")
                play_b = gr.Dropdown([], value=None, label="Side by side with (optional)", allow_custom_value=True,
                                     elem_id="play-b")
                play_temperature = gr.Number(value=0.7, label="Temperature", elem_id="play-temperature")
            play_system = gr.Textbox(label="System prompt (optional)", elem_id="play-system")
            with gr.Row():
                chat_a = gr.Chatbot(label="Version", elem_id="chat-a", height=320)
                chat_b = gr.Chatbot(label="Side by side", elem_id="chat-b", height=320)
            play_message = gr.Textbox(label="Message (Enter sends)", elem_id="play-message")
            with gr.Row():
                play_send = gr.Button("Send", variant="primary", elem_id="play-send")
                play_clear = gr.Button("Clear", elem_id="play-clear")

        def on_load(request: gr.Request):
            user = user_of(request)
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

        app.load(on_load, outputs=[whoami, tasks_tab, project_tab, train_tab, board_tab, play_tab, parent, reward,
                                   tasks_view.task, gen_versions, play_a, play_b, timer,
                                   label_view.task, *label_view.outputs], api_name="whoami")
        label_view.wire()
        tasks_view.wire(label_view.task)

        def show_stats(request: gr.Request) -> str:
            admin(request)
            return stats_markdown(store, project.config.name)

        def start_from_ui(stage, parent, reward, max_steps, lr, full, request: gr.Request):
            admin(request)
            return start_job(runner, stage, parent, reward, max_steps, lr, full)

        def generate_from_ui(versions, tags, limit, n, temperature, tokens, request: gr.Request):
            admin(request)
            return start_generation_job(runner, versions, tags, n, temperature, tokens, limit)

        def show_board(request: gr.Request):
            reviewer(request)
            board = leaderboard(store.review_votes(), rounds=500)
            return leaderboard_svg(board), leaderboard_markdown(board)

        def play(version_a, version_b, temperature, system, message, history_a, history_b, request: gr.Request):
            reviewer(request)
            message = (message or "").strip()
            if not message:
                raise gr.Error("write a message first")
            out = []
            for version, history in ((version_a or "base", history_a), (version_b, history_b)):
                if not version:
                    out.append(history or [])
                    continue
                turns = [{"role": m["role"], "content": _text_of(m["content"])} for m in history or []]
                turns.append({"role": "user", "content": message})
                prompt = ([{"role": "system", "content": system}] if system else []) + turns
                try:
                    reply = playground.reply(version, prompt, temperature=float(temperature or 0.0))
                except PlaygroundError as exc:
                    raise gr.Error(str(exc)) from None
                out.append(turns + [{"role": "assistant", "content": reply}])
            return out[0], out[1], ""

        def cancel_from_ui(request: gr.Request) -> str:
            admin(request)
            return cancel_job(runner)

        def tick(request: gr.Request):
            admin(request)
            return (*job_view(runner), scoring_markdown(runner.status()))

        project_tab.select(show_stats, outputs=stats, api_name="stats")
        refresh.click(show_stats, outputs=stats, api_name=False)
        start.click(start_from_ui, inputs=[stage, parent, reward, max_steps, lr, full], outputs=job_status,
                    api_name="start_training")
        cancel.click(cancel_from_ui, outputs=job_status, api_name="cancel_training")
        gen_start.click(generate_from_ui, inputs=[gen_versions, gen_tags, gen_limit, gen_n, gen_temperature, gen_tokens],
                        outputs=job_status, api_name="generate")
        board_tab.select(show_board, outputs=[board_plot, board_table], api_name="leaderboard")
        board_refresh.click(show_board, outputs=[board_plot, board_table], api_name=False)
        play_inputs = [play_a, play_b, play_temperature, play_system, play_message, chat_a, chat_b]
        play_send.click(play, inputs=play_inputs, outputs=[chat_a, chat_b, play_message], api_name="playground")
        play_message.submit(play, inputs=play_inputs, outputs=[chat_a, chat_b, play_message], api_name=False)
        play_clear.click(lambda: ([], [], ""), outputs=[chat_a, chat_b, play_message], api_name=False)
        timer.tick(tick, outputs=[job_status, plot, tasks_view.scoring], api_name=False)
    app.labeling, app.label_view = labeling, label_view  # for benchmarks that swap a handler
    return app


def _text_of(content) -> str:
    """A Chatbot message's text (Gradio may hand back a list of parts)."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return content if isinstance(content, str) else str(content)


def authenticate(store: Store):
    """Gradio's sign-in check: the user's salted scrypt hash in the store."""
    from workbench.auth import check_password

    return lambda name, password: check_password(store, name, password) is not None


def _shortcuts() -> str:
    from annotation.views import SHORTCUTS_JS

    return SHORTCUTS_JS


class ServeError(WorkbenchError):
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
