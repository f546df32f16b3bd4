"""Push a task to a running Argilla server, or pull a dataset from one, through Argilla's own SDK.

Both go through the folder layout of `workbench.argilla`, so a live exchange checks and stores exactly
what a file exchange does: push writes the task with `export_task` and hands the folder to the SDK's
`Dataset.from_disk`; pull writes the server's dataset to a folder (with each response's status and the
users' names, which Argilla's own `to_disk` leaves out) and imports it with `import_dataset`.

The SDK contacts the server as soon as a client is made, so nothing here runs without one configured.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workbench.argilla import USERS_FILE, ArgillaFormatError, ImportReport, export_task, import_dataset


class ArgillaServerError(ArgillaFormatError):
    """No server configured, or the server cannot be reached or refuses the request."""


@dataclass
class Server:
    api_url: str
    api_key: str

    @classmethod
    def configured(cls, api_url: str | None = None, api_key: str | None = None) -> Server:
        api_url = api_url or os.environ.get("ARGILLA_API_URL")
        api_key = api_key or os.environ.get("ARGILLA_API_KEY")
        if not api_url or not api_key:
            missing = " and ".join(n for n, v in (("ARGILLA_API_URL", api_url), ("ARGILLA_API_KEY", api_key)) if not v)
            raise ArgillaServerError(
                f"no Argilla server configured: set {missing} (or pass --api-url / --api-key). Without a server, "
                "exchange folders instead: `workbench argilla export TASK --out DIR` (load it with "
                "rg.Dataset.from_disk) and `workbench argilla import DIR` (a Dataset.to_disk folder)")
        return cls(api_url, api_key)

    def client(self):
        import argilla as rg

        try:
            return rg.Argilla(api_url=self.api_url, api_key=self.api_key, retries=1)
        except Exception as exc:  # the SDK raises httpx and its own errors alike
            raise ArgillaServerError(f"cannot reach the Argilla server at {self.api_url}: {exc}") from None


def push(store, server: Server, task: str, *, workspace: str | None = None, name: str | None = None,
         users_file: str | None = None) -> str:
    """Create the task as a dataset on the server (records, questions, the model's replies as suggestions,
    and the answers of annotators who have an Argilla user id)."""
    import argilla as rg

    client = server.client()
    with tempfile.TemporaryDirectory(prefix="workbench-argilla-") as tmp:
        folder = Path(tmp) / "dataset"
        report = export_task(store, task, folder, users_file=users_file, only_argilla_users=True)
        try:
            dataset = rg.Dataset.from_disk(str(folder), name=name or task, workspace=workspace, client=client)
        except Exception as exc:
            raise ArgillaServerError(f"the Argilla server at {server.api_url} refused the dataset: {exc}") from None
    return (f"pushed task {task!r} to {server.api_url} as dataset {dataset.name!r}: {report.records} records, "
            f"{report.responses} responses, {report.suggestions} suggestions")


def pull(store, server: Server, name: str, *, workspace: str | None = None, task: str | None = None,
         prompt_field: str | None = None, tags: list[str] | None = None) -> ImportReport:
    """Import a dataset from the server as a task; pulling again adds only what changed."""
    client = server.client()
    try:
        dataset = client.datasets(name=name, workspace=workspace)
    except Exception as exc:
        raise ArgillaServerError(f"cannot read dataset {name!r} from {server.api_url}: {exc}") from None
    if dataset is None:
        raise ArgillaServerError(f"no dataset {name!r} on {server.api_url}"
                                 + (f" in workspace {workspace!r}" if workspace else " in the default workspace"))
    with tempfile.TemporaryDirectory(prefix="workbench-argilla-") as tmp:
        folder = Path(tmp) / name
        (folder / ".argilla").mkdir(parents=True)
        dataset.settings.to_json(folder / ".argilla" / "settings.json")
        (folder / ".argilla" / "dataset.json").write_text(json.dumps({"name": name}), encoding="utf-8")
        records = []
        for record in dataset.records(with_responses=True, with_suggestions=True):
            row = record.to_dict()
            row["responses"] = {}
            for response in record.responses:  # to_dict drops the status; keep it
                status = getattr(response.status, "value", response.status)
                row["responses"].setdefault(response.question_name, []).append(
                    {"value": response.value, "user_id": str(response.user_id), "status": status})
            records.append(row)
        (folder / "records.json").write_text(json.dumps(records, default=str), encoding="utf-8")
        users = {str(u.id): u.username for u in client.users}
        (folder / USERS_FILE).write_text(json.dumps(users), encoding="utf-8")
        return import_dataset(store, folder, task=task or name, prompt_field=prompt_field, tags=tags)
