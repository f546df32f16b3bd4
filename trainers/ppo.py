"""PPO stage: TRL's PPOTrainer with a trained reward model, starting from (and anchored to) the SFT version.

    workbench train ppo -p PROJECT --parent SFT_VERSION --reward-model REWARD_VERSION
    workbench train ppo -p PROJECT --resume PPO_RUN       # a failed or cancelled run, from its last checkpoint
    python -m trainers.ppo RUN_DIR

PPO lives only in `trl.experimental.ppo`, which TRL removed in 1.13 (PR #7020): the project pins TRL to
1.10-1.12, and every PPO import stays inside this module so nothing else breaks when it goes.

The SFT adapter is merged into the base in memory and PPO trains a fresh LoRA over it, so the reference
(TRL's policy with the adapter disabled) is exactly the SFT version. The version's adapter therefore sits
on base + SFT: its lineage records `stacked_on`. The value model starts as a copy of the reward model.
Before and after training it scores sampled held-out replies with the reward model: the run should raise
the mean score over the SFT start. TRL's PPOTrainer cannot resume; `resumable` below adds that. Status,
phases and the save are trainers/driver.py's.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from trainers.driver import Stage, run_stage, trl_config
from trainers.models import lora_config
from trainers.rl import rl_report, rl_start
from trainers.run_config import RunConfig
from trainers.run_folder import MetricsLog, is_main_process

VALUE_MODEL = "value_model.safetensors"  # in each checkpoint, beside the policy adapter TRL saves there


def resumable(ppo_trainer: type) -> type:
    """PPOTrainer that resumes from its checkpoints. TRL 1.12's experimental PPOTrainer.train() takes no
    checkpoint and always starts at update 1, and its checkpoints hold the policy adapter, optimizer,
    scheduler and RNG but not the value model (TRL keeps PPO in maintenance and will not add resuming:
    huggingface/trl#2657). This one also saves the value model in each checkpoint, and given a checkpoint it
    restores the policy adapter, the value model, the optimizer, the learning-rate schedule, the RNG and the
    step and episode counts, then runs only the updates left. After a resume the prompts come in a fresh
    shuffle drawn from the restored RNG, not the rest of the interrupted one (PPO samples its rollouts
    anyway, so a resumed run is never bit-identical to an uninterrupted one)."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file, load_model, save_model
    from transformers import TrainerCallback

    class RestoreCounters(TrainerCallback):
        """PPO's train() zeroes the step and episode counts just before on_train_begin: put the checkpoint's
        back, so logs, checkpoint names and the end of the run count on from it."""

        def __init__(self, saved: dict, total_updates: int):
            self.saved, self.total_updates = saved, total_updates

        def on_train_begin(self, args, state, control, **kwargs):
            state.global_step, state.episode = self.saved["global_step"], self.saved["episode"]
            state.log_history = self.saved["log_history"]
            state.max_steps = self.total_updates

    class ResumablePPOTrainer(ppo_trainer):
        def _save_checkpoint(self, model, trial):
            # The value model goes first: trainer_state.json, which marks a checkpoint complete, is written last.
            if self.args.should_save:
                folder = Path(self.args.output_dir) / f"checkpoint-{self.state.global_step}"
                folder.mkdir(parents=True, exist_ok=True)
                save_model(self.accelerator.unwrap_model(self.model).value_model, str(folder / VALUE_MODEL))
            super()._save_checkpoint(model, trial)

        def train(self, resume_from_checkpoint: str | None = None):
            if resume_from_checkpoint is None:
                return super().train()
            if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                raise ValueError("resuming PPO under DeepSpeed or FSDP is not supported: its checkpoints hold "
                                 "sharded weights this stage does not gather; start a new run")
            checkpoint = Path(resume_from_checkpoint)
            saved = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
            models = self.accelerator.unwrap_model(self.model)
            loaded = set_peft_model_state_dict(models.policy, load_file(checkpoint / "adapter_model.safetensors"))
            if loaded.unexpected_keys:
                raise ValueError(f"{checkpoint}: the policy adapter does not fit this run's LoRA settings "
                                 f"({len(loaded.unexpected_keys)} unexpected weights)")
            load_model(models.value_model, str(checkpoint / VALUE_MODEL))
            # Torch moves the optimizer state onto each parameter's device as it loads.
            self.optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", map_location="cpu",
                                                      weights_only=True))
            self.lr_scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
            self._load_rng_state(str(checkpoint))
            total = self.args.num_total_batches
            restore = RestoreCounters(saved, total)
            self.callback_handler.callbacks.insert(0, restore)
            self.args.num_total_batches = total - saved["global_step"]  # the updates PPO's loop has left to run
            try:
                return super().train()
            finally:
                self.args.num_total_batches = total
                self.callback_handler.remove_callback(restore)

    return ResumablePPOTrainer


def build(run: RunConfig, run_dir: Path) -> Stage:
    from datasets import Dataset
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    start = rl_start(run, run_dir)
    tokenizer = start.tokenizer
    encoded = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)
               ["input_ids"] for p in start.prompts]
    value_model = copy.deepcopy(start.reward_model).train()
    args = trl_config(PPOConfig, run, run_dir)
    trainer = resumable(PPOTrainer)(args=args, processing_class=tokenizer, model=start.policy, ref_model=None,
                                    reward_model=start.reward_model, value_model=value_model,
                                    train_dataset=Dataset.from_dict({"input_ids": encoded}),
                                    peft_config=lora_config(run.lora()), callbacks=[MetricsLog(run_dir)])

    def checks(summary: dict) -> None:
        if is_main_process():
            summary.update({"episodes": args.total_episodes, **rl_report("PPO", start, trainer.policy_model)})

    # TRL's PPO trains a policy-and-value wrapper: the version is the policy alone.
    return Stage(trainer, tokenizer, checks, trained=lambda: trainer.policy_model)


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
