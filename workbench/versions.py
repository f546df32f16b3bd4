"""Export a model version as a folder that plain transformers / peft load: its PEFT adapter, or the base with
everything merged in (a full model folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.store import ModelVersion


class VersionError(WorkbenchError):
    """A version that cannot be exported as asked; the message says why."""


def export_version(version: ModelVersion, out_dir: str | Path, *, merge: bool) -> Path:
    from trainers.models import load_tokenizer, load_version

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise VersionError(f"{out} exists and is not empty: choose a new folder")
    spec = version.load_spec()
    if spec["adapter"] is None:  # a --full version: its folder already is a whole model
        shutil.copytree(version.path, out, dirs_exist_ok=True)
        return out
    if not merge:
        if spec["stacked_on"]:
            raise VersionError(f"{version.id} is an adapter over its base with {len(spec['stacked_on'])} parent "
                               "adapter(s) merged in: export it with --merge to get a model that loads on its own")
        shutil.copytree(version.path, out, dirs_exist_ok=True)
        return out
    model = load_version(spec["base_model"], spec["adapter"], stacked_on=spec["stacked_on"]).merge_and_unload()
    model.save_pretrained(out)
    load_tokenizer(spec["base_model"]).save_pretrained(out)
    return out
