"""The Leaderboard tab: model versions ranked from the blind A/B votes of every review, or of the reviews
chosen (as `workbench leaderboard --review NAME`): two reviews run weeks apart, on other prompts, are two
different questions."""

from __future__ import annotations

import gradio as gr

from annotation.leaderboard import leaderboard
from annotation.reports import leaderboard_markdown, leaderboard_svg
from workbench.store import Store
from workbench.ui.access import Access


class LeaderboardTab:
    def __init__(self, store: Store, access: Access, tab: gr.Tab):
        self.store, self.access, self.tab = store, access, tab
        with gr.Row():
            # custom values allowed: the choices are filled when the tab opens; the store is asked by id
            self.reviews = gr.Dropdown([], multiselect=True, allow_custom_value=True, elem_id="board-reviews",
                                       label="Reviews (none chosen: every review)", scale=3)
            self.refresh = gr.Button("Refresh", elem_id="board-refresh", scale=0)
        self.plot = gr.Markdown(elem_id="board-plot")  # the SVG is ours (names escaped); gr.HTML needs 'unsafe-eval'
        self.table = gr.Markdown(elem_id="board-table")

    def wire(self) -> None:
        def choices() -> list[tuple[str, str]]:
            return [(t.name, t.id) for t in self.store.tasks() if t.kind == "review"]

        def show(reviews, request: gr.Request):
            self.access.reviewer(request)
            known = {task_id for _, task_id in choices()}
            unknown = [r for r in reviews or [] if r not in known]
            if unknown:
                raise gr.Error(f"no review {unknown[0]!r}: choose one from the list")
            board = leaderboard(self.store.review_votes(list(reviews) or None), rounds=500)
            return leaderboard_svg(board), leaderboard_markdown(board)

        def opened(reviews, request: gr.Request):
            return (*show(reviews, request), gr.update(choices=choices()))

        self.tab.select(opened, inputs=[self.reviews], outputs=[self.plot, self.table, self.reviews],
                        api_name=False)
        self.refresh.click(show, inputs=[self.reviews], outputs=[self.plot, self.table], api_name="leaderboard")
        self.reviews.input(show, inputs=[self.reviews], outputs=[self.plot, self.table], api_name=False)
