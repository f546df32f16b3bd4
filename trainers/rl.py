"""What the two RL stages (PPO, RLOO) share: the same start (the SFT version merged into the base, the reward
model merged into its base, the snapshot's distinct prompts, held-out prompts) and the same report (the
reward model's mean score on sampled held-out replies, before and after)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from trainers.evaluation import collapse_guard, mean_reward
from trainers.models import load_merged, load_reward_version, load_tokenizer
from trainers.run_config import RunConfig
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
    replies_before: list[str]  # the start's samples on the held-out prompts: the collapse guard's parent samples
    gate: dict | None = None  # the reward gate's figures, when it ran


class RewardGateError(Exception):
    """The reward model ranks too few held-out human pairs right for RL to be worth running on it."""


def reward_gate(run: RunConfig, run_dir: Path, reward_model, reward_tokenizer) -> dict | None:
    """Score the reward model on the human pairs it never trained on (data/gate.parquet, written when the run
    was prepared) and refuse below the run's threshold: RL against a reward model that cannot tell chosen
    from rejected only teaches the policy that model's noise."""
    gate = run.reward_gate
    if not gate:
        return None
    from datasets import load_dataset

    from trainers.reward import pairwise

    rows = load_dataset("parquet", data_files=str(run_dir / "data" / "gate.parquet"), split="train")
    scored = pairwise(reward_model, reward_tokenizer, rows)
    result = {"accuracy": scored["pairwise_accuracy"], "mean_margin": scored["mean_margin"],
              "pairs": scored["scored_pairs"], "min_accuracy": gate["min_accuracy"],
              "longer_reply_accuracy": longer_reply_accuracy(rows)}
    if result["accuracy"] < gate["min_accuracy"]:
        raise RewardGateError(
            f"reward model {run.reward_version} ranks {result['accuracy']:.2f} of {result['pairs']} held-out "
            f"human pairs right, below the gate of {gate['min_accuracy']:.2f} (preferring the longer reply alone "
            f"ranks {result['longer_reply_accuracy']:.2f}): retrain it (more pairs, more steps) "
            f"or pass --min-reward-accuracy {max(0.0, round(result['accuracy'] - 0.05, 2))} (0 turns the check off)")
    return result


def longer_reply_accuracy(rows) -> float:
    """How often the chosen reply is simply the longer one: the accuracy a reward model gets from length alone.
    On length-biased pairs (the demo's: 91%) even an untrained score head can pass a fixed gate, so the
    gate's figures carry this baseline beside the model's."""
    longer = [len(c[0]["content"]) > len(r[0]["content"]) for c, r in zip(rows["chosen"], rows["rejected"], strict=True)]
    return sum(longer) / max(len(longer), 1)


def rl_start(run: RunConfig, run_dir: Path) -> RLStart:
    """Everything both RL stages load before their trainer: the reward model (checked by the gate), the
    prompts, the policy (base + SFT merged) and its held-out reward before training."""
    reward_model, reward_tokenizer = load_reward_version(run.reward_base_model, run.reward_adapter)
    gate = reward_gate(run, run_dir, reward_model, reward_tokenizer)
    pairs, _ = load_snapshot(run_dir)
    prompts = list({json.dumps(list(p)): list(p) for p in pairs["prompt"]}.values())
    tokenizer = load_tokenizer(run.base_model)
    tokenizer.padding_side = "left"  # generation pads on the left
    stacked_on = [run.parent_adapter] if run.parent_adapter else []
    policy = load_merged(run.base_model, stacked_on)
    policy.generation_config.pad_token_id = tokenizer.pad_token_id
    heldout = load_heldout(run_dir, SAMPLES) or prompts[:SAMPLES]
    before, replies = mean_reward(policy.eval(), tokenizer, reward_model, reward_tokenizer, heldout)
    policy.train()
    return RLStart(prompts, tokenizer, policy, reward_model, reward_tokenizer, heldout, stacked_on, before, replies,
                   gate)


def rl_report(algorithm: str, start: RLStart, trained) -> dict:
    """The reward model's mean score on held-out samples before and after, and the collapse guard on the same
    samples (the start's, drawn before training with the same seed, are the parent's): a policy can raise
    its reward by gaming the reward model into junk."""
    trained.eval()
    after, replies = mean_reward(trained, start.tokenizer, start.reward_model, start.reward_tokenizer, start.heldout)
    guard, warnings = collapse_guard(trained, start.tokenizer, start.heldout, replies=replies,
                                     parent_replies=start.replies_before)
    before = start.reward_before
    if after <= before:
        warnings.insert(0, f"{algorithm} did not raise the held-out reward ({before:.3f} -> {after:.3f})")
    return {
        "prompts": len(start.prompts),
        "heldout_reward_before": before, "heldout_reward_after": after, "heldout_reward_gain": after - before,
        **guard, "stacked_on": start.stacked_on, "reward_gate": start.gate, "warnings": warnings,
    }
