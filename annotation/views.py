"""The labeling views as Gradio components: the annotator's Label tab and the admin's Tasks tab. They only
lay out components and turn handler results into updates; what happens is in annotation.labeling, and every
event resolves the signed-in user from the request and lets the handler check the role."""

from __future__ import annotations

import html
from collections.abc import Callable

import gradio as gr

from annotation.active import STRATEGIES, ActiveError, needs_scores, prioritize
from annotation.labeling import FLAG_REASONS, KINDS, LETTERS, ItemView, Labeling, LabelingError, User, require
from annotation.reports import agreement_markdown, progress_markdown

UserOf = Callable[[gr.Request], User | None]
# An order that needs models runs as a scoring job on the server's job runner: the app hands the Tasks tab these
# two (task, by, models -> a status line; -> a status line), so nothing under annotation/ imports the runner.
StartScoring = Callable[[str, str, list[str]], str]
CancelScoring = Callable[[], str]

HELP = """**Keys** (outside a text box): `Enter` submit · `s` skip · `f` flag · `u` undo last · `p` edit last ·
`g` guidelines. Pairwise: `a` A better, `b` B better, `t` tie, `x` both bad. Ranking: press the letters best
first (`Backspace` takes the last back). Feedback: `y` thumbs up, `n` thumbs down. Ratings: `r`, then the response's letter, then 1-5 (e.g. `r b 4`).
In a text box: `Ctrl+Enter` submits, `Esc` leaves the box."""

# Keyboard shortcuts. Buttons and radios are clicked the way a mouse would, so Gradio sees ordinary events.
SHORTCUTS_JS = """
<script>
(() => {
  let ratingFor = null, ratingArmed = false;
  const el = (id) => document.getElementById(id);
  const shown = (id) => { const e = el(id); return !!(e && e.offsetParent !== null); };
  const click = (id) => { const b = el(id); if (b) b.click(); };
  const radio = (id, value) => {
    const input = document.querySelector(`#${id} input[type=radio][value="${value}"]`);
    if (input) input.click();
  };
  const setText = (id, fn) => {
    const box = document.querySelector(`#${id} textarea, #${id} input`);
    if (!box) return;
    box.value = fn(box.value);
    box.dispatchEvent(new Event('input', {bubbles: true}));
  };
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t && (t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && !['radio', 'checkbox'].includes(t.type)));
    if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); click('submit'); return; }
    if (typing) { if (e.key === 'Escape') t.blur(); return; }
    if (e.ctrlKey || e.metaKey || e.altKey || !shown('label-actions')) return;
    const key = e.key.toLowerCase();
    if (ratingArmed) {
      if (ratingFor === null && 'abcde'.includes(key)) { ratingFor = key.toUpperCase(); e.preventDefault(); return; }
      if (ratingFor !== null && '12345'.includes(key)) { radio(`rating-${ratingFor}`, key); }
      ratingArmed = false; ratingFor = null; e.preventDefault(); return;
    }
    const act = {enter: 'submit', s: 'skip', f: 'flag', u: 'undo', p: 'edit'}[key];
    if (act) { e.preventDefault(); click(act); return; }
    if (key === 'g') { e.preventDefault(); const h = document.querySelector('#guidelines-box button, #guidelines-box .label-wrap'); if (h) h.click(); return; }
    if (key === 'r' && shown('compare-group')) { ratingArmed = true; ratingFor = null; e.preventDefault(); return; }
    if (shown('choice')) {
      const pick = {a: 'A', b: 'B', t: 'tie', x: 'both bad'}[key];
      if (pick) { e.preventDefault(); radio('choice', pick); }
      return;
    }
    if (shown('thumb')) {
      const pick = {y: 'up', n: 'down', '+': 'up', '-': 'down'}[key];
      if (pick) { e.preventDefault(); radio('thumb', pick); }
      return;
    }
    if (shown('order')) {
      if ('abcde'.includes(key) && key.length === 1) { e.preventDefault(); setText('order', (v) => v + key.toUpperCase()); }
      else if (e.key === 'Backspace') { e.preventDefault(); setText('order', (v) => v.slice(0, -1)); }
    }
  });
})();
</script>
"""


def progress_html(view: ItemView) -> str:
    total = view.done + view.remaining
    return (f'<div id="progress-text">{view.done} done · {view.remaining} left</div>'
            f'<progress id="progress-bar" value="{view.done}" max="{max(total, 1)}" style="width:100%"></progress>')


