"""Export a model version as a folder that plain transformers / peft load: its PEFT adapter, or the base with
everything merged in (a full model folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.errors import WorkbenchError


class VersionError(WorkbenchError):
    """A version that cannot be exported as asked; the message says why."""


def export_version(version: dict, out_dir: str | Path, *, merge: bool) -> Path:
    from trainers.models import load_tokenizer, load_version

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise VersionError(f"{out} exists and is not empty: choose a new folder")
    full = bool(version["config"].get("adapter", {}).get("full"))
    stacked = list(version["metrics"].get("stacked_on", []))
    if full:  # the version folder already is a whole model
        shutil.copytree(version["path"], out, dirs_exist_ok=True)
        return out
    if not merge:
        if stacked:
            raise VersionError(f"{version['id']} is an adapter over its base with {len(stacked)} parent adapter(s) "
                               "merged in: export it with --merge to get a model that loads on its own")
        shutil.copytree(version["path"], out, dirs_exist_ok=True)
        return out
    model = load_version(version["base_model"], version["path"], stacked_on=stacked).merge_and_unload()
    model.save_pretrained(out)
    load_tokenizer(version["base_model"]).save_pretrained(out)
    return out
