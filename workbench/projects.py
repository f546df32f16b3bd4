"""Create a project folder: config, store, and (with no base model named) the tiny offline model.

The folder is made private (0700) before anything is written in it: the store holds users' password hashes
and every label, and the runs hold the data; the store file itself is created 0600 (see Store.open).
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.config import CONFIG_NAME, ProjectConfig, ProjectError, load_project, write_config
from workbench.store import Store

TINY_MODEL_DIR = "models/base"


def init_project(path: str | Path, *, base_model: str | None = None, corpus: list[str] | None = None,
                 name: str | None = None):
    """Create the project at `path`. Without `base_model`, build the tiny offline model inside it, with a
    tokenizer trained on `corpus` (the package's small default text when None)."""
    root = Path(path).resolve()
    if (root / CONFIG_NAME).exists():
        raise ProjectError(f"{root} is already a workbench project; remove it first or choose another folder")
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # mkdir's mode is cut by the umask, and an existing folder keeps its own
    except OSError as exc:
        raise ProjectError(f"cannot create the project folder {root}: {exc.strerror}") from None
    if base_model is None:
        from trainers.tiny_model import build_tiny_model

        build_tiny_model(root / TINY_MODEL_DIR, corpus)
        base_model = TINY_MODEL_DIR
    else:
        local = Path(base_model).expanduser()
        if local.exists():
            if not (local / "config.json").is_file():
                raise ProjectError(f"--base-model {base_model}: the folder has no config.json, so it is not a "
                                   "model saved with save_pretrained")
            base_model = str(local.resolve())
        elif base_model.startswith((".", "/", "~")) or base_model.count("/") > 1:
            raise ProjectError(f"--base-model {base_model}: no such folder (and it is not a Hub id like org/name)")
    write_config(root, ProjectConfig(name=name or root.name, base_model=base_model))
    Store.open(root / "workbench.duckdb", create=True).close()
    (root / "runs").mkdir(exist_ok=True)
    return load_project(root)
