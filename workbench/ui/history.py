"""The Label tab's "My work": a person's own history across tasks (submitted, edited, skipped, flagged, drafts),
searchable, and any answered item opened again to edit. What it lists comes from annotation/history.py; every
event resolves the signed-in user from the request, so nobody lists or edits another person's work."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from annotation.history import my_work, prompt_excerpt
from annotation.labeling import LabelingError, User
from workbench.store import HISTORY_STATES
from workbench.ui.render import inline

UserOf = Callable[[gr.Request], User | None]
SHOWN = 200  # rows listed at once; the search narrows the rest


def history_markdown(rows: list[dict]) -> str:
    if not rows:
        return "_Nothing here yet: what you submit, skip, flag or start writing shows up here._"
    lines = ["| when | task | state | prompt | your reply |", "|---|---|---|---|---|"]
    for r in rows:
        state = r["state"] + (f" ({r['reason']})" if r["reason"] else "")
        reply = " ".join((r["reply"] or "").split())
        lines.append(f"| {inline(r['at'][:16])} | {inline(r['task'])} | {inline(state)} | {inline(prompt_excerpt(r))}"
                     f" | {inline(reply[:60] + ('…' if len(reply) > 60 else ''))} |")
    more = f"\n\n_The newest {SHOWN} are listed: search to find older ones._" if len(rows) >= SHOWN else ""
    return "\n".join(lines) + more


def edit_choices(rows: list[dict]) -> list[tuple[str, str]]:
    """The answered items, for the Edit list: label 'when · task · prompt', value 'task id|item id'."""
    return [(f"{r['at'][:16]} · {r['task']} · {prompt_excerpt(r, 60)}", f"{r['task_id']}|{r['item_id']}")
            for r in rows if r["state"] in ("submitted", "edited")]


class HistoryView:
    """Laid out inside the Label tab (under the item); `wire` needs the LabelView to fill on Edit."""

    def __init__(self, user_of: UserOf):
        self.user_of = user_of
        with gr.Accordion("My work: what you submitted, skipped, flagged or drafted", open=False,
                          elem_id="my-work") as self.box:
            with gr.Row():
                self.search = gr.Textbox(label="Search (prompt, your reply, flag reason)", elem_id="history-search",
                                         scale=3)
                self.state = gr.Dropdown(["", *HISTORY_STATES], value="", label="State", elem_id="history-state")
                self.show = gr.Button("Show", elem_id="history-show", scale=0)
            self.table = gr.Markdown(elem_id="history-table")
            with gr.Row():
                self.pick = gr.Dropdown([], label="Edit an answer", elem_id="history-pick", scale=3)
                self.edit = gr.Button("Edit this answer", elem_id="history-edit", scale=0)

    def wire(self, label_view, store) -> None:
        def show(search, state, request: gr.Request):
            user = self.user_of(request)
            if user is None:
                raise gr.Error("sign in first")
            try:
                rows = my_work(store, user.name, search=search, state=state or None, limit=SHOWN)
            except ValueError as exc:
                raise gr.Error(str(exc)) from None
            return history_markdown(rows), gr.update(choices=edit_choices(rows), value=None)

        def edit(picked, request: gr.Request):
            task_id, _, item_id = (picked or "").partition("|")
            if not item_id:
                raise gr.Error("choose an answer to edit from the list")
            try:
                view = label_view.labeling.edit_answer(self.user_of(request), task_id, item_id)
            except LabelingError as exc:
                raise gr.Error(str(exc)) from None
            return [gr.update(value=task_id), *label_view.render(view)]

        for event in (self.show.click, self.search.submit, self.box.expand):
            event(show, inputs=[self.search, self.state], outputs=[self.table, self.pick], api_name=False,
                  show_progress="hidden")
        self.edit.click(edit, inputs=[self.pick], outputs=[label_view.task, *label_view.outputs],
                        api_name="edit_answer", show_progress="hidden")
