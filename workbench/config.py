"""A project is a folder: `workbench.toml`, the DuckDB store, the base model, and run folders.

The config holds only the workbench's own settings; training settings stay in TRL's config classes.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError

CONFIG_NAME = "workbench.toml"
STORE_NAME = "workbench.duckdb"

# A single text field above this is refused at import: the biggest real prompts and replies are tens of
# KB, and a multi-MB field is nearly always a pasted log or a broken export that would blow up training.
DEFAULT_MAX_FIELD_BYTES = 1_000_000


class ProjectError(WorkbenchError):
    """A project that cannot be found or read; the message says where and what to do."""


@dataclass
class ProjectConfig:
    name: str
    base_model: str
    """A Hub id or a local folder; `workbench init` without --base-model builds a tiny offline one."""
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    """The largest text field (UTF-8 bytes) an import accepts."""
    tags: list[str] = field(default_factory=list)


@dataclass
class Project:
    root: Path
    config: ProjectConfig

    @property
    def store_path(self) -> Path:
        return self.root / STORE_NAME

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def base_model_path(self) -> str:
        """A relative local base model resolves against the project folder; a Hub id passes through."""
        candidate = self.root / self.config.base_model
        return str(candidate.resolve()) if candidate.exists() else self.config.base_model


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_config(root: Path, config: ProjectConfig) -> Path:
    lines = ["# alignment-workbench project (see README.md)", "[project]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in asdict(config).items()]
    path = root / CONFIG_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_project(path: str | Path | None = None) -> Project:
    """Find a project: the given folder, else $WORKBENCH_PROJECT, else the nearest parent of the cwd."""
    if path is None and os.environ.get("WORKBENCH_PROJECT"):
        path = os.environ["WORKBENCH_PROJECT"]
    if path is None:
        here = Path.cwd().resolve()
        for candidate in (here, *here.parents):
            if (candidate / CONFIG_NAME).is_file():
                path = candidate
                break
        else:
            raise ProjectError(
                f"no project here: {here} and its parents hold no {CONFIG_NAME}; "
                "pass --project DIR, set WORKBENCH_PROJECT, or create one with `workbench init DIR`"
            )
    root = Path(path).resolve()
    config_file = root / CONFIG_NAME
    if not config_file.is_file():
        raise ProjectError(f"{root} is not a workbench project (no {CONFIG_NAME}); create it with `workbench init {path}`")
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8")).get("project", {})
        config = ProjectConfig(**data)
    except (tomllib.TOMLDecodeError, TypeError) as exc:
        raise ProjectError(f"{config_file}: {exc}") from exc
    return Project(root=root, config=config)
