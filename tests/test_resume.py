"""Every stage that checkpoints resumes for real: a run killed after a checkpoint, resumed with `--resume`,
goes on from that checkpoint's step with its learning-rate schedule where it was, never from step 0. PPO
and RLOO included: before the shared stage driver they accepted `--resume` and quietly started again."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import stage_project
from trainers.run_config import RunConfig, RunConfigError
from trainers.run_folder import latest_checkpoint, read_metrics
from workbench.cli import main
from workbench.jobs import launch
from workbench.runs import TrainRequest, ingest, prepare_run
from workbench.store import Store

FAST = ["--max-steps", "4", "--batch-size", "4", "--max-length", "128"]
STEPS = 8  # every stage runs 8 optimizer steps and checkpoints every 2: killed after the first, it has 6 to go
SMALL = {"per_device_train_batch_size": 4, "logging_steps": 1, "save_strategy": "steps", "save_steps": 2}
RL = {"parent": "sft-1", "reward_model": "reward-1", "min_reward_accuracy": 0.0}
REQUESTS = {
    "sft": TrainRequest(stage="sft", trl={**SMALL, "max_steps": STEPS, "max_length": 128}),
    "reward": TrainRequest(stage="reward", trl={**SMALL, "max_steps": STEPS, "max_length": 128}),
    "dpo": TrainRequest(stage="dpo", parent="sft-1", trl={**SMALL, "max_steps": STEPS, "max_length": 128}),
    "kto": TrainRequest(stage="kto", parent="sft-1", trl={**SMALL, "max_steps": STEPS, "max_length": 128}),
    # PPO counts episodes, not steps: 32 episodes at batch 4 are 8 updates.
    "ppo": TrainRequest(stage="ppo", **RL, trl={**SMALL, "total_episodes": 4 * STEPS, "response_length": 8}),
    "rloo": TrainRequest(stage="rloo", **RL, trl={**SMALL, "max_steps": STEPS, "num_generations": 2,
                                                  "max_completion_length": 8}),
}


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model):
    """One project for every stage: the demo data, thumbs for KTO, an SFT parent and a reward model."""
    project = stage_project(tmp_path_factory.mktemp("resume") / "proj", str(tiny_model))
    root = str(project.root)
    assert main(["train", "sft", root, *FAST]) == 0
    assert main(["train", "reward", root, *FAST]) == 0
    return project


def kill_after_first_checkpoint(project, stage: str) -> tuple[str, Path]:
    """Start the stage, SIGKILL it once a complete checkpoint exists, and record the run as failed."""
    with Store.open(project.store_path) as store:
        run_id, run_dir, _ = prepare_run(project, store, REQUESTS[stage])
        proc = launch(run_dir, stage)
        deadline = time.time() + 300
        while latest_checkpoint(run_dir) is None and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, (run_dir / "stderr.log").read_text()[-3000:]
        assert ingest(store, run_id, run_dir, proc.returncode).status == "failed"
    return run_id, run_dir


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(REQUESTS))
def test_a_killed_run_resumes_from_its_checkpoint_not_from_step_0(project, stage):
    run_id, run_dir = kill_after_first_checkpoint(project, stage)
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None, f"{stage} wrote no complete checkpoint before it was killed"
    saved_step = int(Path(checkpoint).name.split("-")[-1])
    assert saved_step < STEPS
    logged_before = len(read_metrics(run_dir))
    assert main(["train", "ppo" if stage == "rloo" else stage, str(project.root), "--resume", run_id]) == 0
    metrics = read_metrics(run_dir)
    first, resumed = metrics[0], metrics[logged_before:]
    # The resumed process logs from the step after its checkpoint to the end, and never step 1 again ...
    assert resumed[0]["step"] == saved_step + 1 and resumed[-1]["step"] == STEPS
    assert [m["step"] for m in metrics].count(1) == 1
    # ... with the learning-rate schedule restored (linear decay: a restart would log the first step's rate).
    lr = "lr" if "lr" in first else "learning_rate"
    assert resumed[0][lr] < first[lr]
    with Store.open(project.store_path) as store:
        assert store.run(run_id).status == "succeeded"
        assert store.model_version(run_id).metrics["steps"] == STEPS


def test_run_config_round_trips_and_refuses_what_no_stage_can_run(tmp_path):
    config = RunConfig(run_id="dpo-1", stage="dpo", base_model="/models/tiny", parent_adapter="/runs/sft-1/adapter",
                       trl={"seed": 3, "beta": 0.1}, adapter={"r": 8}, dataset_hash="ab" * 32)
    config.write(tmp_path)
    again = RunConfig.from_file(tmp_path)
    assert again == config and again.seed == 3 and again.lora().r == 8 and again.resume is False
    good = {"run_id": "sft-1", "stage": "sft", "base_model": "/models/tiny"}
    for bad, message in [({"stage": "grpo"}, "unknown stage 'grpo'"), ({"adapter": {"rank": 8}}, "adapter:"),
                         ({"trl": {"seed": "0"}}, "trl.seed must be an integer"), ({"val_split": 1.0}, "val_split"),
                         ({"replay": 1.0}, "replay must be in [0, 1)"),
                         ({"stage": "dpo", "replay": 0.2}, "only for sft, not 0.2 for dpo"),
                         ({"stage": "ppo"}, "ppo needs reward_adapter"), ({"base_model": None}, "base_model must be str"),
                         ({"stage": "reward", "parent_adapter": "/a"}, "no parent_adapter"),
                         ({"steps": 4}, "unknown field(s) steps")]:
        with pytest.raises(RunConfigError, match=re.escape(message)):
            RunConfig.from_dict({**good, **bad})


def test_a_stage_on_a_bad_run_json_fails_with_the_field_named(tmp_path):
    import json

    from trainers import sft

    (tmp_path / "run.json").write_text(json.dumps({"run_id": "sft-1", "stage": "sft", "base_model": "/m",
                                                   "adapter": {"rank": 8}}))
    with pytest.raises(RunConfigError):
        sft.main(tmp_path)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "failed" and "run.json: run settings: adapter:" in status["error"]
