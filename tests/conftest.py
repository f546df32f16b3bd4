"""Shared fixtures: a tiny offline model built once per session, fresh projects and stores in tmp_path."""

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