def conversation(view: ItemView) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in view.messages if m["role"] in ("user", "assistant")]


class LabelView:
    """The Label tab. `outputs` is the order every item-changing event fills."""

    def __init__(self, labeling: Labeling, user_of: UserOf):
        self.labeling, self.user_of = labeling, user_of
        gr.Markdown(HELP, elem_id="label-help")
        with gr.Row():
            # custom values allowed: choices are filled per session on load, and the handlers check the task
            self.task = gr.Dropdown([], label="Task", elem_id="task", scale=3, allow_custom_value=True)
            self.progress = gr.HTML(elem_id="progress")
        with gr.Accordion("Guidelines (g)", open=False, elem_id="guidelines-box"):
            self.guidelines = gr.Markdown(elem_id="guidelines")
        self.system = gr.Markdown(elem_id="system")
        self.chat = gr.Chatbot(label="Conversation", elem_id="conversation", height=260)
        with gr.Group(visible=False, elem_id="demo-group") as self.demo_group:
            self.completion = gr.Textbox(lines=6, label="Your reply (Ctrl+Enter submits; saved as you type)",
                                         elem_id="completion")
        with gr.Group(visible=False, elem_id="compare-group") as self.compare_group:
            self.columns, self.replies, self.ratings = [], [], []
            with gr.Row():
                for letter in LETTERS:
                    with gr.Column(visible=False, min_width=200) as col:
                        self.columns.append(col)
                        self.replies.append(gr.Markdown(elem_id=f"response-{letter}"))
                        self.ratings.append(gr.Radio(["1", "2", "3", "4", "5"], label=f"Rating {letter} (optional)",
                                                     elem_id=f"rating-{letter}"))
            self.choice = gr.Radio(["A", "B", "tie", "both bad"], label="Which is better?", elem_id="choice",
                                   visible=False)
            self.order = gr.Textbox(label="Order, best first (press the letters)", elem_id="order", visible=False)
            self.thumb = gr.Radio([("Thumbs up (y)", "up"), ("Thumbs down (n)", "down")], label="Is this reply good?",
                                  elem_id="thumb", visible=False)
            self.rationale = gr.Textbox(label="Rationale (optional)", elem_id="rationale", lines=2)
        with gr.Row(elem_id="label-actions"):
            self.submit = gr.Button("Submit (Enter)", variant="primary", elem_id="submit")
            self.skip = gr.Button("Skip (s)", elem_id="skip")
            self.flag_reason = gr.Dropdown(list(FLAG_REASONS), value="unclear", label="Flag reason",
                                           elem_id="flag-reason")
            self.flag = gr.Button("Flag (f)", elem_id="flag")
            self.undo = gr.Button("Undo last (u)", elem_id="undo")
            self.edit = gr.Button("Edit last (p)", elem_id="edit")
        self.status = gr.Markdown(elem_id="label-status")
        self.why = gr.Markdown(elem_id="item-priority")  # admins: the reason an active order put this item here
        self.item_id = gr.Textbox(visible=False, elem_id="item-id")
        self.client_id = gr.Textbox(visible=False, elem_id="client-id")
        self.outputs = [self.progress, self.guidelines, self.system, self.chat, self.demo_group, self.completion,
                        self.compare_group, *self.columns, *self.replies, *self.ratings, self.choice, self.order,
                        self.thumb, self.rationale, self.why, self.status, self.item_id, self.client_id]

    def render(self, view: ItemView) -> list:
        has_item = view.item_id is not None
        demo = has_item and view.kind == "demonstration"
        compare = has_item and view.kind != "demonstration"
        n = len(view.responses)
        ratings = view.prefill.get("ratings", {})
        system = f"**System prompt:** {html.escape(view.system)}" if has_item and view.system else ""
        return [
            progress_html(view), view.guidelines or "_No guidelines for this task._", system,
            conversation(view) if has_item else [],
            gr.update(visible=demo), gr.update(value=view.draft if demo else "", visible=demo),
            gr.update(visible=compare),
            *[gr.update(visible=compare and i < n) for i in range(len(LETTERS))],
            *[f"**{LETTERS[i]}**\n\n{view.responses[i]}" if i < n else "" for i in range(len(LETTERS))],
            *[gr.update(value=str(ratings[LETTERS[i]]) if LETTERS[i] in ratings else None)
              for i in range(len(LETTERS))],
            gr.update(value=view.prefill.get("choice"), visible=compare and view.kind in ("pairwise", "review")),
            gr.update(value=view.prefill.get("order", ""), visible=compare and view.kind == "ranking"),
            gr.update(value=view.prefill.get("thumb"), visible=compare and view.kind == "feedback"),
            view.prefill.get("rationale", ""),
            f"_Why here:_ {html.escape(view.why)}" if view.why else "",
            view.message, view.item_id or "", view.client_id,
        ]

    def _run(self, request: gr.Request, fn: Callable[[User], ItemView]) -> list:
        try:
            return self.render(fn(self.user_of(request)))
        except LabelingError as exc:
            raise gr.Error(str(exc)) from None

    # ------------------------------------------------------------ events
    def wire(self) -> None:
        lab = self.labeling

        def open_task(task, request: gr.Request):
            return self._run(request, lambda u: lab.open_next(u, task))

        def submit(task, item_id, client_id, completion, choice, order, rationale, r1, r2, r3, r4, r5, thumb,
                   request: gr.Request):
            ratings = dict(zip(LETTERS, (int(r) if r else None for r in (r1, r2, r3, r4, r5)), strict=True))
            return self._run(request, lambda u: lab.submit(u, task, item_id, client_id, completion=completion or "",
                                                           choice=choice or "", order=order or "",
                                                           ratings=ratings, rationale=rationale or "",
                                                           thumb=thumb or ""))

        def skip(task, item_id, client_id, request: gr.Request):
            return self._run(request, lambda u: lab.skip(u, task, item_id, client_id))

        def flag(task, item_id, client_id, reason, request: gr.Request):
            return self._run(request, lambda u: lab.flag(u, task, item_id, client_id, reason))

        def undo(task, client_id, request: gr.Request):
            return self._run(request, lambda u: lab.undo(u, task, f"{client_id}-undo"))

        def edit_last(task, request: gr.Request):
            return self._run(request, lambda u: lab.edit_last(u, task))

        self.task.input(open_task, inputs=self.task, outputs=self.outputs, api_name="open_task")
        self.submit.click(submit, inputs=[self.task, self.item_id, self.client_id, self.completion, self.choice,
                                          self.order, self.rationale, *self.ratings, self.thumb],
                          outputs=self.outputs, api_name="submit", concurrency_limit=None)
        self.skip.click(skip, inputs=[self.task, self.item_id, self.client_id], outputs=self.outputs,
                        api_name="skip", concurrency_limit=None)
        self.flag.click(flag, inputs=[self.task, self.item_id, self.client_id, self.flag_reason],
                        outputs=self.outputs, api_name="flag", concurrency_limit=None)
        self.undo.click(undo, inputs=[self.task, self.client_id], outputs=self.outputs, api_name="undo")
        self.edit.click(edit_last, inputs=[self.task], outputs=self.outputs, api_name="edit_last")

        def save_draft(task, item_id, text, request: gr.Request) -> str:
            try:
                return lab.save_draft(self.user_of(request), task, item_id, text)
            except LabelingError as exc:
                raise gr.Error(str(exc)) from None

        self.completion.input(save_draft, inputs=[self.task, self.item_id, self.completion], outputs=self.status,
                              api_name="save_draft", trigger_mode="always_last", show_progress="hidden",
                              concurrency_limit=None)

    def on_load(self, user: User) -> list:
        """The task list and, when there is a task, its next item for this user."""
        choices = self.labeling.task_choices(user)
        task_id = self.labeling.leases.any_task(user.name) or (choices[0][1] if choices else None)
        if task_id is None:
            empty = ItemView(task_id="", task_name="", kind="", guidelines="",
                             message="No labeling tasks yet: an admin creates them in the Tasks tab or with "
                                     "`workbench tasks add`.")
            return [gr.update(choices=choices, value=None), *self.render(empty)]
        return [gr.update(choices=choices, value=task_id), *self.render(self.labeling.open_next(user, task_id))]


