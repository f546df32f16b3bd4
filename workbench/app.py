"""The Gradio app shell. The server process owns the project's store (one DuckDB writer per file); every
handler is a plain function of the store so tests call it without a browser."""

from __future__ import annotations

from workbench.config import Project
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


def build_app(project: Project, store: Store):
    import gradio as gr

    with gr.Blocks(title=f"alignment-workbench: {project.config.name}") as app:
        gr.Markdown("# alignment-workbench", elem_id="title")
        stats = gr.Markdown(elem_id="stats")
        refresh = gr.Button("Refresh", elem_id="refresh")

        def show_stats() -> str:
            return stats_markdown(store, project.config.name)

        app.load(show_stats, outputs=stats, api_name="stats")
        refresh.click(show_stats, outputs=stats, api_name=False)
    return app


class ServeError(Exception):
    """The server cannot start; the message says why and what to do."""


def serve(project: Project, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Open the store (this process becomes its one writer) and start the server."""
    store = Store.open(project.store_path)
    app = build_app(project, store)
    try:
        app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True)
    except OSError as exc:
        store.close()
        if "port" in str(exc).lower():
            raise ServeError(f"port {port} on {host} is in use: stop what holds it, or pass --port N") from None
        raise ServeError(f"cannot start the server on {host}:{port}: {exc}") from None
    return app, store
