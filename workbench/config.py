"""A project is a folder: `workbench.toml`, the DuckDB store, the base model, and run folders.

The config holds only the workbench's own settings; training settings stay in TRL's config classes.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from workbench.errors import WorkbenchError, excerpt

CONFIG_NAME = "workbench.toml"
STORE_NAME = "workbench.duckdb"

# A single text field above this is refused at import: the biggest real prompts and replies are tens of
# KB, and a multi-MB field is nearly always a pasted log or a broken export that would blow up training.
DEFAULT_MAX_FIELD_BYTES = 1_000_000
# One import file above this (counted after gzip decompression) is refused, and a .gz file stops inflating
# there: the import holds a file in memory with its Arrow table (2-3x its size), and the biggest single files
# of public SFT and preference sets are 1-2 GB (OpenHermes-2.5's JSON is 1.9 GB), so 4 GiB takes real data
# while a gzip bomb (1 MB that inflates to terabytes) stops at a bounded cost.
DEFAULT_MAX_FILE_BYTES = 4 << 30
# The most an admin may upload through the browser at once (the Project tab's import): 2 GiB takes the biggest
# single files of public SFT and preference sets gzipped, or most of them plain, while a mistaken upload of a
# disk image stops at a bounded cost (the upload is written to the server's temporary folder as it arrives).
DEFAULT_MAX_UPLOAD_BYTES = 2 << 30
# Upper bounds that only catch typos: Arrow's plain strings hold at most 2 GiB each, and a terabyte file
# is past what any machine imports into memory.
_MAX_BYTES = {"max_field_bytes": (1 << 31) - 1, "max_file_bytes": 1 << 40, "max_upload_bytes": 1 << 40}


class ProjectError(WorkbenchError):
    """A project that cannot be found or read; the message says where and what to do."""


@dataclass
class ProjectConfig:
    name: str
    base_model: str
    """A Hub id or a local folder; `workbench init` without --base-model builds a tiny offline one."""
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES
    """The largest text field (UTF-8 bytes) an import or a labeler's answer may hold."""
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    """The largest file an import reads, in bytes after gzip decompression."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    """The most an admin may upload in the browser at once (the Project tab's import), in bytes."""
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_config(self)


def _fail(key: str, value: object, need: str) -> ProjectError:
    return ProjectError(f"{key} = {excerpt(value)}: {need}")


def check_config(config: ProjectConfig) -> None:
    """Every setting's type and range, so a bad value fails at load with its key, never later in a
    traceback (a string where a number belongs) or silently (a negative size limit)."""
    for key in ("name", "base_model"):
        value = getattr(config, key)
        if not isinstance(value, str) or not value.strip():
            raise _fail(key, value, "must be a non-empty string")
        if "\n" in value or "\r" in value:
            raise _fail(key, value, "must be one line")
    for key, most in _MAX_BYTES.items():
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(key, value, "must be a whole number of bytes, like 1000000")
        if not 1 <= value <= most:
            raise _fail(key, value, f"must be between 1 and {most:,} bytes")
    if config.max_field_bytes > config.max_file_bytes:
        raise ProjectError(f"max_field_bytes = {config.max_field_bytes:,} is above max_file_bytes = "
                           f"{config.max_file_bytes:,}: a field cannot be larger than the file that holds it")
    if not isinstance(config.tags, list) or not all(isinstance(t, str) and t.strip() for t in config.tags):
        raise _fail("tags", config.tags, "must be a list of non-empty strings, like [\"support\"]")


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
    return Project(root=root, config=read_config(config_file))


def read_config(config_file: Path) -> ProjectConfig:
    """The [project] table of a workbench.toml, every value checked; errors name the file and the key."""
    try:
        data = tomllib.loads(config_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{config_file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                           f"{exc.start}); save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{config_file}: not valid TOML ({exc})") from None
    except OSError as exc:
        raise ProjectError(f"{config_file}: cannot read it ({exc.strerror})") from None
    project = data.get("project")
    if not isinstance(project, dict):
        raise ProjectError(f"{config_file}: no [project] table; `workbench init` writes one")
    known = {f.name for f in fields(ProjectConfig)}
    unknown = sorted(set(project) - known)
    if unknown:
        raise ProjectError(f"{config_file}: unknown setting {excerpt(unknown[0])} in [project]; the settings are "
                           f"{', '.join(sorted(known))}")
    for required in ("name", "base_model"):
        if required not in project:
            raise ProjectError(f"{config_file}: [project] has no {required}")
    try:
        return ProjectConfig(**project)
    except ProjectError as exc:
        raise ProjectError(f"{config_file}: [project] {exc}") from None
