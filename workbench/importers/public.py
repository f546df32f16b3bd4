"""Public datasets' own shapes, read as their owners meant them: Anthropic HH-RLHF transcripts, Alpaca,
ShareGPT, UltraFeedback (openbmb's `completions` or distilabel's `generations`/`ratings`) and TRL's unpaired
(KTO) rows. tests/fixtures/real/ holds a few hand-written rows of each shape as the public files hold them.
"""

from __future__ import annotations

import re

import orjson

from workbench.errors import excerpt
from workbench.importers.rows import (
    Limits,
    Record,
    RowError,
    SkipRow,
    answer_of,
    distinct_pair,
    prompt_of,
    require,
    type_name,
)

_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def _hh_turns(text: object, lim: Limits, name: str) -> list[dict]:
    text = lim.text(text, name)
    parts = _HH_TURN.split("\n\n" + text.lstrip("\n") if not text.startswith("\n\n") else text)
    if parts[0].strip():
        raise RowError(name, f"field '{name}' must start with '\\n\\nHuman:' (an Anthropic HH-RLHF transcript)",
                       "not an HH-RLHF transcript")
    turns = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
             for who, body in zip(parts[1::2], parts[2::2], strict=True)]
    if not turns or turns[-1]["role"] != "assistant":
        raise RowError(name, f"field '{name}' must end with an Assistant turn", "not an HH-RLHF transcript")
    return turns


def norm_hh_rlhf(row: dict, lim: Limits) -> Record:
    """The prompt is the transcripts' longest shared prefix of turns, as TRL's `extract_prompt`, cut back to
    end on a Human turn; each side's reply is its first Assistant turn after it. Most pairs differ only in
    the last turn; where they branch earlier (HH-RLHF has such rows), the turns after each side's first
    differing reply are dropped, since a stored reply is one assistant message."""
    require(row, "chosen", "rejected")
    chosen, rejected = _hh_turns(row["chosen"], lim, "chosen"), _hh_turns(row["rejected"], lim, "rejected")
    idx = 0
    while idx < min(len(chosen), len(rejected)) and chosen[idx] == rejected[idx]:
        idx += 1
    while idx and chosen[idx - 1]["role"] != "user":
        idx -= 1
    if not idx:
        raise RowError("rejected", "the 'chosen' and 'rejected' transcripts share no leading Human turn",
                       "no shared prompt")
    for i, turn in enumerate(chosen[:idx]):
        if not turn["content"]:
            raise RowError("chosen", f"field 'chosen' turn {i + 1} ({turn['role']}) is empty", "empty text")
    replies = []
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        if turns[idx]["role"] != "assistant":
            raise RowError(name, f"field '{name}' turn {idx + 1} follows a Human turn with another Human turn",
                           "not an HH-RLHF transcript")
        if not turns[idx]["content"]:
            raise RowError(name, f"field '{name}' has an empty reply (Assistant turn {idx + 1}): a pair cannot "
                                 "teach with an empty side", "empty reply")
        replies.append(turns[idx]["content"])
    if replies[0] == replies[1]:
        raise RowError("rejected", "the 'chosen' and 'rejected' transcripts branch at a Human turn: their replies "
                                   "to the shared prompt are identical, so the pair says nothing",
                       "branch at a Human turn")
    return (None, chosen[:idx], None, *distinct_pair(replies[0], replies[1]), None, None)


def norm_alpaca(row: dict, lim: Limits) -> Record:
    require(row, "instruction", "output")
    instruction = lim.text(row["instruction"], "instruction")
    extra = row.get("input")
    if extra is not None and not isinstance(extra, str):
        raise RowError("input", f"field 'input' must be text, got {type_name(extra)}")
    user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    turns: list[dict] = []
    for i, pair in enumerate(row.get("history") or []):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise RowError("history", f"field 'history[{i}]' must be a [question, answer] pair")
        turns += [{"role": "user", "content": lim.text(pair[0], f"history[{i}][0]")},
                  {"role": "assistant", "content": lim.text(pair[1], f"history[{i}][1]")}]
    turns.append({"role": "user", "content": lim.text(user, "instruction")})
    system = lim.text(row["system"], "system") if row.get("system") else None
    return system, turns, lim.text(row["output"], "output"), None, None, None, None


_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "system": "system"}


