"""Create a project folder: config, store, and its base model: the tiny offline model (no base model named),
a GGUF file converted once into `models/base`, a local model folder, or a Hub id.

The folder is made private (0700) before anything is written in it: the store holds users' password hashes
and every label, and the runs hold the data; the store file itself is created 0600 (see Store.open).
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.config import CONFIG_NAME, ProjectConfig, ProjectError, load_project, write_config
from workbench.store import Store

TINY_MODEL_DIR = "models/base"
BASE_MODEL_DIR = "models/base"  # a converted GGUF goes where the tiny model would, so a project has one base


def init_project(path: str | Path, *, base_model: str | None = None, corpus: list[str] | None = None,
                 name: str | None = None, log=print):
    """Create the project at `path`. Without `base_model`, build the tiny offline model inside it, with a
    tokenizer trained on `corpus` (the package's small default text when None). A GGUF file (or a shortcut
    such as `smollm2`) is converted into the project's `models/base` with a model card, once."""
    root = Path(path).resolve()
    if (root / CONFIG_NAME).exists():
        raise ProjectError(f"{root} is already a workbench project; remove it first or choose another folder")
    gguf = gguf_base_model(base_model) if base_model is not None else None  # checked before any folder exists
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # mkdir's mode is cut by the umask, and an existing folder keeps its own
    except OSError as exc:
        raise ProjectError(f"cannot create the project folder {root}: {exc.strerror}") from None
    if base_model is None:
        from trainers.tiny_model import build_tiny_model

        build_tiny_model(root / TINY_MODEL_DIR, corpus)
        base_model = TINY_MODEL_DIR
    elif gguf is not None:
        convert_base_model(gguf, root / BASE_MODEL_DIR, source=base_model, log=log)
        base_model = BASE_MODEL_DIR
    else:
        local = Path(base_model).expanduser()
        if local.exists():
            if not (local / "config.json").is_file():
                raise ProjectError(f"--base-model {base_model}: the folder has no config.json, so it is not a "
                                   "model saved with save_pretrained (nor a GGUF file)")
            base_model = str(local.resolve())
        elif base_model.startswith((".", "/", "~")) or base_model.count("/") > 1:
            raise ProjectError(f"--base-model {base_model}: no such folder (and it is not a Hub id like org/name)")
    write_config(root, ProjectConfig(name=name or root.name, base_model=base_model))
    Store.open(root / "workbench.duckdb", create=True).close()
    (root / "runs").mkdir(exist_ok=True)
    return load_project(root)


def gguf_base_model(base_model: str) -> Path | None:
    """The GGUF file `--base-model` names (a file, or a shortcut like `smollm2`), its architecture checked;
    None for a model folder or a Hub id."""
    from trainers.gguf import GGUFError, check_architecture, describe_gguf, find_gguf

    try:
        path = find_gguf(base_model)
        if path is not None:
            check_architecture(path, describe_gguf(path))
    except GGUFError as exc:
        raise ProjectError(str(exc)) from None
    return path


def convert_base_model(gguf: Path, out_dir: Path, *, source: str, log=print) -> Path:
    """Convert once: a folder already converted from the same file (its card's sha256) is kept as it is."""
    from trainers.gguf import GGUFError, convert_gguf, converted_from, sha256

    if out_dir.exists():
        if converted_from(out_dir) == sha256(gguf):
            log(f"base model: reusing {out_dir} (already converted from {gguf.name})")
            return out_dir
        raise ProjectError(f"{out_dir} exists and was not converted from {gguf.name}: remove it or choose "
                           "another project folder")
    log(f"base model: converting {gguf.name} into {out_dir} (once; about 20 s and 0.5 GB for 135M parameters)")
    try:
        return convert_gguf(gguf, out_dir, source=source)
    except GGUFError as exc:
        raise ProjectError(str(exc)) from None


def base_model_matches(project, base_model: str | None) -> bool:
    """Whether an existing project's base model is the one `base_model` names (None: the tiny model)."""
    from trainers.gguf import converted_from, sha256

    folder = Path(project.base_model_path())
    if base_model is None:
        return is_tiny(project)
    gguf = gguf_base_model(base_model)
    if gguf is not None:
        return converted_from(folder) == sha256(gguf)
    local = Path(base_model).expanduser()
    return str(local.resolve()) == str(folder) if local.exists() else base_model == project.config.base_model


def is_tiny(project) -> bool:
    """A project on the tiny offline model (random weights: it trains every weight, not an adapter)."""
    return (Path(project.base_model_path()) / "workbench_tiny_model.json").is_file()
