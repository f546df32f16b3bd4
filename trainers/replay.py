"""General replay for SFT: the base model's own replies to general questions, mixed into a run's training rows.

A project's demonstrations are all about one thing. Trained on them alone, a pretrained model learns that every
question is that thing: after one epoch of LoRA SFT on the demo's 1,945 support rows, SmolLM2-135M answered
"What is the capital of France?" with "Hello. I have checked the current population of your country's capital
city ...", and a general passage lost 1.08 nats per token (BENCHMARKS.md). LLaMA-Factory's users mix a general
dataset into the run for this; offline there is none to download, but the base model itself is one: its own
replies to general questions (self-distillation) teach nothing new, only "off the project's topic, keep
answering as you did". `workbench train sft --replay 0.2` makes a fifth of the training rows such replays.

The replies are samples at temperature 1 with no top-p or top-k, not greedy replies: a sample is drawn from the
base's own distribution, so its expected gradient is zero while the model still agrees with the base and grows
only as the model drifts; a greedy reply is the base's mode, and training on modes sharpens the model (raises
its favourite words, lowers the rest), which is itself a change off the topic. Measured on SmolLM2: greedy
replay at 0.2 cut the general passage's loss from 1.08 to 0.23 nats per token, but at 0.4, each greedy reply
seen about seven times, it lost 0.41 (BENCHMARKS.md). A run that needs more rows than there are questions gets
several samples of each (up to PER_QUESTION), so a reply is seen about once, not learned by heart.

The questions (assets/general_prompts.txt, self-written) share no topic with the forgetting check's texts
(trainers/evaluation.py: rivers, bread, the moon, music, and its four questions), so that check still measures
what the run did to text it never saw.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

REPLAY_FILE = "replay.jsonl"  # in the run folder's data/, written once: a resumed run replays the same rows
REPLY_TOKENS = 160
PER_QUESTION = 4  # samples of each question at most: generating them is the replay's main cost (about 3 s each on SmolLM2, 2 cores)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def general_prompts() -> list[str]:
    text = resources.files("trainers").joinpath("assets/general_prompts.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def finished(text: str, tokens: int) -> str | None:
    """A reply cut off at REPLY_TOKENS ends at its last whole sentence (a replay must not teach the model to stop
    mid-word); one with no whole sentence, or an empty one, is dropped."""
    text = text.strip()
    if tokens < REPLY_TOKENS:
        return text or None
    ends = list(_SENTENCE_END.finditer(text))
    return text[:ends[-1].end()] if ends else None


def replay_count(share: float, train_rows: int) -> int:
    """Replay rows so that they make `share` of the mixed set."""
    return round(share / (1 - share) * train_rows)


def samples_per_question(needed: int, questions: int) -> int:
    """Enough samples of each question for `needed` rows, between 1 and PER_QUESTION."""
    return max(1, min(PER_QUESTION, -(-needed // max(questions, 1))))


def base_replies(base_model: str, prompts: list[str], per_question: int = 1, seed: int = 0) -> list[dict]:
    """The base model's sampled replies (temperature 1, the whole distribution), `per_question` of each, as
    conversational prompt/completion rows (the snapshot's format)."""
    from trainers.evaluation import KNOWS_MARGIN, general_logps
    from trainers.generation import Sampling, generate_hf, load_for_generation

    model, tokenizer = load_for_generation(base_model, None)
    knows = general_logps(model, tokenizer)
    if knows["text"] < knows["chance"] + KNOWS_MARGIN:  # the forgetting check's own test of "nothing to forget"
        raise RuntimeError(f"general replay: the base model {base_model} predicts general text no better than "
                           f"chance ({knows['text']:.2f} nats per token against {knows['chance']:.2f}): it has "
                           "nothing general to keep; train without --replay")
    conversations = [[{"role": "user", "content": p}] for p in prompts]
    sampling = Sampling(n=per_question, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=REPLY_TOKENS, seed=seed)
    replies = generate_hf(model, tokenizer, conversations, sampling)
    del model
    rows = []
    for conversation, samples in zip(conversations, replies, strict=True):
        for text, tokens in samples:
            reply = finished(text, tokens)
            if reply:
                rows.append({"prompt": conversation, "completion": [{"role": "assistant", "content": reply}]})
    return rows


def replay_rows(base_model: str, run_dir: Path, needed: int, seed: int = 0) -> list[dict]:
    """The run's replay rows: read from data/replay.jsonl, or made there first (by the main process only, when
    several train together; the others wait for it and read the same file)."""
    from accelerate import PartialState

    path = Path(run_dir) / "data" / REPLAY_FILE
    with PartialState().main_process_first():
        if not path.exists() and PartialState().is_main_process:
            prompts = general_prompts()
            rows = base_replies(base_model, prompts, samples_per_question(needed, len(prompts)), seed)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            tmp.replace(path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mix_replay(train, share: float, base_model: str, run_dir: Path, seed: int):
    """`train` with replay rows added to make `share` of it (the replies cycled when more are needed than were
    sampled), shuffled with the run's seed; and how many were added, from how many distinct replies."""
    from datasets import Dataset, concatenate_datasets

    count = replay_count(share, len(train))
    rows = replay_rows(base_model, run_dir, count, seed)
    if not rows:
        raise RuntimeError(f"general replay: the base model {base_model} gave no usable reply to the "
                           f"{len(general_prompts())} general questions; train without --replay")
    cycled = [rows[i % len(rows)] for i in range(count)]
    replay = Dataset.from_list(cycled, features=train.features)
    return concatenate_datasets([train, replay]).shuffle(seed=seed), {"replay_rows": count,
                                                                     "replay_distinct": len(rows)}