def norm_sharegpt(row: dict, lim: Limits) -> Record:
    """ShareGPT as its dumps hold it: `human` against `gpt` (or `chatgpt`, `bing`, `bard` in the original
    crawl), any leading `system` turns joined into the system prompt, and a conversation cut off after a
    human turn read up to its last gpt turn (the trailing question has no answer to learn from)."""
    require(row, "conversations")
    conv = row["conversations"]
    if isinstance(conv, str):
        try:
            conv = orjson.loads(conv)
        except orjson.JSONDecodeError as exc:
            raise RowError("conversations", f"field 'conversations' is not valid JSON: {exc}") from None
    if not isinstance(conv, list) or not conv:
        raise RowError("conversations", f"field 'conversations' must be a non-empty list, got {type_name(conv)}")
    roles = []
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise RowError("conversations", f"field 'conversations[{i}]' must have 'from' and 'value'")
        role = _SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise RowError("conversations", f"field 'conversations[{i}].from' is {excerpt(turn['from'])}; expected "
                                            f"one of {sorted(_SHAREGPT_ROLES)}", "unknown role")
        roles.append(role)
    end = max((i for i, r in enumerate(roles) if r == "assistant"), default=-1) + 1
    if end and isinstance(conv[end - 1]["value"], str) and not conv[end - 1]["value"].strip():
        raise RowError("conversations", f"field 'conversations[{end - 1}].value' is an empty {conv[end - 1]['from']} "
                                        "reply: a demonstration cannot teach with it", "empty reply")
    turns = [{"role": role, "content": lim.text(conv[i]["value"], f"conversations[{i}].value")}
             for i, role in enumerate(roles[:end])]
    lead = 0
    while lead < len(turns) and turns[lead]["role"] == "system":
        lead += 1
    system = "\n\n".join(t["content"] for t in turns[:lead]) or None
    turns = turns[lead:]
    if any(t["role"] == "system" for t in turns):
        raise RowError("conversations", "field 'conversations' has a system turn after the conversation began")
    if row.get("system"):
        system = lim.text(row["system"], "system")
    if not any(t["role"] == "user" for t in turns[:-1]) or not turns or turns[-1]["role"] != "assistant":
        raise RowError("conversations", "field 'conversations' must hold a gpt/assistant turn after a human turn",
                       "no reply")
    return system, turns[:-1], turns[-1]["content"], None, None, None, None


_UF_TEXT = ("response", "text", "content", "completion")
_UF_SCORE = ("overall_score", "score", "rating")
_NO_RATING = (None, "", "N/A", "n/a", "NA")


def _uf_candidates(row: dict) -> list[tuple[int, object, object]]:
    """(position, text, score or None) per completion, in either public shape: openbmb's `completions`
    objects, or distilabel's parallel `generations` and `ratings` lists (a failed rating is null there)."""
    if "completions" not in row:
        require(row, "generations", "ratings")
        gens, ratings = row["generations"], row["ratings"]
        if not isinstance(gens, list) or not isinstance(ratings, list) or len(gens) != len(ratings):
            raise RowError("ratings", "fields 'generations' and 'ratings' must be lists of the same length")
        return [(i, g, r) for i, (g, r) in enumerate(zip(gens, ratings, strict=True))]
    completions = row["completions"]
    if not isinstance(completions, list):
        raise RowError("completions", f"field 'completions' must be a list, got {type_name(completions)}")
    out = []
    for i, comp in enumerate(completions):
        if not isinstance(comp, dict):
            raise RowError("completions", f"field 'completions[{i}]' must be an object")
        text_key = next((k for k in _UF_TEXT if k in comp), None)
        if text_key is None:
            raise RowError("completions", f"field 'completions[{i}]' has no text (one of {list(_UF_TEXT)})",
                           "missing field")
        score_key = next((k for k in _UF_SCORE if k in comp), None)
        out.append((i, comp[text_key], comp.get(score_key) if score_key else None))
    return out


def norm_ultrafeedback(row: dict, lim: Limits) -> tuple:
    """Every rated completion, best first, as a scored ranking; chosen/rejected hold the best and the
    worst (the default pair; UltraFeedback-binarized picks a random loser instead). A completion without a
    rating (null, 'N/A', no score field) is left out; rows left with fewer than two rated completions, or
    whose ratings are all equal, are skipped and counted."""
    key = "prompt" if "prompt" in row else "instruction"
    require(row, key)
    system, turns = prompt_of(row[key], lim, key)
    best_of: dict[str, float] = {}
    for i, text, score in _uf_candidates(row):
        if score in _NO_RATING or (isinstance(score, float) and score != score):
            continue
        name = f"completions[{i}]" if "completions" in row else f"ratings[{i}]"
        value = lim.score(score, name)
        reply = lim.text(text, f"{name}.response" if "completions" in row else f"generations[{i}]")
        best_of[reply] = max(value, best_of.get(reply, value))  # the same text twice is one response
    if len(best_of) < 2:
        raise SkipRow("fewer than two rated completions")
    ranked = sorted(best_of.items(), key=lambda kv: -kv[1])
    (best, hi), (worst, lo) = ranked[0], ranked[-1]
    if hi == lo:
        raise SkipRow("all completions scored equal")
    return (system, turns, None, best, worst, hi, lo,
            {"ranked": [{"text": t, "score": v} for t, v in ranked]})


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def norm_unpaired(row: dict, lim: Limits) -> tuple:
    """TRL's unpaired preference rows (KTO): one reply and whether it is good, stored as a thumbs-up or
    thumbs-down feedback vote on that reply, which `export --kind unpaired` and `train kto` read."""
    require(row, "prompt", "completion", "label")
    system, turns = prompt_of(row["prompt"], lim)
    completion = answer_of(row["completion"], lim, "completion")
    label = row["label"]
    if isinstance(label, str) and label.strip().lower() in _TRUE + _FALSE:  # a CSV cell
        label = label.strip().lower() in _TRUE
    if not isinstance(label, bool):
        raise RowError("label", f"field 'label' must be true or false, got {excerpt(label)}", "bad label")
    return system, turns, completion, None, None, None, None, {"thumb": label}
