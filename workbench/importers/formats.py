"""Row formats: each format's normalizer turns one row into one normalized record, with field checks.

Formats (auto-detected from the first row's fields, or named with --format): TRL's standard and
conversational prompt/completion, messages and preference formats (explicit or implicit prompt),
Anthropic HH-RLHF transcripts, Alpaca, ShareGPT and UltraFeedback-style scored completions. A problem
is a `RowError` naming the field; the reader adds the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from workbench.errors import WorkbenchError, excerpt

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
RECORD_SCHEMA = pa.schema([
    ("line", pa.int64()),
    ("source", pa.string()),
    ("system", pa.string()),
    ("prompt", pa.list_(MESSAGE_TYPE)),
    ("completion", pa.string()),
    ("chosen", pa.string()),
    ("rejected", pa.string()),
    ("chosen_score", pa.float64()),
    ("rejected_score", pa.float64()),
])
KINDS = ("prompts", "sft", "preferences")
ROLES = {"system", "user", "assistant", "tool"}
BATCH_ROWS = 100_000


class ImportError_(WorkbenchError):  # noqa: N801 - the builtin ImportError means something else
    """Bad input: the message names the file, the line or row, and the field."""


@dataclass
class ReadResult:
    table: pa.Table
    fmt: str
    kind: str
    file_hash: str
    skipped: dict[str, int] = field(default_factory=dict)


class RowError(Exception):
    """A problem in one row; the reader adds file and line."""

    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field_name = field_name
        self.message = message


class SkipRow(Exception):
    """A row that is valid but yields no record (an UltraFeedback row whose scores are all equal)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Limits:
    def __init__(self, max_field_bytes: int):
        self.max_field_bytes = max_field_bytes

    def text(self, value: object, name: str) -> str:
        if value is None:
            raise RowError(name, f"field '{name}' is missing (null)")
        if not isinstance(value, str):
            raise RowError(name, f"field '{name}' must be text, got {type_name(value)}")
        if not value.strip():
            raise RowError(name, f"field '{name}' is empty")
        # Four bytes per character at most: only long texts need encoding to be measured.
        if len(value) * 4 > self.max_field_bytes:
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > self.max_field_bytes:
                raise RowError(name, f"field '{name}' is {size:,} bytes, above the limit of "
                                     f"{self.max_field_bytes:,} (max_field_bytes in workbench.toml)")
        return value

    def messages(self, value: object, name: str) -> list[dict]:
        if isinstance(value, str) and value.lstrip().startswith("["):  # a JSON cell in a CSV file
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise RowError(name, f"field '{name}' is not a valid JSON list of messages: {exc}") from None
        if not isinstance(value, list | tuple):
            raise RowError(name, f"field '{name}' must be a list of messages, got {type_name(value)}")
        if not value:
            raise RowError(name, f"field '{name}' is an empty list of messages")
        out = []
        for i, msg in enumerate(value):
            where = f"{name}[{i}]"
            if not isinstance(msg, dict):
                raise RowError(name, f"field '{where}' must be a message with 'role' and 'content', "
                                     f"got {type_name(msg)}")
            role = msg.get("role")
            if role not in ROLES:
                raise RowError(name, f"field '{where}.role' must be one of {sorted(ROLES)}, got {excerpt(role)}")
            out.append({"role": role, "content": self.text(msg.get("content"), f"{where}.content")})
        return out

    def score(self, value: object, name: str) -> float:
        if isinstance(value, bool) or value is None:
            raise RowError(name, f"field '{name}' must be a number, got {type_name(value)}")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise RowError(name, f"field '{name}' must be a number, got {excerpt(value)}")


