"""The Project tab: what the project holds, for admins."""

from __future__ import annotations

import gradio as gr

from workbench.store import Store
from workbench.ui.access import Access
from workbench.ui.render import code, inline


def stats_markdown(store: Store, project_name: str) -> str:
    s = store.stats()
    lines = [f"## {inline(project_name)}", "", "| what | count |", "|---|---|", f"| prompts | {s['prompts']} |"]
    lines += [f"| prompts tagged {code(t)} | {n} |" for t, n in s["prompts_by_tag"].items()]
    lines += [f"| responses ({inline(origin)}) | {n} |" for origin, n in s["responses_by_origin"].items()]
    lines += [f"| labels: {inline(kind)} | {n} |" for kind, n in s["labels_by_kind"].items()]
    lines += [f"| labels by annotator {code(who)} | {n} |" for who, n in s["labels_by_annotator"].items()]
    lines += [f"| imports | {s['imports']} |", f"| model versions | {len(s['model_versions'])} |"]
    return "\n".join(lines)


class ProjectTab:
    def __init__(self, store: Store, project_name: str, access: Access, tab: gr.Tab):
        self.store, self.project_name, self.access, self.tab = store, project_name, access, tab
        self.stats = gr.Markdown(elem_id="stats")
        self.refresh = gr.Button("Refresh", elem_id="refresh")

    def wire(self) -> None:
        def show(request: gr.Request) -> str:
            self.access.admin(request)
            return stats_markdown(self.store, self.project_name)

        self.tab.select(show, outputs=self.stats, api_name="stats")
        self.refresh.click(show, outputs=self.stats, api_name=False)
