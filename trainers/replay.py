"""General replay for SFT: the base model's own replies to general questions, mixed into a run's training rows.

A project's demonstrations are all about one thing. Trained on them alone, a pretrained model learns that every
question is that thing: after one epoch of LoRA SFT on the demo's 1,945 support rows, SmolLM2-135M answered
"What is the capital of France?" with "Hello. I have checked the current population of your country's capital
city ...", and a general passage lost 1.08 nats per token (BENCHMARKS.md). LLaMA-Factory's users mix a general
dataset into the run for this; offline there is none to download, but the base model itself is one: its greedy
replies to general questions (self-distillation) teach nothing new, only "off the project's topic, keep
answering as you did". `workbench train sft --replay 0.2` makes a fifth of the training rows such replays.

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


def base_replies(base_model: str, prompts: list[str]) -> list[dict]:
    """The base model's greedy replies, as conversational prompt/completion rows (the snapshot's format)."""
    from trainers.generation import Sampling, generate_hf, load_for_generation

    model, tokenizer = load_for_generation(base_model, None)
    conversations = [[{"role": "user", "content": p}] for p in prompts]
    replies = generate_hf(model, tokenizer, conversations, Sampling(temperature=0.0, max_new_tokens=REPLY_TOKENS))
    del model
    rows = []
    for conversation, [(text, tokens)] in zip(conversations, replies, strict=True):
        reply = finished(text, tokens)
        if reply:
            rows.append({"prompt": conversation, "completion": [{"role": "assistant", "content": reply}]})
    return rows


def replay_rows(base_model: str, run_dir: Path) -> list[dict]:
    """The run's replay rows: read from data/replay.jsonl, or made there first (by the main process only, when
    several train together; the others wait for it and read the same file)."""
    from accelerate import PartialState

    path = Path(run_dir) / "data" / REPLAY_FILE
    with PartialState().main_process_first():
        if not path.exists() and PartialState().is_main_process:
            rows = base_replies(base_model, general_prompts())
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            tmp.replace(path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def mix_replay(train, share: float, base_model: str, run_dir: Path, seed: int):
    """`train` with replay rows added to make `share` of it (the replies cycled when more are needed than there
    are questions), shuffled with the run's seed; and how many were added, from how many distinct replies."""
    from datasets import Dataset, concatenate_datasets

    rows = replay_rows(base_model, run_dir)
    if not rows:
        raise RuntimeError(f"general replay: the base model {base_model} gave no usable reply to the "
                           f"{len(general_prompts())} general questions; train without --replay")
    count = replay_count(share, len(train))
    cycled = [rows[i % len(rows)] for i in range(count)]
    replay = Dataset.from_list(cycled, features=train.features)
    return concatenate_datasets([train, replay]).shuffle(seed=seed), {"replay_rows": count,
                                                                     "replay_distinct": len(rows)}
