"""PPO stage: TRL's PPOTrainer with a trained reward model, starting from (and anchored to) the SFT version.

    workbench train ppo -p PROJECT --parent SFT_VERSION --reward-model REWARD_VERSION
    python -m trainers.ppo RUN_DIR

PPO lives only in `trl.experimental.ppo`, which TRL removed in 1.13 (PR #7020): the project pins TRL to
1.10-1.12, and every PPO import stays inside this module so nothing else breaks when it goes.

The SFT adapter is merged into the base in memory and PPO trains a fresh LoRA over it, so the reference
(TRL's policy with the adapter disabled) is exactly the SFT version. The version's adapter therefore sits
on base + SFT: its lineage records `stacked_on`. The value model starts as a copy of the reward model.
Before and after training it scores sampled held-out replies with the reward model: the run should raise
the mean score over the SFT start.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from trainers.models import Adapter, hardware_args, lora_config, save_trained
from trainers.rl import rl_report, rl_start
from trainers.run_folder import MetricsLog, is_main_process, read_run, stage_status


def main(run_dir: str | Path) -> None:
    from datasets import Dataset
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        start = rl_start(run, run_dir)
        tokenizer = start.tokenizer
        encoded = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)
                   ["input_ids"] for p in start.prompts]
        value_model = copy.deepcopy(start.reward_model).train()
        args = PPOConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"])
        trainer = PPOTrainer(args=args, processing_class=tokenizer, model=start.policy, ref_model=None,
                             reward_model=start.reward_model, value_model=value_model,
                             train_dataset=Dataset.from_dict({"input_ids": encoded}),
                             peft_config=lora_config(Adapter(**run["adapter"])), callbacks=[MetricsLog(run_dir)])
        trainer.train()
        if not is_main_process():
            return
        save_trained(trainer.policy_model, run_dir / "adapter")
        tokenizer.save_pretrained(run_dir / "adapter")
        summary.update({"episodes": args.total_episodes, **rl_report("PPO", start, trainer.policy_model)})


if __name__ == "__main__":
    main(sys.argv[1])
