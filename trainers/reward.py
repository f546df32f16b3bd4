"""Reward model stage: TRL's RewardTrainer on a run folder's snapshot of curated preference pairs.

    workbench train reward -p PROJECT [--val-split 0.1 ...]
    python -m trainers.reward RUN_DIR

A one-score sequence classifier over the project's base model, trained as a LoRA adapter with its score
head. It reports held-out pairwise accuracy (chosen scored above rejected) and the mean margin, the
figures a PPO run's reward gate needs. Status, phases, resume and the save are trainers/driver.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.driver import Stage, data_rows, run_stage, trainer_inputs, trl_config
from trainers.models import load_reward_model, load_tokenizer, reward_scores
from trainers.run_config import RunConfig
from trainers.run_folder import is_main_process, load_snapshot


def pairwise(model, tokenizer, rows) -> dict:
    """Held-out pairwise accuracy and mean margin, scored one pair at a time as a user of the model would."""
    prompts = [list(r["prompt"]) for r in rows]
    chosen = reward_scores(model, tokenizer, prompts, [r["chosen"][0]["content"] for r in rows])
    rejected = reward_scores(model, tokenizer, prompts, [r["rejected"][0]["content"] for r in rows])
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {"pairwise_accuracy": sum(m > 0 for m in margins) / len(margins), "mean_margin": sum(margins) / len(margins),
            "scored_pairs": len(margins)}


def build(run: RunConfig, run_dir: Path) -> Stage:
    from trl import RewardConfig, RewardTrainer

    train, test = load_snapshot(run_dir)
    tokenizer = load_tokenizer(run.base_model)
    model, peft_config = load_reward_model(run.base_model, run.lora(), tokenizer)
    args = trl_config(RewardConfig, run, run_dir, evaluate=test is not None)
    trainer = RewardTrainer(model=model, args=args, **trainer_inputs(run_dir, tokenizer, peft_config, train, test))

    def checks(summary: dict) -> None:
        if not is_main_process():
            return
        trainer.model.eval()
        held_out = test if test is not None else train.select(range(min(64, len(train))))
        summary.update(pairwise(trainer.model, tokenizer, held_out))
        summary["held_out_is_test_split"] = test is not None
        summary["probe_scores"] = reward_scores(trainer.model, tokenizer, [list(held_out[0]["prompt"])],
                                                [held_out[0]["chosen"][0]["content"]])

    return Stage(trainer, tokenizer, checks, summary=data_rows(train, test))


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
