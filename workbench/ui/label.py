"""The Label tab: an annotator's next item, answered by mouse or keys. It only lays out components and turns
handler results into updates; what happens is in annotation.labeling, and every event resolves the signed-in
user from the request and lets the handler check the role."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from annotation.labeling import FLAG_REASONS, LETTERS, ItemView, Labeling, LabelingError, User
from annotation.review import revealed
from workbench.ui.render import html_text, inline, user_markdown
from workbench.ui.shortcuts import HELP

UserOf = Callable[[gr.Request], User | None]


def progress_html(view: ItemView) -> str:
    total = view.done + view.remaining
    return (f'<div id="progress-text">{view.done} done · {view.remaining} left</div>'
            f'<progress id="progress-bar" value="{view.done}" max="{max(total, 1)}" style="width:100%"></progress>')


ROLE_NAMES = {"user": "User", "assistant": "Assistant"}


def pane_version(view: ItemView, i: int) -> str:
    """After a review vote: the version behind reply i, beside its letter."""
    return f" · {html_text(view.versions[i])}" if i < len(view.versions) else ""


def conversation(view: ItemView) -> str:
    """The prompt's turns as HTML, each turn's text rendered by workbench/ui/render.py. A plain box, not a
    Chatbot: the Chatbot's toolbar has a trash icon that erases the prompt being judged, covers the first turn,
    and the box scrolls to the last turn; here every turn shows from the first, the box scrolls when long."""
    return "".join(f'<div class="turn turn-{m["role"]}"><p class="turn-role"><strong>{ROLE_NAMES[m["role"]]}'
                   f"</strong></p>{user_markdown(m['content'])}</div>"
                   for m in view.messages if m["role"] in ROLE_NAMES)


def user_text_box(**kwargs) -> gr.Markdown:
    """A Markdown component for HTML from workbench/ui/render.py: no LaTeX pass over user text."""
    return gr.Markdown(latex_delimiters=[], **kwargs)


def chat_box(**kwargs) -> gr.Chatbot:
    """A Chatbot whose messages are HTML from workbench/ui/render.py (Gradio sanitizes them once more)."""
    return gr.Chatbot(latex_delimiters=[], **kwargs)


# The page's layout rules (launch(css=...)): reply columns share the row equally whatever their text, and a long
# word or address wraps inside its pane instead of widening it. A refused event (gr.Error: a missing choice, a bad
# task name) says why in a toast; Gradio would also lay a red "Error" over each of its outputs, hiding the item
# and catching the mouse until a reload, so that overlay is not shown.
LABEL_CSS = """
.reply-column { flex: 1 1 0 !important; min-width: 0 !important; }
.reply-pane, #conversation { overflow-wrap: anywhere; }
.turn { margin-bottom: 0.5em; }
.wrap:has(> .error) { display: none !important; }
.reply-pane { position: relative; cursor: default; }
.reply-pane[data-rank]::before { content: "#" attr(data-rank); position: sticky; top: 0; float: right; z-index: 1;
  background: var(--color-accent); color: white; border-radius: 999px; padding: 0 0.6em; font-weight: 700; }
