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
import json
import sys
from pathlib import Path

from trainers.evaluation import is_degenerate, mean_reward
from trainers.models import (
    Adapter,
    hardware_args,
    load_merged,
    load_reward_version,
    load_tokenizer,
    lora_config,
    save_trained,
)
from trainers.run_folder import (
    MetricsLog,
    is_main_process,
    load_heldout,
    load_snapshot,
    read_run,
    stage_status,
)

SAMPLES = 16


def main(run_dir: str | Path) -> None:
    from datasets import Dataset
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        pairs, _ = load_snapshot(run_dir)
        tokenizer = load_tokenizer(run["base_model"])
        tokenizer.padding_side = "left"
        prompts = list({json.dumps(list(p)): list(p) for p in pairs["prompt"]}.values())
        encoded = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=True, return_dict=True)
                   ["input_ids"] for p in prompts]
        train = Dataset.from_dict({"input_ids": encoded})

        policy = load_merged(run["base_model"], [run["parent_adapter"]] if run.get("parent_adapter") else [])
        policy.generation_config.pad_token_id = tokenizer.pad_token_id
        reward_peft, reward_tokenizer = load_reward_version(run["reward_base_model"], run["reward_adapter"])
        reward_model = reward_peft.merge_and_unload().eval()
        value_model = copy.deepcopy(reward_model).train()

        heldout = load_heldout(run_dir, SAMPLES) or prompts[:SAMPLES]
        before, _ = mean_reward(policy.eval(), tokenizer, reward_model, reward_tokenizer, heldout)

        args = PPOConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"])
        trainer = PPOTrainer(args=args, processing_class=tokenizer, model=policy, ref_model=None,
                             reward_model=reward_model, value_model=value_model, train_dataset=train,
                             peft_config=lora_config(Adapter(**run["adapter"])), callbacks=[MetricsLog(run_dir)])
        trainer.train()
        if not is_main_process():
            return
        trained = trainer.policy_model
        save_trained(trained, run_dir / "adapter")
        tokenizer.save_pretrained(run_dir / "adapter")
        trained.eval()
        after, replies = mean_reward(trained, tokenizer, reward_model, reward_tokenizer, heldout)
        summary.update({
            "episodes": args.total_episodes, "prompts": len(prompts),
            "heldout_reward_before": before, "heldout_reward_after": after, "heldout_reward_gain": after - before,
            "samples": [{"prompt": p[-1]["content"], "reply": r} for p, r in zip(heldout, replies, strict=True)],
            "degenerate_share": sum(is_degenerate(r) for r in replies) / len(replies),
            "stacked_on": [run["parent_adapter"]] if run.get("parent_adapter") else [],
        })
        summary["warnings"] = ([] if after > before else
                               [f"PPO did not raise the held-out reward ({before:.3f} -> {after:.3f})"])


if __name__ == "__main__":
    main(sys.argv[1])
