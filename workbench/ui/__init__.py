"""All Gradio code: the app (app.py) and a module per tab. Importing this package loads no Gradio; the
CLI imports `workbench.ui.app` only to serve."""
