"""What a stage reads and writes in its run folder. The folder is the whole contract between the workbench
(which owns the store) and a training process (which never opens it):

    run.json          a RunConfig (trainers/run_config.py): stage, base model, parent, adapter and TRL settings
    data/             train.parquet (+ test.parquet), the snapshot with its README card; heldout.parquet
    metrics.jsonl     every TRL log line, one JSON object per line, as it happens
    checkpoints/      TRL's checkpoints, which a resumed run goes on from (trainers/driver.py)
    adapter/          the trained version (PEFT adapter, or a full model with --full)
    status.json       {"status": "succeeded" | "failed", "error": ..., "summary": {...}}
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transformers import TrainerCallback

from trainers.run_config import RunConfig


def is_main_process() -> bool:
    """Under `accelerate launch` every process runs the stage; only rank 0 writes the run folder."""
    return int(os.environ.get("RANK", "0")) == 0


def read_run(run_dir: Path) -> RunConfig:
    """The run's settings, read at the start of a stage, which also seeds every RNG from the run's seed: TRL
    seeds only when its trainer is built, after the model is, so a fresh score head or LoRA init would
    otherwise differ from one run of the same settings to the next."""
    from transformers import set_seed

    run = RunConfig.from_file(Path(run_dir) / "run.json")
    set_seed(run.seed)
    return run


def write_status(run_dir: Path, status: str, *, error: str | None = None, summary: dict | None = None) -> None:
    path = Path(run_dir) / "status.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"status": status, "error": error, "summary": summary or {},
                               "finished_at": time.time()}, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: the workbench never reads half a status


def load_snapshot(run_dir: Path):
    """The run's training rows and, when the run has a validation split, its test rows (else None)."""
    from datasets import load_dataset

    data = Path(run_dir) / "data"
    train = load_dataset("parquet", data_files=str(data / "train.parquet"), split="train")
    test = (load_dataset("parquet", data_files=str(data / "test.parquet"), split="train")
            if (data / "test.parquet").exists() else None)
    return train, test


def load_heldout(run_dir: Path, limit: int) -> list[list[dict]]:
    """Up to `limit` held-out conversations (prompts tagged `heldout` in the store) for post-run samples."""
    path = Path(run_dir) / "data" / "heldout.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["prompt"] for line in path.read_text(encoding="utf-8").splitlines()][:limit]


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class MetricsLog(TrainerCallback):
    """Append every log line TRL emits to metrics.jsonl, flushed, so a live plot can follow it; each line also
    says the steps the run will take (`max_steps`) and when it was logged (`time`), for the jobs list's ETA."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, "max_steps": state.max_steps,
                                     "time": round(time.time(), 3), **logs}) + "\n")


def latest_checkpoint(run_dir: Path) -> str | None:
    """The newest *complete* checkpoint. Transformers writes trainer_state.json last, so a run killed while
    saving leaves a folder without it (or with half of it): resuming from that one fails, so skip it."""
    checkpoints = sorted((Path(run_dir) / "checkpoints").glob("checkpoint-*"),
                         key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for checkpoint in checkpoints:
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return str(checkpoint)
    return None


@contextmanager
def phase(summary: dict, name: str) -> Iterator[None]:
    """Time one part of a stage (load, train, save, checks) into summary["seconds"], so a run says where its
    wall time went and the overhead benchmark can hold each part against a plain TRL script's."""
    start = time.perf_counter()
    try:
        yield
    finally:
        summary.setdefault("seconds", {})[name] = round(time.perf_counter() - start, 3)


@contextmanager
def stage_status(run_dir: Path) -> Iterator[dict]:
    """Run a stage body; whatever happens, leave status.json saying how it ended. The body fills `summary`."""
    summary: dict = {}
    try:
        yield summary
    except BaseException as exc:
        if is_main_process():
            write_status(run_dir, "failed", error=f"{type(exc).__name__}: {exc}",
                         summary={**summary, "traceback": traceback.format_exc()[-4000:]})
        raise
    if is_main_process():
        write_status(run_dir, "succeeded", summary=summary)
