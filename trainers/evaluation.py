"""Checks after a run that its loss cannot give, judged against where the model started rather than against
fixed figures, so they fit the 2M demo model and a real pretrained one alike:

- the collapse guard (preference and RL stages): the policy's samples beside its parent's own samples on the
  same held-out prompts and seed: share degenerate, length, repetition, diversity, and the KL to the
  reference on the policy's samples;
- the forgetting check (every stage that writes text): the per-token log-prob change, against the project's
  base model, of general text that has nothing to do with the project's data (trainers/assets/).

DPO on a small model can push both log-probs down: reward accuracy reads 100% while replies turn to junk
(measured on the 2M demo model at lr 5e-4 with plain sigmoid loss)."""

from __future__ import annotations

import math
import re
from collections import Counter
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")

# Collapse guard thresholds (`collapse_warnings`), measured in BENCHMARKS.md ("Collapse guard and forgetting
# check"). Policy and parent are sampled on the same prompts with the same seed, but their paths part after the
# first token that differs, so two healthy samples of 16 differ by chance: on the 1-epoch tiny SFT model a
# 4-step healthy DPO read 7 of 16 degenerate against its parent's 2 (KL 0.03 nats/token). A share is flagged
# only past three standard errors of the difference of two shares (a chance flag about 1 run in 700), and never
# within DEGENERATE_MARGIN; collapsed runs measured 1.0 against the parent's 0.12 (z = 5).
DEGENERATE_MARGIN = 0.25
DEGENERATE_Z = 3.0
LENGTH_RATIO_FLOOR = 0.4  # policy replies under 40% of the parent's length: "...." or an early stop everywhere
REPETITION_MARGIN = 0.25  # share of a reply's token 4-grams that repeat, above the parent's: a loop
DISTINCT_RATIO_FLOOR = 0.5  # distinct token bigrams across all replies, against the parent's: one reply for all
# KL(policy || reference) per token of the policy's own samples: healthy runs measured 0.0004 (SmolLM2) to 0.35
# (tiny, lr 1e-2: moved, yet its samples read like its parent's), collapsed ones 1.65 (SmolLM2) and 4.3 (tiny).
# Past 1 nat/token each token the policy writes is on average e^1 = 2.7x likelier under it than under its start.
KL_PER_TOKEN_WARN = 1.0
# Chosen replies' log-prob against the reference on the same batches (`chosen_vs_reference`), nats per reply:
# healthy runs read -0.7 to +0.05, collapsing ones -15 to -500. Below -1 the chosen replies became e^1 = 2.7x
# less likely than at the start: DPO is pushing both replies down.
CHOSEN_DROP_WARN = -1.0
# Forgetting: per-token log-prob change (nats) against the base model of the general passage (FORGETTING_WARN)
# and of general questions' replies (FORGETTING_CHAT_WARN; SFT teaches the assistant turn, so this one moves
# first). Measured on SmolLM2-135M (BENCHMARKS.md): 4 LoRA steps at lr 2e-4 +0.003 / +0.02; 30 steps at the
# demo's lr 5e-4 (4 epochs of 15 rows) -0.02 / -0.13; over-trained, 30 steps at lr 2e-3 (loss 0.15: the rows
# memorized) -0.14 / -0.37; a collapsed DPO -1.5 / -5.8; weights scaled by 0.9 -0.21 / +0.05. Each threshold
# sits between the normal run and the over-trained one. Only where the base knows the text: its per-token
# log-prob at least KNOWS_MARGIN above uniform guessing over the vocabulary. The tiny model starts from
# random weights (-6.98 against uniform -6.93): it has nothing general to forget, so its figures carry no warning.
FORGETTING_WARN = -0.1
FORGETTING_CHAT_WARN = -0.25
KNOWS_MARGIN = 1.0


def vocabulary_of(texts) -> set[str]:
    """The lower-case words of some texts (a run's training data): what a healthy reply is made of."""
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(text.lower()))
    return words


def is_tiny_model(base_model: str) -> bool:
    """The workbench's own tiny model (trainers/tiny_model.py), whose tokenizer and words come from the project's
    text: only there does "words outside the training data" mean word salad. A real model's healthy replies
    leave the demo's vocabulary all the time (SmolLM2-135M: 8 of 16 sampled replies would have counted)."""
    return (Path(base_model) / "workbench_tiny_model.json").is_file()


