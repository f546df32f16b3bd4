"""RLOO stage: TRL's maintained RLOOTrainer with a trained reward model, the alternative to PPO.

    workbench train ppo -p PROJECT --algorithm rloo --parent SFT_VERSION --reward-model REWARD_VERSION
    python -m trainers.rloo RUN_DIR

REINFORCE Leave-One-Out: several sampled replies per prompt, each baselined by the others' mean reward; no
value model. As in the PPO stage, the SFT adapter is merged into the base in memory and a fresh LoRA trains
over it, so the KL reference (the adapter disabled) is exactly the SFT version; the version records
`stacked_on`. It reports the reward model's mean score on sampled held-out replies before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.models import Adapter, hardware_args, lora_config, save_trained
from trainers.rl import rl_report, rl_start
from trainers.run_folder import MetricsLog, is_main_process, read_run, stage_status


def main(run_dir: str | Path) -> None:
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        start = rl_start(run, run_dir)
        args = RLOOConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"])
        trainer = RLOOTrainer(model=start.policy, reward_funcs=start.reward_model, args=args,
                              train_dataset=Dataset.from_dict({"prompt": start.prompts}),
                              processing_class=start.tokenizer, reward_processing_classes=start.reward_tokenizer,
                              peft_config=lora_config(Adapter(**run["adapter"])), callbacks=[MetricsLog(run_dir)])
        result = trainer.train()
        if not is_main_process():
            return
        save_trained(trainer.model, run_dir / "adapter")
        start.tokenizer.save_pretrained(run_dir / "adapter")
        summary.update({"world_size": trainer.args.world_size, "steps": result.global_step,
                        **rl_report("RLOO", start, trainer.model)})


if __name__ == "__main__":
    main(sys.argv[1])
