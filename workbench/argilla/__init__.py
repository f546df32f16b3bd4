"""Argilla (v2) interop: take a dataset labeled in Argilla as it is, and hand a task back to Argilla.

Teams that already label in Argilla should be able to switch or mix tools at no cost. An Argilla dataset
becomes one labeling task: each record is an item, its ranking (or text) question is the task's question,
and every response keeps its Argilla user as the annotator. Two layouts are read, both as Argilla's own SDK
(2.8) writes them (`argilla/datasets/_io/_disk.py`, `argilla/records/_io/_generic.py`):

    to_disk:  FOLDER/.argilla/settings.json, FOLDER/.argilla/dataset.json, FOLDER/records.json
              records.json = [{"id", "fields": {...}, "responses": {question: [{"value", "user_id"}]},
                               "suggestions": {question: {"value", "score", "agent"}}, "status", ...}]
    to_hub:   the same .argilla/ files beside the data (data/*.parquet, *.parquet or a datasets
              save_to_disk folder) in Argilla's flattened columns: `<field>`, `<question>.responses`,
              `<question>.responses.users`, `<question>.responses.status`, `<question>.suggestion`, ...

Argilla's to_disk drops each response's status (its `RecordResponses.to_dict` keeps value and user id
only), so a response without one counts as submitted and the report says how many that was; a status
that is there (hub layout, files this module writes, a live pull) is kept: drafts and discarded answers
are stored apart (label kind `held`), never trained on.

Export writes the to_disk layout with the same fields and questions, every standing answer as a response
(with its status), and the task's model reply as a suggestion, so `rg.Dataset.from_disk(path, client=...)`
loads it. Annotators who did not come from Argilla get a stable UUID, and `workbench_users.json` beside
the records maps it back to their name, so import -> export -> import gives the same labels.
"""

from workbench.argilla.dataset import USERS_FILE, ArgillaFormatError, read_dataset
from workbench.argilla.export import ExportReport, export_task
from workbench.argilla.to_task import ImportReport, import_dataset, plan, store_rows, to_task

__all__ = ["USERS_FILE", "ArgillaFormatError", "ExportReport", "ImportReport", "export_task", "import_dataset",
           "plan", "read_dataset", "store_rows", "to_task"]
