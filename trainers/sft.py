"""SFT stage: TRL's SFTTrainer on a run folder's snapshot of curated demonstrations.

    workbench train sft -p PROJECT [--epochs 1 --lr 2e-4 ...]     # snapshots, then runs this module
    python -m trainers.sft RUN_DIR                                  # the stage alone, on a prepared run folder

The snapshot is TRL's conversational prompt/completion format, so the loss covers only the completion
(TRL's default for prompt/completion data), rendered with the model's chat template.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.evaluation import probe_logp
from trainers.models import Adapter, hardware_args, load_causal_lm, load_tokenizer, save_trained
from trainers.run_folder import (
    MetricsLog,
    is_main_process,
    latest_checkpoint,
    load_snapshot,
    phase,
    read_run,
    stage_status,
)


def main(run_dir: str | Path) -> None:
    from trl import SFTConfig, SFTTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        with phase(summary, "load"):
            train, test = load_snapshot(run_dir)
            tokenizer = load_tokenizer(run["base_model"])
            model, peft_config = load_causal_lm(run["base_model"], Adapter(**run["adapter"]), run.get("parent_adapter"))
            args = SFTConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"],
                             eval_strategy="epoch" if test is not None else "no")
            trainer = SFTTrainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                                 processing_class=tokenizer, peft_config=peft_config, callbacks=[MetricsLog(run_dir)])
        with phase(summary, "train"):
            result = trainer.train(resume_from_checkpoint=latest_checkpoint(run_dir) if run.get("resume") else None)
        with phase(summary, "save"):
            if is_main_process():
                save_trained(trainer.model, run_dir / "adapter")
                tokenizer.save_pretrained(run_dir / "adapter")
        summary.update({"world_size": trainer.args.world_size, "train_loss": result.training_loss,
                        "steps": result.global_step,
                        "train_rows": len(train), "test_rows": len(test) if test is not None else 0})
        with phase(summary, "checks"):
            if test is not None:
                summary["eval_loss"] = trainer.evaluate()["eval_loss"]
            if is_main_process():
                summary["probe_logp"] = probe_logp(trainer.model, tokenizer)

if __name__ == "__main__":
    main(sys.argv[1])
