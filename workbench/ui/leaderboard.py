"""The Leaderboard tab: model versions ranked from the blind A/B votes of every review."""

from __future__ import annotations

import gradio as gr

from annotation.leaderboard import leaderboard
from annotation.reports import leaderboard_markdown, leaderboard_svg
from workbench.store import Store
from workbench.ui.access import Access


class LeaderboardTab:
    def __init__(self, store: Store, access: Access, tab: gr.Tab):
        self.store, self.access, self.tab = store, access, tab
        self.refresh = gr.Button("Refresh", elem_id="board-refresh")
        self.plot = gr.Markdown(elem_id="board-plot")  # the SVG is ours (names escaped); gr.HTML needs 'unsafe-eval'
        self.table = gr.Markdown(elem_id="board-table")

    def wire(self) -> None:
        def show(request: gr.Request):
            self.access.reviewer(request)
            board = leaderboard(self.store.review_votes(), rounds=500)
            return leaderboard_svg(board), leaderboard_markdown(board)

        self.tab.select(show, outputs=[self.plot, self.table], api_name="leaderboard")
        self.refresh.click(show, outputs=[self.plot, self.table], api_name=False)
