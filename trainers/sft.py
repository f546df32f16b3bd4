"""SFT stage: TRL's SFTTrainer on a run folder's snapshot of curated demonstrations.

    workbench train sft -p PROJECT [--epochs 1 --lr 2e-4 ...]     # snapshots, then runs this module
    python -m trainers.sft RUN_DIR                                  # the stage alone, on a prepared run folder

The snapshot is TRL's conversational prompt/completion format, so the loss covers only the completion
(TRL's default for prompt/completion data), rendered with the model's chat template. `--replay SHARE` mixes
in the base model's own replies to general questions (trainers/replay.py), against forgetting. Status, phases, resume
and the save are trainers/driver.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.driver import Stage, data_rows, run_stage, trainer_inputs, trl_config
from trainers.evaluation import probe_logp
from trainers.models import load_causal_lm, load_tokenizer
from trainers.replay import mix_replay
from trainers.run_config import RunConfig
from trainers.run_folder import is_main_process, load_snapshot


def build(run: RunConfig, run_dir: Path) -> Stage:
    from trl import SFTConfig, SFTTrainer

    train, test = load_snapshot(run_dir)
    rows = data_rows(train, test)
    if run.replay:  # before the model to train is loaded: the base that writes the replays is a second copy
        train, replayed = mix_replay(train, run.replay, run.project_base_model or run.base_model, run_dir,
                                     run.trl.get("seed", 0))
        rows |= replayed
    tokenizer = load_tokenizer(run.base_model)
    model, peft_config = load_causal_lm(run.base_model, run.lora(), run.parent_adapter)
    args = trl_config(SFTConfig, run, run_dir, evaluate=test is not None)
    trainer = SFTTrainer(model=model, args=args, **trainer_inputs(run_dir, tokenizer, peft_config, train, test))

    def checks(summary: dict) -> None:
        if test is not None:
            summary["eval_loss"] = trainer.evaluate()["eval_loss"]
        if is_main_process():
            summary["probe_logp"] = probe_logp(trainer.model, tokenizer)

    return Stage(trainer, tokenizer, checks, summary=rows)


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
