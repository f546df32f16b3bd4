"""Training runs and the model versions they yield, as typed records: they cross every layer (the CLI, the
UI, the job runner, exports), so their fields and how a version loads are written here once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from workbench.store.core import StoreCore


@dataclass(frozen=True)
class Run:
    """One job: a training run, a generation or a scoring job, with its config and its folder."""

    id: str
    stage: str
    status: str  # running | succeeded | failed | cancelled
    parent_version_id: str | None
    config: dict
    dataset_hash: str
    dir: str
    error: str | None = None
    created_at: str | None = None  # when it started (the store's local time)
    finished_at: str | None = None


@dataclass(frozen=True)
class ModelVersion:
    """A trained model version: what it is, where its files are, what it came from."""

    id: str
    run_id: str
    stage: str
    base_model: str  # what its adapter sits on: the project's base, or a --full parent's whole-model folder
    parent_id: str | None
    dataset_hash: str
    path: str  # its adapter folder; for a --full version, a whole model
    config: dict = field(default_factory=dict)  # the run's config as the stage read it
    metrics: dict = field(default_factory=dict)  # the run's summary
    created_at: str | None = None  # when it was stored, where the reader asked (model_versions())

    @property
    def full(self) -> bool:
        """Every weight trained: `path` is a whole model, not an adapter."""
        return bool(self.config.get("adapter", {}).get("full"))

    @property
    def stacked_on(self) -> list[str]:
        """Adapters merged into the base under this version's own (a PPO or RLOO version's SFT parent)."""
        return list(self.metrics.get("stacked_on", []))

    @property
    def project_base_model(self) -> str:
        """The project base model the version descends from (through any --full parent)."""
        return self.config.get("project_base_model", self.base_model)

    def load_spec(self) -> dict:
        """The one place that says how this version loads: `base_model`, its own `adapter` (None for a --full
        version, which is a whole model) and the adapters `stacked_on` (merged into the base first). A reward
        model's folder is read by trainers.models.load_reward_version, which tells a whole model from an adapter."""
        if self.stage == "reward":
            return {"base_model": self.base_model, "adapter": self.path, "stacked_on": []}
        if self.full:
            return {"base_model": self.path, "adapter": None, "stacked_on": self.stacked_on}
        return {"base_model": self.base_model, "adapter": self.path, "stacked_on": self.stacked_on}


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
                   version: ModelVersion | None = None) -> None:
        """Mark a run ended and, for a successful one, add its model version, in one transaction."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = current_localtimestamp() WHERE id = ?",
                        [status, error, run_id])
            if version is not None:
                con.execute(
                    "INSERT INTO model_versions (id, run_id, stage, base_model, parent_id, dataset_hash, path, "
                    "config, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [version.id, run_id, version.stage, version.base_model, version.parent_id,
                     version.dataset_hash, version.path, json.dumps(version.config), json.dumps(version.metrics)])

    def restart_run(self, run_id: str) -> None:
        self.cursor().execute("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = ?",
                              [run_id])

    def run(self, run_id: str) -> Run | None:
        row = self.cursor().execute(
            "SELECT id, stage, status, parent_version_id, config, dataset_hash, dir, error, created_at, finished_at "
            "FROM runs WHERE id = ?", [run_id]).fetchone()
        return None if row is None else _run(row)

    def model_version(self, version_id: str) -> ModelVersion | None:
        row = self.cursor().execute(
            "SELECT id, run_id, stage, base_model, parent_id, dataset_hash, path, config, metrics "
            "FROM model_versions WHERE id = ?", [version_id]).fetchone()
        if row is None:
            return None
        return ModelVersion(*row[:7], config=json.loads(row[7] or "{}"), metrics=json.loads(row[8] or "{}"))

    def runs(self) -> list[Run]:
        """Every job the project ran (training, generation, scoring, judging), newest first."""
        rows = self.cursor().execute(
            "SELECT id, stage, status, parent_version_id, config, dataset_hash, dir, error, created_at, finished_at "
            "FROM runs ORDER BY created_at DESC, id DESC").fetchall()
        return [_run(r) for r in rows]

    def model_versions(self) -> list[ModelVersion]:
        """Every model version with its lineage, config and metrics, oldest first (a parent before its children)."""
        rows = self.cursor().execute(
            "SELECT id, run_id, stage, base_model, parent_id, dataset_hash, path, config, metrics, created_at "
            "FROM model_versions ORDER BY created_at, id").fetchall()
        return [ModelVersion(*r[:7], config=json.loads(r[7] or "{}"), metrics=json.loads(r[8] or "{}"),
                             created_at=str(r[9])) for r in rows]


def _run(row: tuple) -> Run:
    return Run(*row[:4], json.loads(row[4] or "{}"), *row[5:8], created_at=str(row[8]) if row[8] else None,
               finished_at=str(row[9]) if row[9] else None)
