"""The one stage driver: what every stage does the same way, so a stage module keeps only what builds its
trainer and what it checks afterwards.

    run_stage(run_dir, build)      # build(run, run_dir) -> Stage; a stage's main() is this one line
    trl_config(DPOConfig, run, run_dir, evaluate=test is not None)   # the TRL config every stage builds alike

For every stage (SFT, reward, DPO, KTO, PPO, RLOO) it:
- reads run.json as a checked RunConfig and seeds every RNG from the run's seed;
- leaves status.json saying how the stage ended, with the summary (or the error and its traceback);
- times each phase (load, train, save, checks) into summary["seconds"];
- resumes from the newest complete checkpoint when the run is resumed (`trainer.train(resume_from_checkpoint=)`);
- saves the trained adapter (or full model) and the tokenizer to adapter/, on rank 0 only;
- records the steps, world size and training loss in the summary;
- runs the stage's checks, then the after-run checks every stage shares (`after_run_checks`: forgetting).

A stage's `build` returns a `Stage`: its trainer, its tokenizer, and the checks to run once trained. The
trainer is anything with TRL's `train(resume_from_checkpoint=...)`, `state.global_step` and `args.world_size`,
which TRL's trainers have (PPO's through trainers/ppo.py, which adds the resume TRL's experimental PPO lacks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainers.evaluation import forgetting_check
from trainers.models import hardware_args, save_trained
from trainers.run_config import RunConfig
from trainers.run_folder import MetricsLog, is_main_process, latest_checkpoint, phase, read_run, stage_status


@dataclass
class Stage:
    """What a stage's `build` hands the driver."""

    trainer: Any
    """A TRL trainer, built and ready to train."""
    tokenizer: Any
    """Saved beside the adapter, so a version loads with the tokenizer it was trained with."""
    checks: Callable[[dict], None] | None = None
    """Run on every rank after the save (an eval needs all of them); adds its figures to the summary.
    Anything only rank 0 should do (sampling, probes) checks `is_main_process()` itself."""
    summary: dict = field(default_factory=dict)
    """Figures known once built (rows, weights), added to the summary after training."""
    trained: Callable[[], Any] | None = None
    """The model to save, read after training (FSDP replaces `trainer.model`); default `trainer.model`."""


def trl_config(config_class: type, run: RunConfig, run_dir: Path, *, evaluate: bool | None = None, **fields):
    """The stage's TRL config: checkpoints inside the run folder (where a resume looks for them), the
    machine's settings, the run's own fields, then the stage's. `evaluate` (the supervised stages) evaluates
    each epoch when the snapshot has a test split. Passed as keywords, so a run field that clashes with one
    the stage sets fails loudly instead of one silently winning."""
    if evaluate is not None:
        fields["eval_strategy"] = "epoch" if evaluate else "no"
    return config_class(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run.trl, **fields)


def trainer_inputs(run_dir: Path, tokenizer, peft_config, train, test) -> dict:
    """What the supervised stages (SFT, reward, DPO, KTO) hand their TRL trainer alike: the snapshot's
    splits, the tokenizer, the PEFT config (None when the model carries its adapter) and the metrics log."""
    return {"train_dataset": train, "eval_dataset": test, "processing_class": tokenizer, "peft_config": peft_config,
            "callbacks": [MetricsLog(run_dir)]}


def data_rows(train, test) -> dict:
    """The snapshot's size, as every supervised stage reports it."""
    return {"train_rows": len(train), "test_rows": len(test) if test is not None else 0}


def run_stage(run_dir: str | Path, build: Callable[[RunConfig, Path], Stage]) -> None:
    """Load, train (on from the latest checkpoint when resumed), save on rank 0, check; status.json says how
    it ended whatever happens, and the summary where the wall time went."""
    run_dir = Path(run_dir)
    with stage_status(run_dir) as summary:
        run = read_run(run_dir)
        with phase(summary, "load"):
            stage = build(run, run_dir)
        trainer = stage.trainer
        with phase(summary, "train"):
            result = trainer.train(resume_from_checkpoint=latest_checkpoint(run_dir) if run.resume else None)
        with phase(summary, "save"):
            if is_main_process():
                save_trained(stage.trained() if stage.trained else trainer.model, run_dir / "adapter")
                stage.tokenizer.save_pretrained(run_dir / "adapter")
        summary.update({"world_size": trainer.args.world_size, "steps": trainer.state.global_step})
        if tokens := trained_tokens(trainer.state.log_history):
            summary["train_tokens"] = tokens
        if result is not None:  # TRL's experimental PPO returns nothing
            summary["train_loss"] = result.training_loss
        summary.update(stage.summary)
        with phase(summary, "checks"):
            if stage.checks is not None:
                stage.checks(summary)
            if is_main_process():
                after_run_checks(run, stage, summary)


def trained_tokens(log_history: list[dict]) -> int | None:
    """The tokens the run trained on, padding not counted (TRL's running `num_tokens`, logged by the
    supervised stages): the figure that shows what packing bought, since a packed step carries more of them."""
    counts = [entry["num_tokens"] for entry in log_history if isinstance(entry.get("num_tokens"), int | float)]
    return int(max(counts)) if counts else None


def after_run_checks(run: RunConfig, stage: Stage, summary: dict) -> None:
    """What every stage gets once trained, whatever its own checks: the forgetting check (the change, against
    the project's base model, on general text no project trains on), beside the stage's figures and with its
    warnings added to the stage's."""
    model = stage.trained() if stage.trained else stage.trainer.model
    report, warnings = forgetting_check(model, stage.tokenizer, run.project_base_model or run.base_model)
    summary.update(report)
    summary.setdefault("warnings", []).extend(warnings)
