"""Row formats: each format's normalizer turns one row into one normalized record, with field checks.

Formats (auto-detected from the first row's fields, or named with --format): TRL's standard and
conversational prompt/completion, messages and preference formats (explicit or implicit prompt), TRL's
unpaired rows, Anthropic HH-RLHF transcripts, Alpaca, ShareGPT and UltraFeedback-style scored completions
(those of public datasets are in public.py; what they share is in rows.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.importers.public import (
    norm_alpaca,
    norm_hh_rlhf,
    norm_sharegpt,
    norm_ultrafeedback,
    norm_unpaired,
)
from workbench.importers.rows import (
    Limits,
    Record,
    RowError,
    answer_of,
    distinct_pair,
    field_names,
    prompt_of,
    require,
    row_scores,
    split_system,
)


def norm_prompt(row: dict, lim: Limits) -> Record:
    if "prompt" in row:
        system, turns = prompt_of(row["prompt"], lim)
    else:
        require(row, "messages")
        system, turns = split_system(lim.messages(row["messages"], "messages"))
        if turns and turns[-1]["role"] == "assistant":
            turns = turns[:-1]
        if not turns:
            raise RowError("messages", "field 'messages' holds no user turn")
    system = lim.text(row["system"], "system") if row.get("system") else system
    return system, turns, None, None, None, None, None


def norm_completion(row: dict, lim: Limits) -> Record:
    require(row, "prompt", "completion")
    system, turns = prompt_of(row["prompt"], lim)
    return system, turns, answer_of(row["completion"], lim, "completion"), None, None, None, None


def norm_messages(row: dict, lim: Limits) -> Record:
    require(row, "messages")
    system, turns = split_system(lim.messages(row["messages"], "messages"))
    if len(turns) < 2 or turns[-1]["role"] != "assistant":
        raise RowError("messages", "field 'messages' must end with an assistant turn after at least one "
                                   "user turn (the last assistant turn becomes the demonstration)")
    return system, turns[:-1], turns[-1]["content"], None, None, None, None


def norm_preference(row: dict, lim: Limits) -> Record:
    require(row, "prompt", "chosen", "rejected")
    system, turns = prompt_of(row["prompt"], lim)
    chosen, rejected = distinct_pair(answer_of(row["chosen"], lim, "chosen"), answer_of(row["rejected"], lim, "rejected"))
    return (system, turns, None, chosen, rejected, *row_scores(row, lim))


def norm_implicit_preference(row: dict, lim: Limits) -> Record:
    """Chosen and rejected hold the whole exchange; the prompt is their shared prefix (as TRL's
    `extract_prompt`: shared leading messages, or for plain text the shared leading characters)."""
    require(row, "chosen", "rejected")
    chosen, rejected = row["chosen"], row["rejected"]
    if isinstance(chosen, str) and isinstance(rejected, str) and not chosen.lstrip().startswith("["):
        lim.text(chosen, "chosen")
        lim.text(rejected, "rejected")
        idx = 0
        limit = min(len(chosen), len(rejected))
        while idx < limit and chosen[idx] == rejected[idx]:
            idx += 1
        if idx and chosen[idx - 1] == " ":
            idx -= 1
        prompt = chosen[:idx]
        if not prompt.strip():
            raise RowError("chosen", "fields 'chosen' and 'rejected' share no prompt prefix; "
                                     "add a 'prompt' field or use --format trl-preference")
        c, r = distinct_pair(lim.text(chosen[idx:], "chosen"), lim.text(rejected[idx:], "rejected"))
        return None, [{"role": "user", "content": prompt}], None, c, r, *row_scores(row, lim)
    cm, rm = lim.messages(chosen, "chosen"), lim.messages(rejected, "rejected")
    idx = 0
    while idx < min(len(cm), len(rm)) and cm[idx] == rm[idx]:
        idx += 1
    system, turns = split_system(cm[:idx])
    if not turns:
        raise RowError("chosen", "fields 'chosen' and 'rejected' share no leading user turn")
    c = answer_of(cm[idx:], lim, "chosen")
    r = answer_of(rm[idx:], lim, "rejected")
    return (system, turns, None, *distinct_pair(c, r), *row_scores(row, lim))


@dataclass(frozen=True)
class Format:
    name: str
    kind: str
    normalize: Callable[[dict, Limits], tuple]
    description: str


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("prompt", "prompts", norm_prompt, "prompt only: 'prompt' (text or messages) or 'messages'"),
    Format("trl-completion", "sft", norm_completion, "TRL prompt/completion, standard or conversational"),
    Format("trl-messages", "sft", norm_messages, "TRL conversational 'messages'"),
    Format("trl-preference", "preferences", norm_preference, "TRL prompt/chosen/rejected"),
    Format("trl-implicit-preference", "preferences", norm_implicit_preference,
           "TRL chosen/rejected with the prompt as their shared prefix"),
    Format("hh-rlhf", "preferences", norm_hh_rlhf, "Anthropic HH-RLHF transcripts in chosen/rejected"),
    Format("alpaca", "sft", norm_alpaca, "Alpaca instruction/input/output (optional system, history)"),
    Format("sharegpt", "sft", norm_sharegpt, "ShareGPT 'conversations' with from/value"),
    Format("ultrafeedback", "preferences", norm_ultrafeedback,
           "UltraFeedback-style prompt plus scored 'completions' (or 'generations' and 'ratings'), "
           "all kept as a scored ranking"),
    Format("trl-unpaired", "unpaired", norm_unpaired, "TRL unpaired prompt/completion/label (KTO)"),
]}


def detect_format(row: dict) -> Format:
    keys = set(row)
    if "conversations" in keys:
        return FORMATS["sharegpt"]
    if ("completions" in keys or {"generations", "ratings"} <= keys) and keys & {"prompt", "instruction"}:
        return FORMATS["ultrafeedback"]
    if {"instruction", "output"} <= keys:
        return FORMATS["alpaca"]
    if keys & {"chosen", "rejected"}:  # one of them alone is a broken pair, not a prompt-only row
        if "prompt" in keys:
            return FORMATS["trl-preference"]
        chosen = row.get("chosen")
        if isinstance(chosen, str) and ("\n\nHuman:" in chosen or chosen.startswith("Human:")):
            return FORMATS["hh-rlhf"]
        return FORMATS["trl-implicit-preference"]
    if {"prompt", "completion", "label"} <= keys:
        return FORMATS["trl-unpaired"]
    if {"prompt", "completion"} <= keys:
        return FORMATS["trl-completion"]
    if "messages" in keys:
        msgs = row["messages"]
        if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict) and msgs[-1].get("role") == "assistant":
            return FORMATS["trl-messages"]
        return FORMATS["prompt"]
    if "prompt" in keys:
        return FORMATS["prompt"]
    raise RowError(None, f"cannot tell the format from the fields [{field_names(keys)}]; expected one of: "
                         + "; ".join(f"{f.name} ({f.description})" for f in FORMATS.values())
                         + ". Pass --format to choose one.", "unknown format")


def check_kind(fmt: Format, kind: str | None, label: str) -> None:
    if kind is None or kind == fmt.kind or kind == "prompts":
        return
    raise RowError(None, f"the rows are {fmt.kind} ({fmt.name}: {fmt.description}), not {kind}; "
                         f"import them with --kind {fmt.kind}, or --kind prompts to take only their prompts")