def order_markdown(done: dict) -> str:
    """What a queue order did (annotation.active.prioritize's summary), for the Tasks tab."""
    if done["by"] == "task-order":
        return f"**{done['task']}** is back in the order it was made with."
    lines = [f"**{done['task']}**: {done['prioritized']} of {done['open_items']} open items ordered by "
             f"{done['by']}. First in the queue:"]
    lines += [f"- `{h['item']}`: {html.escape(h['reason'])}" for h in done["head"]]
    return "\n".join(lines)


def scoring_markdown(status: dict) -> str:
    """The Tasks tab's line on the job runner's current job when it is a scoring job (else nothing): progress
    while it runs, the new order once it is stored."""
    if status.get("stage") != "score":
        return ""
    if status["state"] == "succeeded":
        return order_markdown(status["done"])
    line = f"**{status['run_id']}** (scoring): {status['state']}"
    if status["state"] == "running":
        progress = status.get("progress") or {}
        return line + f", {progress.get('done', 0)}/{progress.get('total') or '?'} responses scored"
    return line + f": {html.escape(status['error'] or '')}"


class TasksView:
    """The admin's Tasks tab: create tasks, follow progress and agreement, order the queue, adjudicate."""

    def __init__(self, labeling: Labeling, user_of: UserOf, start_scoring: StartScoring,
                 cancel_scoring: CancelScoring):
        self.labeling, self.user_of = labeling, user_of
        self.start_scoring, self.cancel_scoring = start_scoring, cancel_scoring
        with gr.Accordion("New task", open=True):
            with gr.Row():
                self.name = gr.Textbox(label="Name", elem_id="new-task-name")
                self.kind = gr.Radio(list(KINDS), value="pairwise", label="Kind", elem_id="new-task-kind")
                self.overlap = gr.Number(value=1, precision=0, label="Annotators per item", elem_id="new-task-overlap")
                self.max_responses = gr.Number(value=None, precision=0, label="Responses per prompt (2-5)",
                                               elem_id="new-task-max-responses")
            with gr.Row():
                self.sources = gr.Textbox(label="Sources (globs, comma separated)", elem_id="new-task-sources")
                self.tags = gr.Textbox(label="Tags (comma separated)", elem_id="new-task-tags")
                self.query = gr.Textbox(label="Text contains", elem_id="new-task-query")
                self.versions = gr.Textbox(label="Review: the two versions (A,B); default prompts: tag heldout",
                                           elem_id="new-task-versions")
            self.guidelines = gr.Textbox(label="Guidelines (Markdown)", lines=4, elem_id="new-task-guidelines")
            self.create = gr.Button("Create task", variant="primary", elem_id="create-task")
            self.created = gr.Markdown(elem_id="create-status")
        with gr.Row():
            self.task = gr.Dropdown([], label="Task", elem_id="admin-task", scale=3, allow_custom_value=True)
            self.refresh = gr.Button("Refresh", elem_id="admin-refresh")
        self.progress = gr.Markdown(elem_id="task-progress")
        self.agreement = gr.Markdown(elem_id="task-agreement")
        with gr.Accordion("Queue order: label first where it is worth most", open=False):
            with gr.Row():
                self.order_by = gr.Dropdown([(f"{k}: {v}", k) for k, v in STRATEGIES.items()], value="margin",
                                            label="Order open items by", elem_id="order-by", scale=2)
                self.order_models = gr.Textbox(label="Model version: reward model or policy (disagreement: A,B)",
                                               elem_id="order-models")
                self.reorder = gr.Button("Reorder queue", elem_id="reorder")
                self.cancel_order = gr.Button("Cancel scoring", variant="stop", elem_id="cancel-scoring")
            self.reordered = gr.Markdown(elem_id="reorder-status")
            self.scoring = gr.Markdown(elem_id="scoring-status")  # the scoring job's progress, filled by the app's timer
        with gr.Accordion("Adjudicate an item", open=False):
            with gr.Row():
                self.item = gr.Textbox(label="Item id", elem_id="adjudicate-item")
                self.show = gr.Button("Show", elem_id="adjudicate-show")
            self.review = gr.Markdown(elem_id="adjudicate-review")
            with gr.Row():
                self.final_choice = gr.Radio(["A", "B", "tie", "both bad"], label="Final (pairwise)",
                                             elem_id="adjudicate-choice")
                self.final_order = gr.Textbox(label="Final order (ranking), best first", elem_id="adjudicate-order")
                self.final_note = gr.Textbox(label="Rationale", elem_id="adjudicate-rationale")
            self.decide = gr.Button("Save final answer", variant="primary", elem_id="adjudicate-save")
            self.decided = gr.Markdown(elem_id="adjudicate-status")

    def _admin(self, request: gr.Request, fn):
        try:
            return fn(self.user_of(request))
        except (LabelingError, ActiveError) as exc:
            raise gr.Error(str(exc)) from None

    def overview(self, user: User, task_id: str) -> tuple[str, str]:
        if not task_id:
            return "_Choose a task._", ""
        progress = progress_markdown(self.labeling.progress(user, task_id))
        kind = self.labeling.store.task(task_id)["kind"]
        agreement = ("_Demonstrations are free text: no agreement figures._" if kind == "demonstration"
                     else agreement_markdown(self.labeling.agreement(user, task_id)))
        return progress, agreement

    def wire(self, label_task: gr.Dropdown) -> None:
        lab = self.labeling
        split = lambda text: [s.strip() for s in (text or "").split(",") if s.strip()]  # noqa: E731

        def create(name, kind, overlap, max_responses, sources, tags, query, guidelines, versions,
                   request: gr.Request):
            def go(user):
                task = lab.create_task(user, name=name, kind=kind, overlap=int(overlap or 1), guidelines=guidelines,
                                       sources=split(sources), tags=split(tags), query=query,
                                       max_responses=int(max_responses) if max_responses else None,
                                       versions=split(versions) if kind == "review" else None)
                choices = lab.task_choices(user)
                return (f"Created **{task['name']}**: {task['items']} items.", gr.update(choices=choices),
                        gr.update(choices=choices, value=task["id"]))
            return self._admin(request, go)

        self.create.click(create, inputs=[self.name, self.kind, self.overlap, self.max_responses, self.sources,
                                          self.tags, self.query, self.guidelines, self.versions],
                          outputs=[self.created, label_task, self.task], api_name="create_task")
        def overview(task, request: gr.Request):
            return self._admin(request, lambda u: self.overview(u, task))

        self.task.change(overview, inputs=self.task, outputs=[self.progress, self.agreement],
                         api_name="task_overview")
        self.refresh.click(overview, inputs=self.task, outputs=[self.progress, self.agreement], api_name=False)

        def reorder(task, by, models, request: gr.Request):
            def go(user):
                require(user, "admin")
                names = split(models)
                if needs_scores(by, names):  # models score in a job's process, never in the server's
                    return self.start_scoring(task or "", by, names)
                return order_markdown(prioritize(lab.store, task or "", by, names))
            return self._admin(request, go)

        self.reorder.click(reorder, inputs=[self.task, self.order_by, self.order_models], outputs=self.reordered,
                           api_name="reorder_queue")

        def cancel_order(request: gr.Request):
            def go(user):
                require(user, "admin")
                return self.cancel_scoring()
            return self._admin(request, go)

        self.cancel_order.click(cancel_order, outputs=self.scoring, api_name="cancel_scoring")

        def show(task, item_id, request: gr.Request):
            def go(user):
                item = lab.item_for_review(user, task, (item_id or "").strip())
                letter = {r["id"]: LETTERS[i] for i, r in enumerate(item["responses"])}
                lines = [f"**{LETTERS[i]}**: {html.escape(r['text'])}" for i, r in enumerate(item["responses"])]
                for a in item["answers"] + item["finals"]:
                    who = a["annotator"] + (" (final)" if a["final"] else "")
                    if a["kind"] == "ranking":
                        what = "".join(letter.get(r, "?") for r in a["ranking"])
                    else:
                        what = letter.get(a["chosen_id"], "?") if a["outcome"] == "chosen" else a["outcome"]
                    lines.append(f"- {who}: **{what}** {html.escape(a['payload'].get('rationale', ''))}")
                return "\n\n".join(lines)
            return self._admin(request, go)

        self.show.click(show, inputs=[self.task, self.item], outputs=self.review, api_name="review_item")

        def decide(task, item_id, choice, order, note, request: gr.Request):
            import uuid

            return self._admin(request, lambda u: "Final answer saved: " + lab.adjudicate(
                u, task, (item_id or "").strip(), uuid.uuid4().hex, choice=choice or "", order=order or "",
                rationale=note or ""))

        self.decide.click(decide, inputs=[self.task, self.item, self.final_choice, self.final_order, self.final_note],
                          outputs=self.decided, api_name="adjudicate")
