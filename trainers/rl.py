"""What the two RL stages (PPO, RLOO) share: the same start (the SFT version merged into the base, the reward
model merged into its base, the snapshot's distinct prompts, held-out prompts) and the same report (the
reward model's mean score on sampled held-out replies, before and after)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trainers.evaluation import is_degenerate, mean_reward
from trainers.models import load_merged, load_reward_version, load_tokenizer
from trainers.run_folder import load_heldout, load_snapshot

SAMPLES = 16  # held-out prompts scored before and after


@dataclass
class RLStart:
    prompts: list[list[dict]]
    tokenizer: object
    policy: object
    reward_model: object
    reward_tokenizer: object
    heldout: list[list[dict]]
    stacked_on: list[str]
    reward_before: float


def rl_start(run: dict, run_dir: Path) -> RLStart:
    pairs, _ = load_snapshot(run_dir)
    prompts = list({json.dumps(list(p)): list(p) for p in pairs["prompt"]}.values())
    tokenizer = load_tokenizer(run["base_model"])
    tokenizer.padding_side = "left"  # generation pads on the left
    stacked_on = [run["parent_adapter"]] if run.get("parent_adapter") else []
    policy = load_merged(run["base_model"], stacked_on)
    policy.generation_config.pad_token_id = tokenizer.pad_token_id
    reward_peft, reward_tokenizer = load_reward_version(run["reward_base_model"], run["reward_adapter"])
    reward_model = reward_peft.merge_and_unload().eval()
    heldout = load_heldout(run_dir, SAMPLES) or prompts[:SAMPLES]
    before, _ = mean_reward(policy.eval(), tokenizer, reward_model, reward_tokenizer, heldout)
    policy.train()
    return RLStart(prompts, tokenizer, policy, reward_model, reward_tokenizer, heldout, stacked_on, before)


def rl_report(algorithm: str, start: RLStart, trained) -> dict:
    trained.eval()
    after, replies = mean_reward(trained, start.tokenizer, start.reward_model, start.reward_tokenizer, start.heldout)
    before = start.reward_before
    return {
        "prompts": len(start.prompts),
        "heldout_reward_before": before, "heldout_reward_after": after, "heldout_reward_gain": after - before,
        "samples": [{"prompt": p[-1]["content"], "reply": r} for p, r in zip(start.heldout, replies, strict=True)],
        "degenerate_share": sum(is_degenerate(r) for r in replies) / len(replies),
        "stacked_on": start.stacked_on,
        "warnings": [] if after > before else
        [f"{algorithm} did not raise the held-out reward ({before:.3f} -> {after:.3f})"],
    }
