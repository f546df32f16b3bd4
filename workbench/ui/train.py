"""The Train tab: start a training or generation job with the settings a person picks, follow it (status,
loss plot), cancel it. Jobs run in their own processes (workbench.jobs); this tab only starts and reads them."""

from __future__ import annotations

import gradio as gr

from workbench.jobs import JobRunner, RunError
from workbench.store import Store
from workbench.ui.access import Access
from workbench.ui.render import code, inline


def version_choices(store: Store, stage: str | None = None) -> list[str]:
    return [v["id"] for v in store.stats()["model_versions"] if stage is None or v["stage"] == stage]


def start_job(runner: JobRunner, stage: str, parent: str | None, reward_model: str | None, max_steps: float | None,
              learning_rate: float | None, full: bool) -> str:
    """Start a training job from the UI's settings; returns a line for the status box."""
    from workbench.runs import TRAINING, TrainRequest

    try:
        request = TrainRequest.from_options(stage, parent=parent or None, reward_model=reward_model or None,
                                            max_steps=int(max_steps) if max_steps else None,
                                            lr=learning_rate or None, full=bool(full), isolated_checks=True)
        job = runner.start(TRAINING, request)
    except RunError as exc:
        return f"**Not started:** {inline(str(exc))}"
    return f"Started **{job.run_id}**: logs and adapter in {code(job.run_dir)}"


def job_view(runner: JobRunner):
    """(status markdown, loss table) for the live view."""
    import pandas as pd

    status = runner.status()
    if status["state"] == "idle":
        return "No training job yet.", pd.DataFrame({"step": [], "loss": []})
    lines = [f"**{inline(status['run_id'])}** ({inline(status['stage'])}): {status['state']}"]
    if status.get("progress"):
        done, total = status["progress"].get("done", 0), status["progress"].get("total")
        lines.append(f"{done}/{total or '?'} replies" + (f"; {status['added']} new responses stored"
                                                          if status.get("added") is not None else ""))
    if status["last"]:
        figures = {k: v for k, v in status["last"].items() if isinstance(v, int | float)}
        lines.append(", ".join(f"{k} {v:.4g}" for k, v in list(figures.items())[:8]))
    if status["error"]:
        lines.append(f"Error: {inline(status['error'])}")
    lines += [f"Warning: {inline(w)}" for w in status["warnings"]]
    steps, losses = zip(*status["losses"], strict=True) if status["losses"] else ((), ())
    return "\n\n".join(lines), pd.DataFrame({"step": list(steps), "loss": list(losses)})


def start_generation_job(runner: JobRunner, versions: list[str], tags: str, n: float | None,
                         temperature: float | None, max_new_tokens: float | None, limit: float | None) -> str:
    """Start a generation job from the UI's settings; returns a line for the status box."""
    from workbench.generate import GENERATION, GenerateRequest, GenerationError

    whole = lambda x: int(x) if isinstance(x, float) and x.is_integer() else x  # noqa: E731 - 0 stays 0: refused, not dropped
    sampling = {k: v for k, v in {"n": whole(n), "temperature": temperature,
                                  "max_new_tokens": whole(max_new_tokens)}.items() if v is not None}
    request = GenerateRequest(versions=list(versions or []), tags=[t.strip() for t in (tags or "").split(",")
                                                                     if t.strip()],
                              limit=whole(limit), sampling=sampling)
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

    def __init__(self, runner: JobRunner, access: Access):
        self.runner, self.access = runner, access
        with gr.Row():
            self.stage = gr.Dropdown(["sft", "reward", "dpo", "kto", "ppo"], value="sft", label="Stage",
                                     elem_id="stage")
            self.parent = gr.Dropdown([], label="Parent version", allow_custom_value=True, elem_id="parent")
            self.reward = gr.Dropdown([], label="Reward model (ppo)", allow_custom_value=True, elem_id="reward")
        with gr.Row():
            self.max_steps = gr.Number(value=50, label="Max steps", precision=0, elem_id="max-steps")
            self.lr = gr.Number(value=None, label="Learning rate (0: the stage default)", elem_id="lr")
            self.full = gr.Checkbox(label="Full fine-tuning (small models)", elem_id="full")
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
                self.gen_n = gr.Number(value=1, precision=0, label="Replies per prompt", elem_id="gen-n")
                self.gen_temperature = gr.Number(value=0.8, label="Temperature (0: greedy)", elem_id="gen-temperature")
                self.gen_tokens = gr.Number(value=128, precision=0, label="Max new tokens", elem_id="gen-tokens")
            self.gen_start = gr.Button("Generate", elem_id="gen-start")
        self.status = gr.Markdown(elem_id="job-status")
        self.plot = gr.LinePlot(x="step", y="loss", title="Training loss", elem_id="loss-plot")
        self.timer = gr.Timer(1.0, active=False)

    def wire(self, scoring_line: gr.Markdown) -> None:
        """`scoring_line`: the Tasks tab's line on a scoring job, which the same timer refreshes."""
        from workbench.ui.tasks import scoring_markdown

        runner, access = self.runner, self.access

        def start_from_ui(stage, parent, reward, max_steps, lr, full, request: gr.Request):
            access.admin(request)
            return start_job(runner, stage, parent, reward, max_steps, lr, full)

        def generate_from_ui(versions, tags, limit, n, temperature, tokens, request: gr.Request):
            access.admin(request)
            return start_generation_job(runner, versions, tags, n, temperature, tokens, limit)

        def cancel_from_ui(request: gr.Request) -> str:
            access.admin(request)
            return cancel_job(runner)

        def tick(request: gr.Request):
            access.admin(request)
            return (*job_view(runner), scoring_markdown(runner.status()))

        self.start.click(start_from_ui, inputs=[self.stage, self.parent, self.reward, self.max_steps, self.lr,
                                                self.full], outputs=self.status, api_name="start_training")
        self.cancel.click(cancel_from_ui, outputs=self.status, api_name="cancel_training")
        self.gen_start.click(generate_from_ui, inputs=[self.gen_versions, self.gen_tags, self.gen_limit, self.gen_n,
                                                       self.gen_temperature, self.gen_tokens],
                             outputs=self.status, api_name="generate")
        self.timer.tick(tick, outputs=[self.status, self.plot, scoring_line], api_name=False)