def field_names(names, most: int = 8) -> str:
    """A row's field names for a message: a few, each cut short (a CSV header line can be anything)."""
    names = sorted(str(n) for n in names)
    shown = ", ".join(excerpt(n, 40) for n in names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def type_name(value: object) -> str:
    return {type(None): "null", bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def _require(row: dict, *names: str) -> None:
    for name in names:
        if name not in row:
            raise RowError(name, f"missing field '{name}' (fields present: {field_names(row) or 'none'})")


# A normalizer takes one row and returns (system, prompt messages, completion, chosen, rejected,
# chosen score, rejected score).
Record = tuple[str | None, list[dict], str | None, str | None, str | None, float | None, float | None]


def _prompt_of(value: object, lim: Limits, name: str = "prompt") -> tuple[str | None, list[dict]]:
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return None, [{"role": "user", "content": lim.text(value, name)}]
    system, turns = _split_system(lim.messages(value, name))
    if not turns:
        raise RowError(name, f"field '{name}' holds only a system message")
    return system, turns


def _answer_of(value: object, lim: Limits, name: str) -> str:
    """A completion: a string, or a conversational list holding exactly one assistant message."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return lim.text(value, name)
    messages = lim.messages(value, name)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise RowError(name, f"field '{name}' must hold one assistant message, got roles {roles}")
    return messages[0]["content"]


def norm_prompt(row: dict, lim: Limits) -> Record:
    if "prompt" in row:
        system, turns = _prompt_of(row["prompt"], lim)
    else:
        _require(row, "messages")
        system, turns = _split_system(lim.messages(row["messages"], "messages"))
        if turns and turns[-1]["role"] == "assistant":
            turns = turns[:-1]
        if not turns:
            raise RowError("messages", "field 'messages' holds no user turn")
    system = lim.text(row["system"], "system") if row.get("system") else system
    return system, turns, None, None, None, None, None


def norm_completion(row: dict, lim: Limits) -> Record:
    _require(row, "prompt", "completion")
    system, turns = _prompt_of(row["prompt"], lim)
    return system, turns, _answer_of(row["completion"], lim, "completion"), None, None, None, None


def norm_messages(row: dict, lim: Limits) -> Record:
    _require(row, "messages")
    system, turns = _split_system(lim.messages(row["messages"], "messages"))
    if len(turns) < 2 or turns[-1]["role"] != "assistant":
        raise RowError("messages", "field 'messages' must end with an assistant turn after at least one "
                                   "user turn (the last assistant turn becomes the demonstration)")
    return system, turns[:-1], turns[-1]["content"], None, None, None, None


def _pair(chosen: str, rejected: str) -> tuple[str, str]:
    if chosen == rejected:
        raise RowError("rejected", "fields 'chosen' and 'rejected' are identical: the pair says nothing")
    return chosen, rejected


def _scores(row: dict, lim: Limits) -> tuple[float | None, float | None]:
    cs = row.get("score_chosen", row.get("chosen_score"))
    rs = row.get("score_rejected", row.get("rejected_score"))
    return (None if cs in (None, "") else lim.score(cs, "score_chosen"),
            None if rs in (None, "") else lim.score(rs, "score_rejected"))


def norm_preference(row: dict, lim: Limits) -> Record:
    _require(row, "prompt", "chosen", "rejected")
    system, turns = _prompt_of(row["prompt"], lim)
    chosen, rejected = _pair(_answer_of(row["chosen"], lim, "chosen"), _answer_of(row["rejected"], lim, "rejected"))
    return (system, turns, None, chosen, rejected, *_scores(row, lim))


def norm_implicit_preference(row: dict, lim: Limits) -> Record:
    """Chosen and rejected hold the whole exchange; the prompt is their shared prefix (as TRL's
    `extract_prompt`: shared leading messages, or for plain text the shared leading characters)."""
    _require(row, "chosen", "rejected")
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
        c, r = _pair(lim.text(chosen[idx:], "chosen"), lim.text(rejected[idx:], "rejected"))
        return None, [{"role": "user", "content": prompt}], None, c, r, *_scores(row, lim)
    cm, rm = lim.messages(chosen, "chosen"), lim.messages(rejected, "rejected")
    idx = 0
    while idx < min(len(cm), len(rm)) and cm[idx] == rm[idx]:
        idx += 1
    system, turns = _split_system(cm[:idx])
    if not turns:
        raise RowError("chosen", "fields 'chosen' and 'rejected' share no leading user turn")
    c = _answer_of(cm[idx:], lim, "chosen")
    r = _answer_of(rm[idx:], lim, "rejected")
    return (system, turns, None, *_pair(c, r), *_scores(row, lim))


_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def _hh_turns(text: object, lim: Limits, name: str) -> list[dict]:
    text = lim.text(text, name)
    parts = _HH_TURN.split("\n\n" + text.lstrip("\n") if not text.startswith("\n\n") else text)
    if parts[0].strip():
        raise RowError(name, f"field '{name}' must start with '\\n\\nHuman:' (an Anthropic HH-RLHF transcript)")
    turns = [{"role": "user" if who == "Human" else "assistant", "content": body.strip()}
             for who, body in zip(parts[1::2], parts[2::2], strict=True)]
    if not turns or turns[-1]["role"] != "assistant":
        raise RowError(name, f"field '{name}' must end with an Assistant turn")
    return turns


def norm_hh_rlhf(row: dict, lim: Limits) -> Record:
    _require(row, "chosen", "rejected")
    chosen, rejected = _hh_turns(row["chosen"], lim, "chosen"), _hh_turns(row["rejected"], lim, "rejected")
    if chosen[:-1] != rejected[:-1]:
        raise RowError("rejected", "the 'chosen' and 'rejected' transcripts differ before their last "
                                   "Assistant turn; HH-RLHF pairs share the conversation and differ in the reply")
    for i, turn in enumerate(chosen):
        if not turn["content"]:
            raise RowError("chosen", f"field 'chosen' turn {i + 1} ({turn['role']}) is empty")
    if not rejected[-1]["content"]:
        raise RowError("rejected", "field 'rejected' has an empty last Assistant turn")
    return (None, chosen[:-1], None, *_pair(chosen[-1]["content"], rejected[-1]["content"]), None, None)


def norm_alpaca(row: dict, lim: Limits) -> Record:
    _require(row, "instruction", "output")
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
    _require(row, "conversations")
    conv = row["conversations"]
    if isinstance(conv, str):
        try:
            conv = orjson.loads(conv)
        except orjson.JSONDecodeError as exc:
            raise RowError("conversations", f"field 'conversations' is not valid JSON: {exc}") from None
    if not isinstance(conv, list) or not conv:
        raise RowError("conversations", f"field 'conversations' must be a non-empty list, got {type_name(conv)}")
    turns = []
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise RowError("conversations", f"field 'conversations[{i}]' must have 'from' and 'value'")
        role = _SHAREGPT_ROLES.get(str(turn["from"]).lower())
        if role is None:
            raise RowError("conversations", f"field 'conversations[{i}].from' is {excerpt(turn['from'])}; expected "
                                            f"one of {sorted(_SHAREGPT_ROLES)}")
        turns.append({"role": role, "content": lim.text(turn["value"], f"conversations[{i}].value")})
    system, turns = _split_system(turns)
    if row.get("system"):
        system = lim.text(row["system"], "system")
    if len(turns) < 2 or turns[-1]["role"] != "assistant":
        raise RowError("conversations", "field 'conversations' must end with a gpt/assistant turn after a human turn")
    return system, turns[:-1], turns[-1]["content"], None, None, None, None


_UF_TEXT = ("response", "text", "content", "completion")
_UF_SCORE = ("overall_score", "score", "rating")


def norm_ultrafeedback(row: dict, lim: Limits) -> Record:
    """Binarize scored completions: the best-scored is chosen, the worst-scored rejected (deterministic,
    where UltraFeedback-binarized picks a random loser); rows whose scores are all equal are skipped."""
    key = "prompt" if "prompt" in row else "instruction"
    _require(row, key, "completions")
    system, turns = _prompt_of(row[key], lim, key)
    completions = row["completions"]
    if not isinstance(completions, list):
        raise RowError("completions", f"field 'completions' must be a list, got {type_name(completions)}")
    scored = []
    for i, comp in enumerate(completions):
        if not isinstance(comp, dict):
            raise RowError("completions", f"field 'completions[{i}]' must be an object")
        text_key = next((k for k in _UF_TEXT if k in comp), None)
        score_key = next((k for k in _UF_SCORE if k in comp), None)
        if text_key is None:
            raise RowError("completions", f"field 'completions[{i}]' has no text (one of {list(_UF_TEXT)})")
        if score_key is None:
            raise RowError("completions", f"field 'completions[{i}]' has no score (one of {list(_UF_SCORE)})")
        scored.append((lim.score(comp[score_key], f"completions[{i}].{score_key}"),
                       lim.text(comp[text_key], f"completions[{i}].{text_key}")))
    if len(scored) < 2:
        raise SkipRow("fewer than two completions")
    best = max(scored, key=lambda s: s[0])
    worst = min(scored, key=lambda s: s[0])
    if best[0] == worst[0] or best[1] == worst[1]:
        raise SkipRow("all completions scored equal")
    return system, turns, None, best[1], worst[1], best[0], worst[0]


@dataclass(frozen=True)
class Format:
    name: str
    kind: str
    normalize: Callable[[dict, Limits], Record]
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
           "UltraFeedback-style prompt plus scored 'completions', binarized best vs worst"),
]}


def detect_format(row: dict) -> Format:
    keys = set(row)
    if "conversations" in keys:
        return FORMATS["sharegpt"]
    if "completions" in keys and keys & {"prompt", "instruction"}:
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
                         + ". Pass --format to choose one.")


def check_kind(fmt: Format, kind: str | None, label: str) -> None:
    if kind is None or kind == fmt.kind or kind == "prompts":
        return
    raise RowError(None, f"the rows are {fmt.kind} ({fmt.name}: {fmt.description}), not {kind}; "
                         f"import them with --kind {fmt.kind}, or --kind prompts to take only their prompts")
