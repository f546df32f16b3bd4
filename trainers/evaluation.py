"""Checks after a preference run that reward accuracy alone cannot give: KL to the reference on the
policy's own samples, the chosen log-prob trend, and whether sampled replies have degenerated.

DPO on a small model can push both log-probs down: reward accuracy reads 100% while replies turn to junk
(measured on the 2M demo model at lr 5e-4 with plain sigmoid loss)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def vocabulary_of(texts) -> set[str]:
    """The lower-case words of some texts (a run's training data): what a healthy reply is made of."""
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(text.lower()))
    return words


def is_degenerate(text: str, vocabulary: set[str] | None = None) -> bool:
    """Empty, mostly punctuation, broken bytes, looping, or (given the training data's vocabulary) word
    salad: the shapes a collapsed small model produces ("....", "sorry sorry sorry", half-characters from
    a byte-level tokenizer, or "cyion willrectly turing hold addiziv": real-looking tokens, few real words)."""
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
    if vocabulary:
        found = _WORD.findall(stripped.lower())
        if len(found) >= 4 and sum(w in vocabulary for w in found) / len(found) < 0.6:
            return True
    return False


def chosen_logp_trend(metrics: list[dict]) -> tuple[float, float] | None:
    """(first, last) logged mean log-prob of chosen replies during training, or None if not logged."""
    values = [m["logps/chosen"] for m in metrics if "logps/chosen" in m and "eval_loss" not in m]
    return (values[0], values[-1]) if values else None


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


def sequence_logps(model, tokenizer, prompts: list[list[dict]], replies: list[str], per_token: bool = False):
    """Summed log-prob of each reply given its prompt, under `model` as it is now (adapter set); per_token
    divides by the reply's length in tokens, so a long reply is not less likely merely for being long."""
    import torch

    rows = []
    for prompt, reply in zip(prompts, replies, strict=True):
        context = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(context + reply, return_tensors="pt", add_special_tokens=False)["input_ids"].to(model.device)
        n_context = len(tokenizer(context, add_special_tokens=False)["input_ids"])
        with torch.no_grad():
            logits = model(ids).logits[0, :-1].float()
        logps = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
        reply_logps = logps[n_context - 1:]
        rows.append(reply_logps.mean().item() if per_token else reply_logps.sum().item())
    return rows


def kl_to_reference(model, tokenizer, prompts: list[list[dict]], replies: list[str]) -> float:
    """Monte-Carlo KL(policy || reference) per reply: mean of log pi(y) - log ref(y) over the policy's own
    samples. The reference is TRL's frozen "ref" adapter when the run continued a parent adapter, else the
    base model (the fresh adapter disabled)."""
    model.set_adapter("default")
    policy = sequence_logps(model, tokenizer, prompts, replies)
    if "ref" in model.peft_config:
        model.set_adapter("ref")
        reference = sequence_logps(model, tokenizer, prompts, replies)
        model.set_adapter("default")
    else:
        with model.disable_adapter():
            reference = sequence_logps(model, tokenizer, prompts, replies)
    return sum(p - r for p, r in zip(policy, reference, strict=True)) / len(replies)


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
    return {"samples": len(replies), "trait_share": sum(trait) / len(trait),
            "degenerate_share": sum(is_degenerate(r) for r in replies) / len(replies),
            "examples": [{"prompt": r["prompt"][-1]["content"], "reply": rep} for r, rep in zip(rows[:4], replies[:4],
                                                                                              strict=True)]}


def mean_reward(policy, tokenizer, reward_model, reward_tokenizer, prompts: list[list[dict]]) -> tuple[float, list]:
    """Mean reward-model score of one sampled reply per prompt, and the replies: what an RL stage should raise."""
    from trainers.models import reward_scores

    replies = sample_replies(policy, tokenizer, prompts, seed=1)
    scores = reward_scores(reward_model, reward_tokenizer, prompts, replies)
    return sum(scores) / len(scores), replies
