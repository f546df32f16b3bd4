"""A run's settings as one typed record: the workbench writes it to the run folder's run.json, every stage
reads it back. Checked on both sides, so a wrong field fails when the run is prepared (or, for a folder
edited by hand, when the stage starts, with the field named) instead of as a KeyError mid-training.

This module imports nothing heavy: the workbench's server process builds a RunConfig without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from trainers.models import Adapter

STAGES = ("sft", "reward", "dpo", "kto", "ppo", "rloo")
RL_STAGES = ("ppo", "rloo")  # the stages that train against a reward model version


# What each annotation admits (annotations are strings here, from `from __future__ import annotations`).
KINDS = {"str": (str,), "str | None": (str, type(None)), "dict": (dict,), "dict | None": (dict, type(None)),
         "bool": (bool,), "float": (int, float)}


class RunConfigError(ValueError):
    """run.json is missing a setting, has one it should not, or has one of the wrong kind."""


@dataclass(kw_only=True)
class RunConfig:
    run_id: str
    """The run's id in the store (`sft-3`), also its folder's name."""
    stage: str
    """Which stage module runs: one of STAGES."""
    base_model: str
    """What the stage loads: the project's base model, or the whole model of a `--full` parent."""
    project_base_model: str | None = None
    """The project's base model, kept apart from `base_model` so a version's lineage names it."""
    parent_version: str | None = None
    """The model version this run starts from (`--parent`), by id."""
    parent_adapter: str | None = None
    """That parent's adapter folder, which the stage continues (None for a `--full` parent: it is the base)."""
    reward_version: str | None = None
    """PPO / RLOO: the reward model version, by id."""
    reward_adapter: str | None = None
    """PPO / RLOO: the reward version's folder."""
    reward_base_model: str | None = None
    """PPO / RLOO: the base the reward version was trained on."""
    reward_gate: dict | None = None
    """PPO / RLOO: {"min_accuracy", "pairs"} for the check on held-out pairs (data/gate.parquet); None skips it."""
    adapter: dict = field(default_factory=dict)
    """trainers.models.Adapter fields the run overrides (LoRA rank, `full`, `qlora`, ...)."""
    trl: dict = field(default_factory=dict)
    """The stage's TRL config fields (defaults merged with the run's overrides); `seed` seeds every RNG."""
    val_split: float = 0.0
    """Share of the snapshot held out as data/test.parquet."""
    replay: float = 0.0
    """SFT: share of the training rows that are the base model's own replies to general questions
    (trainers/replay.py), against forgetting; 0 trains on the snapshot alone."""
    filters: dict = field(default_factory=dict)
    """The export filters that chose the snapshot's rows, as JSON."""
    dataset_hash: str = ""
    """The snapshot's content hash, which the model version records."""
    rows: dict = field(default_factory=dict)
    """Rows per split in the snapshot."""
    resume: bool = False
    """Go on from the latest complete checkpoint in checkpoints/ (set by `workbench train --resume`)."""

    def __post_init__(self) -> None:
        problems = [f"{f.name} must be {' or '.join('null' if t is type(None) else t.__name__ for t in KINDS[f.type])}, "
                    f"not {type(getattr(self, f.name)).__name__}"
                    for f in fields(self) if not isinstance(getattr(self, f.name), KINDS[f.type])]
        if problems:
            raise RunConfigError("run settings: " + "; ".join(problems))
        if self.stage not in STAGES:
            raise RunConfigError(f"run settings: unknown stage {self.stage!r}; one of {', '.join(STAGES)}")
        if not self.run_id or not self.base_model:
            raise RunConfigError("run settings: run_id and base_model must not be empty")
        if not 0 <= self.val_split < 1:
            raise RunConfigError(f"run settings: val_split must be in [0, 1), not {self.val_split!r}")
        if not 0 <= self.replay < 1 or (self.replay and self.stage != "sft"):
            raise RunConfigError(f"run settings: replay must be in [0, 1) and only for sft, not {self.replay!r} "
                                 f"for {self.stage}")
        if not isinstance(self.trl.get("seed", 0), int):
            raise RunConfigError(f"run settings: trl.seed must be an integer, not {self.trl['seed']!r}")
        try:
            self.lora()
        except TypeError as exc:
            raise RunConfigError(f"run settings: adapter: {exc}") from None
        rl = self.stage in RL_STAGES
        if rl and not (self.reward_adapter and self.reward_base_model):
            raise RunConfigError(f"run settings: {self.stage} needs reward_adapter and reward_base_model")
        if not rl and (self.reward_adapter or self.reward_gate):
            raise RunConfigError(f"run settings: {self.stage} takes no reward model (only {', '.join(RL_STAGES)})")
        if self.reward_gate is not None and not isinstance(self.reward_gate.get("min_accuracy"), int | float):
            raise RunConfigError("run settings: reward_gate needs a numeric min_accuracy")
        if self.stage == "reward" and self.parent_adapter:
            raise RunConfigError("run settings: a reward model trains over the base model: no parent_adapter")

    @property
    def seed(self) -> int:
        return self.trl.get("seed", 0)

    def lora(self) -> Adapter:
        """The trainable part's settings, with Adapter's defaults for what the run left unset."""
        return Adapter(**self.adapter)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write(self, run_dir: Path) -> None:
        """Write run.json atomically: a stage never starts on half a config."""
        path = Path(run_dir) / "run.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise RunConfigError(f"run settings: unknown field(s) {', '.join(unknown)}")
        if missing := sorted({"run_id", "stage", "base_model"} - set(data)):
            raise RunConfigError(f"run settings: missing {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """A run folder's run.json (or its path), checked; the error names the file and the field."""
        path = Path(path)
        if path.is_dir():
            path = path / "run.json"
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise RunConfigError(f"{path}: not valid JSON ({exc})") from None
        except RunConfigError as exc:
            raise RunConfigError(f"{path}: {exc}") from None
