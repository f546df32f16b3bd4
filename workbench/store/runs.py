"""Training runs and the model versions they yield."""

from __future__ import annotations

import json

from workbench.store.core import StoreCore


class Runs(StoreCore):
    def next_run_id(self, stage: str) -> str:
        n = self.cursor().execute("SELECT count(*) FROM runs WHERE stage = ?", [stage]).fetchone()[0]
        return f"{stage}-{n + 1}"

    def create_run(self, *, run_id: str, stage: str, parent_version_id: str | None, config: dict,
                   dataset_hash: str, run_dir: str) -> None:
        self.cursor().execute(
            "INSERT INTO runs (id, stage, status, parent_version_id, config, dataset_hash, dir) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?)",
            [run_id, stage, parent_version_id, json.dumps(config), dataset_hash, run_dir])

    def finish_run(self, run_id: str, *, status: str, error: str | None = None,
                   version: dict | None = None) -> None:
        """Mark a run ended and, for a successful one, add its model version, in one transaction."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = current_localtimestamp() WHERE id = ?",
                        [status, error, run_id])
            if version is not None:
                con.execute(
                    "INSERT INTO model_versions (id, run_id, stage, base_model, parent_id, dataset_hash, path, "
                    "config, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [version["id"], run_id, version["stage"], version["base_model"], version.get("parent_id"),
                     version["dataset_hash"], version["path"], json.dumps(version["config"]),
                     json.dumps(version["metrics"])])

    def restart_run(self, run_id: str) -> None:
        self.cursor().execute("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = ?",
                              [run_id])

    def run(self, run_id: str) -> dict | None:
        row = self.cursor().execute(
            "SELECT id, stage, status, parent_version_id, config, dataset_hash, dir, error FROM runs WHERE id = ?",
            [run_id]).fetchone()
        if row is None:
            return None
        keys = ("id", "stage", "status", "parent_version_id", "config", "dataset_hash", "dir", "error")
        return dict(zip(keys, row, strict=True)) | {"config": json.loads(row[4] or "{}")}

    def model_version(self, version_id: str) -> dict | None:
        row = self.cursor().execute(
            "SELECT id, run_id, stage, base_model, parent_id, dataset_hash, path, config, metrics "
            "FROM model_versions WHERE id = ?", [version_id]).fetchone()
        if row is None:
            return None
        keys = ("id", "run_id", "stage", "base_model", "parent_id", "dataset_hash", "path", "config", "metrics")
        return dict(zip(keys, row, strict=True)) | {"config": json.loads(row[7] or "{}"),
                                                    "metrics": json.loads(row[8] or "{}")}
