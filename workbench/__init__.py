"""alignment-workbench: CLI, project config, the DuckDB store, import/export and the Gradio app shell."""

__version__ = "0.1.0"