"""


class LabelView:
    """The Label tab. `outputs` is the order every item-changing event fills."""

    def __init__(self, labeling: Labeling, user_of: UserOf):
        self.labeling, self.user_of = labeling, user_of
        gr.Markdown(HELP, elem_id="label-help")
        with gr.Row():
            # custom values allowed: choices are filled per session on load, and the handlers check the task
            self.task = gr.Dropdown([], label="Task", elem_id="task", scale=3, allow_custom_value=True)
            self.progress = gr.Markdown(elem_id="progress")  # our HTML; gr.HTML would need 'unsafe-eval'
        with gr.Accordion("Guidelines (g)", open=False, elem_id="guidelines-box"):
            self.guidelines = user_text_box(elem_id="guidelines")
        self.system = user_text_box(elem_id="system")
        self.chat = user_text_box(label="Conversation", show_label=True, container=True, max_height=320,
                                  elem_id="conversation")
        with gr.Group(visible=False, elem_id="demo-group") as self.demo_group:
            self.completion = gr.Textbox(lines=6, label="Your reply (Ctrl+Enter submits; saved as you type)",
                                         elem_id="completion")
        with gr.Group(visible=False, elem_id="compare-group") as self.compare_group:
            self.columns, self.replies, self.ratings = [], [], []
            with gr.Row():
                for letter in LETTERS:
                    with gr.Column(visible=False, min_width=200, elem_classes=["reply-column"]) as col:
                        self.columns.append(col)
                        # equal panes that scroll: a long reply never widens its column or pushes Submit down
                        self.replies.append(user_text_box(elem_id=f"response-{letter}", height=320,
                                                          elem_classes=["reply-pane"]))
                        self.ratings.append(gr.Radio(["1", "2", "3", "4", "5"], label=f"Rating {letter} (optional)",
                                                     elem_id=f"rating-{letter}"))
            self.suggestion = gr.Markdown(elem_id="judge-suggestion")  # where the task shows judges' verdicts
            self.choice = gr.Radio(["A", "B", "tie", "both bad"], label="Which is better?", elem_id="choice",
                                   visible=False)
            self.order = gr.Textbox(label="Order, best first (press the letters)", elem_id="order", visible=False)
            self.thumb = gr.Radio([("Thumbs up (y)", "up"), ("Thumbs down (n)", "down")], label="Is this reply good?",
                                  elem_id="thumb", visible=False)
            self.rationale = gr.Textbox(label="Rationale (optional)", elem_id="rationale", lines=2)
        with gr.Row(elem_id="label-actions"):
            self.submit = gr.Button("Submit (Enter)", variant="primary", elem_id="submit")
            # a review after the vote: the versions are shown in the panes, then Next (as Chatbot Arena does)
            self.next = gr.Button("Next (Enter)", variant="primary", elem_id="next", visible=False)
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
                        self.thumb, self.rationale, self.submit, self.next, self.suggestion, self.why, self.status, self.item_id,
                        self.client_id]  # why, status, item id and client id last: API clients read them from the end

    def render(self, view: ItemView) -> list:
        has_item = view.item_id is not None
        demo = has_item and view.kind == "demonstration"
        compare = has_item and view.kind != "demonstration"
        n = len(view.responses)
        ratings = view.prefill.get("ratings", {})
        system = f"<p><strong>System prompt:</strong></p>{user_markdown(view.system)}" \
            if has_item and view.system else ""
        guidelines = user_markdown(view.guidelines) if view.guidelines else "<p><em>No guidelines for this task.</em></p>"
        return [
            progress_html(view), guidelines, system,
            conversation(view) if has_item else "",
            gr.update(visible=demo), gr.update(value=view.draft if demo else "", visible=demo),
            gr.update(visible=compare),
            *[gr.update(visible=compare and i < n) for i in range(len(LETTERS))],
            *[f"<p><strong>{LETTERS[i]}</strong>{pane_version(view, i)}</p>{user_markdown(view.responses[i])}"
              if i < n else "" for i in range(len(LETTERS))],
            *[gr.update(value=str(ratings[LETTERS[i]]) if LETTERS[i] in ratings else None)
              for i in range(len(LETTERS))],
            gr.update(value=view.prefill.get("choice"), visible=compare and view.kind in ("pairwise", "review")),
            gr.update(value=view.prefill.get("order", ""), visible=compare and view.kind == "ranking"),
            gr.update(value=view.prefill.get("thumb"), visible=compare and view.kind == "feedback"),
            view.prefill.get("rationale", ""),
            gr.update(visible=not view.versions), gr.update(visible=bool(view.versions)),
            f"_{inline(view.suggestion)}_" if view.suggestion else "",
            f"_Why here:_ {inline(view.why)}" if view.why else "",
            inline(view.message), view.item_id or "", view.client_id,
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

            def go(u):
                view = lab.submit(u, task, item_id, client_id, completion=completion or "", choice=choice or "",
                                  order=order or "", ratings=ratings, rationale=rationale or "", thumb=thumb or "")
                if view.kind == "review":  # the voted item stays, its versions named in the panes; Next moves on
                    return revealed(lab, u, task, item_id, message=view.message)
                return view
            return self._run(request, go)

        def next_item(task, request: gr.Request):
            return self._run(request, lambda u: lab.open_next(u, task))

        def skip(task, item_id, client_id, request: gr.Request):
            return self._run(request, lambda u: lab.skip(u, task, item_id, client_id))

        def flag(task, item_id, client_id, reason, request: gr.Request):
            return self._run(request, lambda u: lab.flag(u, task, item_id, client_id, reason))

        def undo(task, client_id, request: gr.Request):
            return self._run(request, lambda u: lab.undo(u, task, f"{client_id}-undo"))

        def edit_last(task, request: gr.Request):
            return self._run(request, lambda u: lab.edit_last(u, task))

        # show_progress hidden: no spinner over every output for an event that takes a quarter of a second, and
        # no announcement of Gradio's untranslated "common.complete" / "common.error" after each one.
        quiet = {"outputs": self.outputs, "show_progress": "hidden"}
        self.task.input(open_task, inputs=self.task, api_name="open_task", **quiet)
        self.submit.click(submit, inputs=[self.task, self.item_id, self.client_id, self.completion, self.choice,
                                          self.order, self.rationale, *self.ratings, self.thumb],
                          api_name="submit", concurrency_limit=None, **quiet)
        self.skip.click(skip, inputs=[self.task, self.item_id, self.client_id], api_name="skip",
                        concurrency_limit=None, **quiet)
        self.flag.click(flag, inputs=[self.task, self.item_id, self.client_id, self.flag_reason],
                        api_name="flag", concurrency_limit=None, **quiet)
        self.next.click(next_item, inputs=[self.task], api_name="next_item", **quiet)
        self.undo.click(undo, inputs=[self.task, self.client_id], api_name="undo", **quiet)
        self.edit.click(edit_last, inputs=[self.task], api_name="edit_last", **quiet)

        def save_draft(task, item_id, text, request: gr.Request):
            try:  # nothing kept (the text is what the item shows): the status line stays as it is
                said = lab.save_draft(self.user_of(request), task, item_id, text)
                return gr.skip() if said is None else said
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
