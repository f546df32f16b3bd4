"""Reward model stage: TRL's RewardTrainer on a run folder's snapshot of curated preference pairs.

    workbench train reward -p PROJECT [--val-split 0.1 ...]
    python -m trainers.reward RUN_DIR

A one-score sequence classifier over the project's base model, trained as a LoRA adapter with its score
head. It reports held-out pairwise accuracy (chosen scored above rejected) and the mean margin, the
figures a PPO run's reward gate needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.models import (
    Adapter,
    hardware_args,
    load_reward_model,
    load_tokenizer,
    reward_scores,
    save_trained,
)
from trainers.run_folder import (
    MetricsLog,
    is_main_process,
    latest_checkpoint,
    load_snapshot,
    phase,
    read_run,
    stage_status,
)


def pairwise(model, tokenizer, rows) -> dict:
    """Held-out pairwise accuracy and mean margin, scored one pair at a time as a user of the model would."""
    prompts = [list(r["prompt"]) for r in rows]
    chosen = reward_scores(model, tokenizer, prompts, [r["chosen"][0]["content"] for r in rows])
    rejected = reward_scores(model, tokenizer, prompts, [r["rejected"][0]["content"] for r in rows])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {"pairwise_accuracy": sum(m > 0 for m in margins) / len(margins), "mean_margin": sum(margins) / len(margins),
            "scored_pairs": len(margins)}


def main(run_dir: str | Path) -> None:
    from trl import RewardConfig, RewardTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        with phase(summary, "load"):
            train, test = load_snapshot(run_dir)
            tokenizer = load_tokenizer(run["base_model"])
            model, peft_config = load_reward_model(run["base_model"], Adapter(**run["adapter"]), tokenizer)
            args = RewardConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"],
                                eval_strategy="epoch" if test is not None else "no")
            trainer = RewardTrainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                                    processing_class=tokenizer, peft_config=peft_config,
                                    callbacks=[MetricsLog(run_dir)])
        with phase(summary, "train"):
            result = trainer.train(resume_from_checkpoint=latest_checkpoint(run_dir) if run.get("resume") else None)
        with phase(summary, "save"):
            if is_main_process():
                save_trained(trainer.model, run_dir / "adapter")
                tokenizer.save_pretrained(run_dir / "adapter")
        summary.update({"world_size": trainer.args.world_size, "train_loss": result.training_loss,
                        "steps": result.global_step, "train_rows": len(train),
                        "test_rows": len(test) if test is not None else 0})
        if not is_main_process():
            return
        with phase(summary, "checks"):
            trainer.model.eval()
            held_out = test if test is not None else train.select(range(min(64, len(train))))
            summary.update(pairwise(trainer.model, tokenizer, held_out))
            summary["held_out_is_test_split"] = test is not None
            summary["probe_scores"] = reward_scores(trainer.model, tokenizer, [list(held_out[0]["prompt"])],
                                                    [held_out[0]["chosen"][0]["content"]])

if __name__ == "__main__":
    main(sys.argv[1])
