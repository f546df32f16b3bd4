"""RLOO stage: TRL's maintained RLOOTrainer with a trained reward model, the alternative to PPO.

    workbench train ppo -p PROJECT --algorithm rloo --parent SFT_VERSION --reward-model REWARD_VERSION
    workbench train ppo -p PROJECT --resume RLOO_RUN      # a failed or cancelled run, from its last checkpoint
    python -m trainers.rloo RUN_DIR

REINFORCE Leave-One-Out: several sampled replies per prompt, each baselined by the others' mean reward; no
value model. As in the PPO stage, the SFT adapter is merged into the base in memory and a fresh LoRA trains
over it, so the KL reference (the adapter disabled) is exactly the SFT version; the version records
`stacked_on`. It reports the reward model's mean score on sampled held-out replies before and after.
Status, phases, resume and the save are trainers/driver.py's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.driver import Stage, run_stage, trl_config
from trainers.models import lora_config
from trainers.rl import rl_report, rl_start
from trainers.run_config import RunConfig
from trainers.run_folder import MetricsLog, is_main_process


def build(run: RunConfig, run_dir: Path) -> Stage:
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    start = rl_start(run, run_dir)
    args = trl_config(RLOOConfig, run, run_dir)
    trainer = RLOOTrainer(model=start.policy, reward_funcs=start.reward_model, args=args,
                          train_dataset=Dataset.from_dict({"prompt": start.prompts}),
                          processing_class=start.tokenizer, reward_processing_classes=start.reward_tokenizer,
                          peft_config=lora_config(run.lora()), callbacks=[MetricsLog(run_dir)])

    def checks(summary: dict) -> None:
        if is_main_process():
            summary.update(rl_report("RLOO", start, trainer.model))

    return Stage(trainer, start.tokenizer, checks)


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
