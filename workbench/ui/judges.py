"""Model judges in the Tasks tab, for admins: run a judge over the task chosen above as a job (progress, cancel;
a cancelled or failed job stores nothing and the next one resumes), choose whether annotators see the verdicts,
order the queue by judge doubt, and accept sure verdicts in bulk. The same paths as `workbench judge` and
`workbench judges suggestions|prioritize|accept`; the judges' agreement with people is in the task's agreement
report above. Adding a judge (an endpoint, a reward model, a prompted version) stays `workbench judges add`:
it names an API key variable of the server's environment, which a page should not choose."""

from __future__ import annotations

import gradio as gr

from annotation.judge_agreement import accept_confident, order_by_judges
from annotation.judging import JudgeError
from annotation.suggestions import SHOWN
from workbench.jobs import JobRunner, RunError
from workbench.store import SUGGESTION_MODES, Store
from workbench.ui.access import Access
from workbench.ui.render import code, inline
from workbench.ui.train import follow


def judging_markdown(status: dict) -> str:
    """The section's line on the job runner's current job when it is a judging job (else nothing)."""
    if status.get("stage") != "judge":
        return ""
    line = f"**{inline(status['run_id'])}** (judging): {status['state']}"
    if status["state"] == "running":
        progress = status.get("progress") or {}
        return line + f", {progress.get('done', 0)}/{progress.get('total') or '?'} questions answered"
    if status["state"] == "succeeded" and status.get("done"):
        done = status["done"]
        kinds = ", ".join(f"{n} {inline(k)}" for k, n in sorted(done["by_kind"].items())) or "nothing left to judge"
        return line + f": judge {code(done['judge'])} stored {done['items']} items ({kinds})"
    if status["state"] == "cancelled":
        return line + ": nothing was stored; running it again resumes"
    return line + f": {inline(status['error'] or '')}; nothing was stored, and running it again resumes"


def start_judging(runner: JobRunner, task: str | None, judge: str | None, every: bool) -> str:
    from workbench.judging import JUDGING, JudgeRequest

    if not task or not judge:
        return "Choose a task above and a judge first."
    try:
        job = runner.start(JUDGING, JudgeRequest(task=task, judge=judge, every=bool(every)))
    except (RunError, JudgeError) as exc:
        return f"**Not started:** {inline(str(exc))}"
    return f"Started **{inline(job.run_id)}**: judge {code(judge)} on the {'items' if every else 'open items'}."


def cancel_judging(runner: JobRunner) -> str:
    from workbench.judging import JUDGING

    job = runner.cancel(JUDGING)
    if job is None or job.stage != "judge":
        return "No judging job to cancel."
    return judging_markdown(runner.status())


class JudgesSection:
    """Layout first (inside the Tasks tab, below the task chooser), then `wire(task, job_timer)` with that dropdown
    and the page's job timer (started after Run, train.py follow)."""

    def __init__(self, store: Store, runner: JobRunner, access: Access):
        self.store, self.runner, self.access = store, runner, access
        with gr.Accordion("Model judges: pre-label, show, order, accept", open=False, elem_id="judges-section"):
            with gr.Row():
                self.judge = gr.Dropdown([], label="Judge (add one with `workbench judges add`)",
                                         allow_custom_value=True, elem_id="judge-name", scale=2)  # checked by name
                self.every = gr.Checkbox(label="Finished items too (to measure agreement with people)",
                                         elem_id="judge-every")
                self.run = gr.Button("Judge the items", variant="primary", elem_id="judge-run")
                self.cancel = gr.Button("Cancel judging", variant="stop", elem_id="judge-cancel")
            self.status = gr.Markdown(elem_id="judge-status")  # the job's progress, filled by the app's timer
            with gr.Row():
                self.shown = gr.Radio([(v, k) for k, v in SHOWN.items()], label="Annotators see the verdicts",
                                      elem_id="judge-shown", scale=2)
                self.save_shown = gr.Button("Save", elem_id="judge-shown-save")
            with gr.Row():
                self.prioritize = gr.Button("Order the queue by judge doubt", elem_id="judge-prioritize")
                self.min_probability = gr.Number(value=0.9, minimum=0, maximum=1, label="Accept verdicts with "
                                                 "probability at least", elem_id="judge-min-probability")
                self.accept = gr.Button("Accept the judge's sure verdicts", elem_id="judge-accept")
            self.result = gr.Markdown(elem_id="judge-result")

    def wire(self, task: gr.Dropdown, job_timer: gr.Timer) -> None:
        store, runner, access = self.store, self.runner, self.access

        def chosen(task_id: str | None):
            found = store.task(task_id) if task_id else None
            if found is None:
                raise gr.Error("choose a task above first")
            return found

        def refresh(task_id, request: gr.Request):
            access.admin(request)
            found = store.task(task_id) if task_id else None
            judges = [j["name"] for j in store.judges()]
            return (gr.update(choices=judges, value=judges[0] if len(judges) == 1 else None),
                    gr.update(value=store.task_suggestions(found.id) if found else None))

        def run(task_id, judge, every, request: gr.Request):
            access.admin(request)
            return start_judging(runner, task_id, judge, every)

        def cancel(request: gr.Request):
            access.admin(request)
            return cancel_judging(runner)

        def save_shown(task_id, mode, request: gr.Request):
            access.admin(request)
            found = chosen(task_id)
            if mode not in SUGGESTION_MODES:
                return "Choose what annotators see first."
            store.set_task_suggestions(found.id, mode)
            return f"Task {code(found.name)}: judges' verdicts are {SHOWN[mode]}."

        def prioritize(task_id, request: gr.Request):
            access.admin(request)
            found = chosen(task_id)
            ordered, head = order_by_judges(store, found.id)
            lines = [f"Task {code(found.name)}: {ordered} open items ordered by judge doubt. First in the queue:"]
            return "\n".join(lines + [f"- {code(item)}: {inline(reason)}" for item, reason in head])

        def accept(task_id, judge, min_probability, request: gr.Request):
            user = access.admin(request)
            found = chosen(task_id)
            if not judge:
                return "Choose the judge whose verdicts to accept first."
            p = 0.9 if min_probability is None else float(min_probability)
            count, mine = accept_confident(store, found.id, judge, p, f"ui:{user.name}")
            return (f"Task {code(found.name)}: accepted {count} of {mine} verdicts of {code('judge:' + judge)} with "
                    f"probability at least {p:g}; an export takes them with judges {code('accepted')} "
                    "(never as a person's vote).")

        task.change(refresh, inputs=task, outputs=[self.judge, self.shown], api_name=False)
        follow(self.run.click(run, inputs=[task, self.judge, self.every], outputs=self.status, api_name="run_judge"),
               job_timer)
        self.cancel.click(cancel, outputs=self.status, api_name="cancel_judging")
        self.save_shown.click(save_shown, inputs=[task, self.shown], outputs=self.result, api_name="judge_suggestions")
        self.prioritize.click(prioritize, inputs=task, outputs=self.result, api_name="judge_prioritize")
        self.accept.click(accept, inputs=[task, self.judge, self.min_probability], outputs=self.result,
                          api_name="judge_accept")