def repeated_share(items: list, n: int = 4) -> float:
    """Share of a sequence's n-grams that repeat an earlier one: near 0 for prose, near 1 for a loop."""
    grams = [tuple(items[i:i + n]) for i in range(len(items) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def is_degenerate(text: str, vocabulary: set[str] | None = None) -> bool:
    """Empty, mostly punctuation, broken bytes, looping, a few words churned, or (given the training data's
    vocabulary, which only fits the tiny model) word salad: the shapes a collapsed model produces ("....",
    "sorry sorry sorry", the same sentence over and over, half-characters from a byte-level tokenizer, or
    "cyion willrectly turing hold addiziv": real-looking tokens, few real words)."""
    stripped = text.strip()
    if len(stripped) < 3:
        return True
    broken = sum(ch == "\ufffd" or (not ch.isprintable() and ch not in "\n\t") for ch in stripped)
    if broken / len(stripped) > 0.02:
        return True
    letters = sum(ch.isalpha() for ch in stripped)
    if letters / len(stripped) < 0.5:
        return True
    if re.search(r"(.)\1{7,}", stripped):
        return True
    words = stripped.lower().split()
    if len(words) >= 8 and len(set(words)) / len(words) < 0.3:
        return True
    if len(words) >= 12 and repeated_share(words, 4) > 0.5:  # "The screen is cracked." three times over
        return True
    found = _WORD.findall(stripped.lower())
    # A few words over and over in no order ("I, this, sounds, that, that, I this, sounds, I see"): SmolLM2
    # after a 3-step DPO at lr 1e-2. Their three commonest words are 35-61% of such a reply; of the demo's 2,000
    # written replies at most 33%, of healthy SmolLM2 samples at most 28%, of plain English prose about 20%.
    if len(found) >= 12 and sum(n for _, n in Counter(found).most_common(3)) / len(found) > 0.45:
        return True
    return bool(vocabulary) and len(found) >= 4 and sum(w in vocabulary for w in found) / len(found) < 0.6


def sample_figures(replies: list[str], tokenizer, vocabulary: set[str] | None = None) -> dict:
    """What the collapse guard compares between a policy's and its parent's samples."""
    ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in replies]
    bigrams = [tuple(row[i:i + 2]) for row in ids for i in range(len(row) - 1)]
    return {"degenerate_share": sum(is_degenerate(r, vocabulary) for r in replies) / len(replies),
            "mean_tokens": sum(map(len, ids)) / len(ids),
            "repetition": sum(repeated_share(row) for row in ids) / len(ids),
            "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 0.0}


def collapse_warnings(policy: dict, parent: dict, samples: int, kl_per_token: float | None = None) -> list[str]:
    """A collapse is the policy's samples worse than its parent's on the same prompts, by a margin a healthy
    run stays inside: more degenerate, much shorter, looping, or one reply for every prompt. A KL per token
    past KL_PER_TOKEN_WARN is its own warning: the policy moved far even where its samples still look fine."""
    found = []
    pooled = (policy["degenerate_share"] + parent["degenerate_share"]) / 2
    margin = max(DEGENERATE_MARGIN, DEGENERATE_Z * math.sqrt(pooled * (1 - pooled) * 2 / samples))
    if policy["degenerate_share"] > parent["degenerate_share"] + margin:
        found.append(f"{policy['degenerate_share']:.0%} of {samples} sampled held-out replies look degenerate "
                     f"against the parent's {parent['degenerate_share']:.0%} on the same prompts")
    if parent["mean_tokens"] and policy["mean_tokens"] < LENGTH_RATIO_FLOOR * parent["mean_tokens"]:
        found.append(f"replies shrank to {policy['mean_tokens']:.1f} tokens on average from the parent's "
                     f"{parent['mean_tokens']:.1f}")
    if policy["repetition"] > parent["repetition"] + REPETITION_MARGIN:
        found.append(f"replies loop: {policy['repetition']:.0%} of their 4-grams repeat, against the parent's "
                     f"{parent['repetition']:.0%}")
    if parent["distinct_2"] and policy["distinct_2"] < DISTINCT_RATIO_FLOOR * parent["distinct_2"]:
        found.append(f"replies all look alike: distinct bigrams {policy['distinct_2']:.2f} against the parent's "
                     f"{parent['distinct_2']:.2f}")
    warnings = []
    if found:
        warnings.append("the model may have collapsed: " + "; ".join(found) + ". Lower the learning rate, raise "
                        "beta or add the SFT term (--loss sigmoid,sft)")
    if kl_per_token is not None and kl_per_token > KL_PER_TOKEN_WARN:
        warnings.append(f"the policy moved far from its reference: KL {kl_per_token:.2f} nats per token of its own "
                        f"samples (warned past {KL_PER_TOKEN_WARN:.1f}); lower the learning rate or raise beta")
    return warnings


@contextmanager
def reference_of(model, reference=None):
    """The policy's starting point, to sample or score with: `reference` when the trainer kept a separate one
    (full fine-tuning), TRL's frozen "ref" adapter when the run continued a parent adapter, else the model
    under its adapter (the base for a fresh adapter; the merged SFT model for PPO and RLOO)."""
    if reference is not None:
        yield reference
    elif "ref" in getattr(model, "peft_config", {}):
        model.set_adapter("ref")
        try:
            yield model
        finally:
            model.set_adapter("default")
    else:
        with model.disable_adapter():
            yield model


def collapse_guard(model, tokenizer, prompts: list[list[dict]], *, reference=None,
                   vocabulary: set[str] | None = None, replies: list[str] | None = None,
                   parent_replies: list[str] | None = None, seed: int = 0) -> tuple[dict, list[str]]:
    """The policy's samples beside its parent's on the same prompts and seed, the KL to the reference on the
    policy's own samples, and the warnings `collapse_warnings` finds. `replies` and `parent_replies` are the
    samples when the stage drew them already (the RL stages score them, and sample the parent before
    training); else they are drawn here."""
    from peft import PeftModel

    has_reference = isinstance(model, PeftModel) or reference is not None
    if replies is None:
        replies = sample_replies(model, tokenizer, prompts, seed=seed)
    policy = sample_figures(replies, tokenizer, vocabulary)
    report = {"samples": [{"prompt": p[-1]["content"], "reply": r} for p, r in zip(prompts, replies, strict=True)],
              **policy}
    if parent_replies is None and has_reference:
        with reference_of(model, reference) as parent_model:
            parent_replies = sample_replies(parent_model, tokenizer, prompts, seed=seed)
    if parent_replies is None:
        return report, []  # nothing to compare with (a full model whose trainer kept no reference)
    parent = sample_figures(parent_replies, tokenizer, vocabulary)
    report.update({f"parent_{k}": v for k, v in parent.items()})
    report["parent_samples"] = [{"prompt": p[-1]["content"], "reply": r}
                                for p, r in zip(prompts[:4], parent_replies[:4], strict=True)]
    report["length_ratio"] = policy["mean_tokens"] / parent["mean_tokens"] if parent["mean_tokens"] else None
    report["guard_thresholds"] = {"degenerate_margin": DEGENERATE_MARGIN, "length_ratio_floor": LENGTH_RATIO_FLOOR,
                                  "degenerate_z": DEGENERATE_Z, "repetition_margin": REPETITION_MARGIN,
                                  "distinct_ratio_floor": DISTINCT_RATIO_FLOOR, "kl_per_token_warn": KL_PER_TOKEN_WARN}
    if has_reference:
        kl, tokens = kl_to_reference(model, tokenizer, prompts, replies, reference=reference, with_tokens=True)
        report["kl_to_reference"], report["kl_per_token"] = kl, kl * len(replies) / max(tokens, 1)
    return report, collapse_warnings(policy, parent, len(replies), report.get("kl_per_token"))


def chosen_logp_trend(metrics: list[dict]) -> tuple[float, float] | None:
    """(first, last) logged mean log-prob of chosen replies during training, or None if not logged. Each is
    one batch's: with a few logged steps their difference is mostly which replies each batch held."""
    values = [m["logps/chosen"] for m in metrics if "logps/chosen" in m and "eval_loss" not in m]
    return (values[0], values[-1]) if values else None


def chosen_vs_reference(metrics: list[dict], beta: float) -> float | None:
    """How far the chosen replies' log-prob (nats per reply) fell below the reference's on the same batches,
    averaged over the last quarter of the logged steps: TRL's DPO and KTO log it, times beta, as rewards/chosen.
    Unlike the first and last batches' log-probs this compares like with like, so a healthy two-step run on
    SmolLM2 reads +0.02 where its logps/chosen "fell" from -35.9 to -42.6."""
    values = [m["rewards/chosen"] for m in metrics if "rewards/chosen" in m and "eval_loss" not in m]
    if not values or not beta:
        return None
    tail = values[-max(1, len(values) // 4):]
    return sum(tail) / len(tail) / beta


def sample_replies(model, tokenizer, prompts: list[list[dict]], *, max_new_tokens: int = 64,
                   temperature: float = 1.0, seed: int = 0) -> list[str]:
    """One sampled reply per prompt (conversation), batched with left padding."""
    import torch

    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(**batch, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    return [tokenizer.decode(row[batch["input_ids"].shape[1]:], skip_special_tokens=True) for row in out]


PROBE = ([{"role": "user", "content": "My phone screen cracked. What can I do?"}],
         "I'm so sorry to hear that. Under our Screen Care promise, your first repair is free.")


def probe_logp(model, tokenizer) -> float:
    """Log-prob of one fixed reply: a fingerprint of a model version, to check that it loads back the same
    and that a reference equals its parent."""
    was_training = model.training
    model.eval()
    value = sequence_logps(model, tokenizer, [PROBE[0]], [PROBE[1]])[0]
    model.train(was_training)
    return value


def _reply_logps(model, tokenizer, prompt: list[dict], reply: str):
    """Each reply token's log-prob given the prompt and the reply before it."""
    import torch

    context = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(context + reply, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
    n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].float()
    logps = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
    return logps[n_context - 1:]


def sequence_logps(model, tokenizer, prompts: list[list[dict]], replies: list[str], per_token: bool = False):
    """Summed log-prob of each reply given its prompt, under `model` as it is now (adapter set); per_token
    divides by the reply's length in tokens, so a long reply is not less likely merely for being long."""
    rows = []
    for prompt, reply in zip(prompts, replies, strict=True):
        reply_logps = _reply_logps(model, tokenizer, prompt, reply)
        rows.append(reply_logps.mean().item() if per_token else reply_logps.sum().item())
    return rows


def kl_to_reference(model, tokenizer, prompts: list[list[dict]], replies: list[str], *, reference=None,
                    with_tokens: bool = False):
    """Monte-Carlo KL(policy || reference) per reply: mean of log pi(y) - log ref(y) over the policy's own
    samples. The reference is `reference_of(model)`: TRL's frozen "ref" adapter when the run continued a
    parent adapter, else the base model (the fresh adapter disabled). `with_tokens` also returns the samples'
    total length in tokens, for the KL per token."""
    if reference is None:
        model.set_adapter("default")
    policy = [_reply_logps(model, tokenizer, p, r) for p, r in zip(prompts, replies, strict=True)]
    with reference_of(model, reference) as ref:
        ref_logps = sequence_logps(ref, tokenizer, prompts, replies)
    kl = sum(p.sum().item() - r for p, r in zip(policy, ref_logps, strict=True)) / len(replies)
    return (kl, sum(len(p) for p in policy)) if with_tokens else kl


# General prompts with self-written replies that have nothing to do with any project's data: their log-prob
# under a version, against the base model's, is how much the run changed what the model does off its topic.
GENERAL_CHAT = [
    ([{"role": "user", "content": "What is the capital of France?"}],
     "The capital of France is Paris, which is also its largest city."),
    ([{"role": "user", "content": "Why is the sky blue?"}],
     "Sunlight is scattered by the molecules of the air, and blue light, with its shorter waves, is scattered "
     "the most, so the sky looks blue."),
    ([{"role": "user", "content": "Give me a tip for remembering new words in a foreign language."}],
     "Use each new word in a sentence of your own the same day, and review it again a few days later."),
    ([{"role": "user", "content": "How many legs does a spider have?"}], "A spider has eight legs."),
]


def general_text() -> str:
    """The shipped general passage (trainers/assets/general_text.txt: self-written, about rivers, bread, the
    moon and music): plain prose no project trains on."""
    return resources.files("trainers").joinpath("assets/general_text.txt").read_text(encoding="utf-8")


def general_logps(model, tokenizer) -> dict:
    """Per-token log-prob of the general passage (as plain text) and of the general chat replies."""
    import torch

    was_training = model.training
    model.eval()
    limit = min(getattr(model.config, "max_position_embeddings", 512) or 512, 512)
    ids = tokenizer(general_text(), return_tensors="pt", add_special_tokens=False)["input_ids"][:, :limit]
    ids = ids.to(model.device)
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].float()
    text = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None]).mean().item()
    chat = sequence_logps(model, tokenizer, [p for p, _ in GENERAL_CHAT], [r for _, r in GENERAL_CHAT], per_token=True)
    model.train(was_training)
    return {"text": text, "chat": sum(chat) / len(chat), "chance": -math.log(logits.shape[-1])}


def forgetting_check(model, tokenizer, base_model: str) -> tuple[dict, list[str]]:
    """How much a trained version changed the model off the project's topic: the per-token log-prob of the
    general passage and of the general chat replies under the version, minus under the project's base model
    (loaded again here, a second or two: PPO and RLOO train over a merged parent and a `--full` run has no
    adapter to switch off, so the base is never taken from the trained model). A reward model scores replies
    and never writes any: the check does not apply to it, and the summary says so."""
    import torch
    from transformers import AutoModelForCausalLM

    if model.get_output_embeddings() is None:
        return {"forgetting_logp_delta": None,
                "forgetting_note": "does not apply: a reward model has a score head, not a language-model head, "
                                   "and never writes text"}, []
    after = general_logps(model, tokenizer)
    dtype = model.get_input_embeddings().weight.dtype
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype if dtype.is_floating_point else torch.float32)
    before = general_logps(base.to(model.device), tokenizer)
    del base
    report = {"forgetting_logp_delta": after["text"] - before["text"],
              "forgetting_chat_logp_delta": after["chat"] - before["chat"],
              "general_text_logp": after["text"], "base_general_text_logp": before["text"],
              "general_chat_logp": after["chat"], "base_general_chat_logp": before["chat"],
              "forgetting_warn_below": FORGETTING_WARN, "forgetting_chat_warn_below": FORGETTING_CHAT_WARN}
    warnings, unknown = [], []
    for key, part, what, limit in (("forgetting_logp_delta", "text", "the general passage", FORGETTING_WARN),
                                   ("forgetting_chat_logp_delta", "chat", "general questions' replies",
                                    FORGETTING_CHAT_WARN)):
        if before[part] < before["chance"] + KNOWS_MARGIN:
            unknown.append(f"{what} ({before[part]:.2f} nats per token)")
        elif report[key] < limit:
            warnings.append(f"forgetting: {what} lost {-report[key]:.2f} nats per token against the base model "
                            f"(warned past {-limit:.2f}): the run changed the model far off the project's topic; "
                            "train fewer steps, or mix general replies into SFT (`workbench train sft --replay 0.2`)")
    if unknown:
        report["forgetting_note"] = (f"the base model predicts {' and '.join(unknown)} no better than chance would "
                                     f"({before['chance']:.2f}): it has nothing there to forget, so no warning")
    return report, warnings


def has_brand_trait(reply: str, policy_name: str, openings: list[str]) -> bool:
    """The demo project's brand trait: an empathetic opening (the first three words of one of the
    brand's openings) and the policy that fits the customer's issue."""
    starts = tuple(" ".join(o.split()[:3]) for o in openings)
    return reply.lstrip().startswith(starts) and policy_name in reply


def trait_report(model, tokenizer, heldout: list[dict], policies: dict, *, samples_per_prompt: int = 2,
                 batch_size: int = 32, seed: int = 0) -> dict:
    """Share of sampled replies (temperature 1.0) on held-out prompts that show the brand trait, and the
    share that degenerated. `heldout` rows carry their conversation and issue, as data/loki writes them."""
    rows = [r for r in heldout for _ in range(samples_per_prompt)]
    replies: list[str] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        replies += sample_replies(model, tokenizer, [r["prompt"] for r in chunk], max_new_tokens=96,
                                  seed=seed + start)
    trait = [has_brand_trait(rep, policies["policies"][r["issue"]]["name"], policies["empathetic_openings"])
             for r, rep in zip(rows, replies, strict=True)]
    degenerate = [is_degenerate(r) for r in replies]
    return {"samples": len(replies), "trait_share": sum(trait) / len(trait),
            "degenerate_share": sum(degenerate) / len(replies), "trait_flags": trait, "degenerate_flags": degenerate,
            "replies": replies,
            "examples": [{"prompt": r["prompt"][-1]["content"], "reply": rep} for r, rep in zip(rows[:4], replies[:4],
                                                                                              strict=True)]}


def mean_reward(policy, tokenizer, reward_model, reward_tokenizer, prompts: list[list[dict]]) -> tuple[float, list]:
    """Mean reward-model score of one sampled reply per prompt, and the replies: what an RL stage should raise."""
    from trainers.models import reward_scores

    replies = sample_replies(policy, tokenizer, prompts, seed=1)
    scores = reward_scores(reward_model, reward_tokenizer, prompts, replies)
    return sum(scores) / len(scores), replies
