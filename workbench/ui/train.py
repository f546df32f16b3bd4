"""The Train tab: start a training or generation job with the settings a person picks, follow it (status,
loss plot), cancel it. Jobs run in their own processes (workbench.jobs); this tab only starts and reads them."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from workbench.jobs import JobRunner, RunError
from workbench.store import Store
from workbench.ui.access import Access
from workbench.ui.render import code, inline
from workbench.ui.stage_settings import StageSettings


def version_choices(store: Store, stage: str | None = None) -> list[str]:
    return [v["id"] for v in store.stats()["model_versions"] if stage is None or v["stage"] == stage]


def start_job(runner: JobRunner, stage: str, parent: str | None, reward_model: str | None, max_steps: float | None,
              learning_rate: float | None, full: bool, settings: dict | None = None) -> str:
    """Start a training job from the UI's settings (`settings`: the All settings fields by name, see
    workbench/ui/stage_settings.py); returns a line for the status box."""
    from workbench.runs import TRAINING, TrainRequest
    from workbench.store import ExportFilters
    from workbench.ui.stage_settings import describe, request_options

    try:
        options, filters = request_options(settings or {})
        if stage != "ppo":  # the PPO fields are shown for every stage; only `train ppo` takes them
            options.update(algorithm="ppo", min_reward_accuracy=None)
        request = TrainRequest.from_options(stage, parent=parent or None, reward_model=reward_model or None,
                                            max_steps=int(max_steps) if max_steps else None,
                                            lr=learning_rate or None, full=bool(full), isolated_checks=True,
                                            filters=ExportFilters(**filters), **options)
        job = runner.start(TRAINING, request)
    except (RunError, ValueError) as exc:
        return f"**Not started:** {inline(str(exc))}"
    changed = describe(options, filters)
    return (f"Started **{job.run_id}** {starts_from(stage, parent)}: logs and adapter in {code(job.run_dir)}"
            + (f"; settings {code(changed)}" if changed else ""))


def starts_from(stage: str, parent: str | None) -> str:
    """What a run trains on, said at its start and in its live view: a preference stage on the base model is
    legal but rarely meant, so it is said out loud rather than started silently."""
    if parent and parent != "base":
        return f"from {code(parent)}"
    if stage in ("dpo", "kto", "ppo"):
        return f"from the base model (no parent version chosen; {stage.upper()} usually starts from an SFT version)"
    return "from the base model"


# The figures a person follows a run by, in this order and under these names; the rest of what the trainer logs
# (total_flos, runtimes, samples per second) stays in metrics.jsonl.
FIGURES = {"loss": "loss", "train_loss": "mean loss", "eval_loss": "eval loss", "rewards/accuracies": "reward accuracy",
           "rewards/margins": "reward margin", "kl": "KL", "mean_token_accuracy": "token accuracy",
           "learning_rate": "learning rate", "grad_norm": "grad norm", "epoch": "epoch"}


def figures_line(last: dict) -> str:
    """The last logged step as a person reads it: "step 5 · loss 0.53 · learning rate 2e-05"."""
    parts = [f"step {int(last['step'])}"] if isinstance(last.get("step"), int | float) else []
    parts += [f"{name} {last[key]:.3g}" for key, name in FIGURES.items()
              if isinstance(last.get(key), int | float) and not isinstance(last.get(key), bool)]
    return " · ".join(parts)


def loss_svg(losses: list[tuple[float, float]], *, width: int = 560, height: int = 220) -> str:
    """The loss curve as inline SVG (our own numbers only): a dot per logged step, so a short run's few points
    show; whole-number steps on the x axis; room for the y labels."""
    if not losses:
        return ""
    left, right, top, bottom = 64, 16, 16, 36
    steps, values = [float(s) for s, _ in losses], [float(v) for _, v in losses]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.08
    y0, y1 = y0 - pad, y1 + pad
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda y: top + (y1 - y) / (y1 - y0) * (height - top - bottom)  # noqa: E731
    points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(steps, values, strict=True))
    dots = "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#f97316"/>'
                   for x, y in zip(steps, values, strict=True))
    first, last = int(round(min(steps))), int(round(max(steps)))
    ticks = sorted({first, last, *range(first, last + 1, max(1, (last - first) // 5 or 1))})
    xticks = "".join(f'<text x="{sx(t):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">{t}</text>'
                     for t in ticks if x0 <= t <= x1)
    yticks = "".join(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" font-size="11" text-anchor="end">{v:.3g}</text>'
                     for v in (y0 + pad, (y0 + y1) / 2, y1 - pad))
    return (f'<svg id="loss-svg" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="training loss by step">'
            f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>'
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>'
            f'<polyline points="{points}" fill="none" stroke="#f97316" stroke-width="2"/>{dots}{xticks}{yticks}'
            f'<text x="{(left + width - right) / 2}" y="{height - 4}" font-size="11" text-anchor="middle">step</text>'
            f'<text x="12" y="{(top + height - bottom) / 2}" font-size="11" text-anchor="middle" '
            f'transform="rotate(-90 12 {(top + height - bottom) / 2})">loss</text></svg>')


def job_view(runner: JobRunner) -> tuple[str, str]:
    """(status markdown, loss plot as SVG) for the live view."""
    status = runner.status()
    if status["state"] == "idle":
        return "No training job yet.", ""
    lines = [f"**{inline(status['run_id'])}** ({inline(status['stage'])}): {status['state']}"]
    if "parent" in status:  # a training run: what it trains on
        lines.append(f"Trains {starts_from(status['stage'], status['parent'])}.")
    if status.get("progress"):
        done, total = status["progress"].get("done", 0), status["progress"].get("total")
        lines.append(f"{done}/{total or '?'} replies" + (f"; {status['added']} new responses stored"
                                                          if status.get("added") is not None else ""))
    if status["last"]:
        lines.append(inline(figures_line(status["last"])))
    if status["state"] == "cancelled":
        resume = code(f"workbench train {status['stage']} -p PROJECT --resume {status['run_id']}")
        lines.append(f"Cancelled. {resume} continues it from its last checkpoint.")
    elif status["error"]:
        lines.append(f"Error: {inline(status['error'])}")
    lines += [f"Warning: {inline(w)}" for w in status["warnings"]]
    return "\n\n".join(lines), loss_svg(status["losses"])


def start_generation_job(runner: JobRunner, versions: list[str], tags: str, n: float | None,
                         temperature: float | None, max_new_tokens: float | None, limit: float | None,
                         sources: str = "", query: str = "", top_p: float | None = None,
                         seed: float | None = None) -> str:
    """Start a generation job from the UI's settings (the prompts' tags, source files and words, as
    `workbench generate --tag/--source/--query`); returns a line for the status box."""
    from workbench.generate import GENERATION, GenerateRequest, GenerationError

    whole = lambda x: int(x) if isinstance(x, float) and x.is_integer() else x  # noqa: E731 - 0 stays 0: refused, not dropped
    listed = lambda text: [t.strip() for t in (text or "").split(",") if t.strip()]  # noqa: E731
    sampling = {k: v for k, v in {"n": whole(n), "temperature": temperature, "max_new_tokens": whole(max_new_tokens),
                                  "top_p": top_p, "seed": whole(seed)}.items() if v is not None}
    request = GenerateRequest(versions=list(versions or []), tags=listed(tags), sources=listed(sources),
                              query=(query or "").strip() or None, limit=whole(limit), sampling=sampling)
    try:
        job = runner.start(GENERATION, request)
    except (RunError, GenerationError) as exc:
        return f"**Not started:** {inline(str(exc))}"
    return f"Started **{job.run_id}**: generating from {inline(', '.join(request.versions))}"


def cancel_job(runner: JobRunner) -> str:
    job = runner.cancel()
    return f"**{inline(job.run_id)}**: {job.state}" if job else "No job to cancel."


class TrainTab:
    """Layout first (inside the app's Blocks), then `wire` once every tab exists."""

    def __init__(self, runner: JobRunner, access: Access, timer: gr.Timer):
        """`timer`: the page's job timer, made outside every tab: Gradio mounts a tab when it is first opened, and
        a timer inside an unopened tab never ticks (the Tasks tab's job lines stood still until Train was opened)."""
        self.runner, self.access, self.timer = runner, access, timer
        with gr.Row():
            self.stage = gr.Dropdown(["sft", "reward", "dpo", "kto", "ppo"], value="sft", label="Stage",
                                     elem_id="stage")
            self.parent = gr.Dropdown([], label="Parent version", allow_custom_value=True, elem_id="parent")
            self.reward = gr.Dropdown([], label="Reward model (ppo)", allow_custom_value=True, elem_id="reward")
        with gr.Row():
            self.max_steps = gr.Number(value=50, label="Max steps", precision=0, elem_id="max-steps")
            self.lr = gr.Number(value=None, label="Learning rate (0: the stage default)", elem_id="lr")
            self.full = gr.Checkbox(label="Full fine-tuning (small models)", elem_id="full")
        self.settings = StageSettings()
        with gr.Row():
            self.start = gr.Button("Start", variant="primary", elem_id="start")
            self.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
        with gr.Accordion("Generate candidates (for ranking tasks or an A/B review)", open=False):
            with gr.Row():
                self.gen_versions = gr.Dropdown([], multiselect=True, allow_custom_value=True,
                                                label="Versions ('base': the base model)", elem_id="gen-versions")
                self.gen_tags = gr.Textbox(value="heldout", label="Prompts with tags (comma separated)",
                                           elem_id="gen-tags")
                self.gen_limit = gr.Number(value=None, precision=0, label="At most N prompts", elem_id="gen-limit")
            with gr.Row():
                self.gen_sources = gr.Textbox(label="Prompts from files matching (globs, comma separated)",
                                              elem_id="gen-sources")
                self.gen_query = gr.Textbox(label="Prompts containing", elem_id="gen-query")
            with gr.Row():
                self.gen_n = gr.Number(value=1, precision=0, label="Replies per prompt", elem_id="gen-n")
                self.gen_temperature = gr.Number(value=0.8, label="Temperature (0: greedy)", elem_id="gen-temperature")
                self.gen_tokens = gr.Number(value=128, precision=0, label="Max new tokens", elem_id="gen-tokens")
                self.gen_top_p = gr.Number(value=None, label="Top-p (default 0.95)", elem_id="gen-top-p")
                self.gen_seed = gr.Number(value=None, precision=0, label="Seed (default 0)", elem_id="gen-seed")
            self.gen_start = gr.Button("Generate", elem_id="gen-start")
        self.status = gr.Markdown(elem_id="job-status")
        self.plot = gr.Markdown(elem_id="loss-plot")  # our SVG (numbers only); gr.HTML would need 'unsafe-eval'

    def wire(self, *job_lines: tuple[gr.Markdown, Callable[[dict], str]]) -> None:
        """`job_lines`: other tabs' lines on a job of their own kind (the Tasks tab's scoring and judging), each a
        Markdown and what it shows of the runner's status; the same timer refreshes them."""
        runner, access = self.runner, self.access

        names = list(self.settings.fields)  # the All settings fields, in the order of their inputs

        def start_from_ui(request: gr.Request, stage, parent, reward, max_steps, lr, full, *values):
            """The request first: Gradio hands it in by position, and only before a `*values`. An API caller may
            leave the All settings fields out (the stage defaults)."""
            access.admin(request)
            return start_job(runner, stage, parent, reward, max_steps, lr, full, dict(zip(names, values, strict=False)))

        def generate_from_ui(request: gr.Request, versions, tags, limit, n, temperature, tokens, sources="",
                             query="", top_p=None, seed=None):
            access.admin(request)
            return start_generation_job(runner, versions, tags, n, temperature, tokens, limit, sources, query,
                                        top_p, seed)

        def cancel_from_ui(request: gr.Request) -> str:
            access.admin(request)
            return cancel_job(runner)

        def tick(request: gr.Request):
            """The live view, then the timer stops once no job runs (its last tick shows how the job ended): an
            admin's page does not poll the server while nothing happens."""
            access.admin(request)
            status = runner.status()
            return (*job_view(runner), *(show(status) for _, show in job_lines),
                    gr.Timer(active=status["state"] == "running"))

        started = self.start.click(start_from_ui, inputs=[self.stage, self.parent, self.reward, self.max_steps,
                                                          self.lr, self.full, *self.settings.components],
                                   outputs=self.status, api_name="start_training")
        follow(started, self.timer)
        self.cancel.click(cancel_from_ui, outputs=self.status, api_name="cancel_training")
        generating = self.gen_start.click(generate_from_ui, inputs=[self.gen_versions, self.gen_tags, self.gen_limit,
                                                                    self.gen_n, self.gen_temperature, self.gen_tokens,
                                                                    self.gen_sources, self.gen_query, self.gen_top_p,
                                                                    self.gen_seed],
                                          outputs=self.status, api_name="generate")
        follow(generating, self.timer)
        self.timer.tick(tick, outputs=[self.status, self.plot, *(line for line, _ in job_lines), self.timer],
                        api_name=False)


def follow(event, timer: gr.Timer) -> None:
    """After an event that may start a job (training, generation, scoring, judging), start the page's job
    timer; it stops itself when no job runs. Chained with `.then`, so the event's API outputs stay as they are."""
    event.then(lambda: gr.Timer(active=True), outputs=timer, api_name=False, show_progress="hidden")
