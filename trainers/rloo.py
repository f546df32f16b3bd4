"""RLOO stage: TRL's maintained RLOOTrainer with a trained reward model, the alternative to PPO.

    workbench train ppo -p PROJECT --algorithm rloo --parent SFT_VERSION --reward-model REWARD_VERSION
    python -m trainers.rloo RUN_DIR

REINFORCE Leave-One-Out: several sampled replies per prompt, each baselined by the others' mean reward; no
value model. As in the PPO stage, the SFT adapter is merged into the base in memory and a fresh LoRA trains
over it, so the KL reference (the adapter disabled) is exactly the SFT version; the version records
`stacked_on`. It reports the reward model's mean score on sampled held-out replies before and after.
"""

from __future__ import annotations

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
    from trl import RLOOConfig, RLOOTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        pairs, _ = load_snapshot(run_dir)
        prompts = list({json.dumps(list(p)): list(p) for p in pairs["prompt"]}.values())
        tokenizer = load_tokenizer(run["base_model"])
        policy = load_merged(run["base_model"], [run["parent_adapter"]] if run.get("parent_adapter") else [])
        policy.generation_config.pad_token_id = tokenizer.pad_token_id
        reward_peft, reward_tokenizer = load_reward_version(run["reward_base_model"], run["reward_adapter"])
        reward_model = reward_peft.merge_and_unload().eval()

        heldout = load_heldout(run_dir, SAMPLES) or prompts[:SAMPLES]
        before, _ = mean_reward(policy.eval(), tokenizer, reward_model, reward_tokenizer, heldout)
        policy.train()

        args = RLOOConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"])
        trainer = RLOOTrainer(model=policy, reward_funcs=reward_model, args=args,
                              train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer,
                              reward_processing_classes=reward_tokenizer,
                              peft_config=lora_config(Adapter(**run["adapter"])), callbacks=[MetricsLog(run_dir)])
        result = trainer.train()
        if not is_main_process():
            return
        save_trained(trainer.model, run_dir / "adapter")
        tokenizer.save_pretrained(run_dir / "adapter")
        trainer.model.eval()
        after, replies = mean_reward(trainer.model, tokenizer, reward_model, reward_tokenizer, heldout)
        summary.update({
            "world_size": trainer.args.world_size, "steps": result.global_step, "prompts": len(prompts),
            "heldout_reward_before": before, "heldout_reward_after": after, "heldout_reward_gain": after - before,
            "samples": [{"prompt": p[-1]["content"], "reply": r} for p, r in zip(heldout, replies, strict=True)],
            "degenerate_share": sum(is_degenerate(r) for r in replies) / len(replies),
            "stacked_on": [run["parent_adapter"]] if run.get("parent_adapter") else [],
            "warnings": [] if after > before else
            [f"RLOO did not raise the held-out reward ({before:.3f} -> {after:.3f})"],
        })


if __name__ == "__main__":
    main(sys.argv[1])
