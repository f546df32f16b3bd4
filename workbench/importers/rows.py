"""What every row format shares: the normalized record schema, the row-level errors (each with a short
reason a rejects summary counts by), the field checks and limits, and the prompt and answer readers.

A problem is a `RowError` naming the field; the reader adds the file and line.
"""

from __future__ import annotations

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
    # Every scored completion of an UltraFeedback row, best first: stored as a ranking so every pair rule
    # reaches them (best vs worst stays the default pair).
    ("ranked", pa.list_(pa.struct([("text", pa.string()), ("score", pa.float64())]))),
    ("thumb", pa.bool_()),  # TRL unpaired rows: the label, stored as a feedback vote (true: thumbs up)
])
KINDS = ("prompts", "sft", "preferences", "unpaired")
REPLY_FIELDS = {"completion", "chosen", "rejected", "output"}
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
    rejects: list[dict] = field(default_factory=list)
    """With on_error='skip': each refused row as {file, line, field, reason, message, row}."""
    rows_seen: int = 0
    """Rows read, good or bad (blank lines not counted): the base of --max-rejects' share."""

    @property
    def reject_reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejects:
            out[r["reason"]] = out.get(r["reason"], 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


class RowError(Exception):
    """A problem in one row; the reader adds file and line. `reason` is its short kind, what a rejects
    summary counts by (the message carries the specifics)."""

    def __init__(self, field_name: str | None, message: str, reason: str = "invalid field"):
        super().__init__(message)
        self.field_name = field_name
        self.message = message
        self.reason = reason


@dataclass
class BadRow:
    """A line the file reader could not turn into a row (invalid JSON or UTF-8, not an object): yielded in
    its place so one broken line can be skipped, or counted, like any other bad row."""

    reason: str
    message: str
    raw: str


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
            raise RowError(name, f"field '{name}' is missing (null)", "missing field")
        if not isinstance(value, str):
            raise RowError(name, f"field '{name}' must be text, got {type_name(value)}", "wrong type")
        if not value.strip():
            # A pair or a demonstration cannot teach with an empty side: its own reason in a rejects summary.
            reason = "empty reply" if name.split("[")[0] in REPLY_FIELDS else "empty text"
            raise RowError(name, f"field '{name}' is empty", reason)
        # Four bytes per character at most: only long texts need encoding to be measured.
        if len(value) * 4 > self.max_field_bytes:
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > self.max_field_bytes:
                raise RowError(name, f"field '{name}' is {size:,} bytes, above the limit of "
                                     f"{self.max_field_bytes:,} (max_field_bytes in workbench.toml)", "text too large")
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
                raise RowError(name, f"field '{where}.role' must be one of {sorted(ROLES)}, got {excerpt(role)}",
                               "unknown role")
            out.append({"role": role, "content": self.text(msg.get("content"), f"{where}.content")})
        return out

    def score(self, value: object, name: str) -> float:
        if isinstance(value, bool) or value is None:
            raise RowError(name, f"field '{name}' must be a number, got {type_name(value)}", "bad score")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise RowError(name, f"field '{name}' must be a number, got {excerpt(value)}", "bad score")


def field_names(names, most: int = 8) -> str:
    """A row's field names for a message: a few, each cut short (a CSV header line can be anything)."""
    names = sorted(str(n) for n in names)
    shown = ", ".join(excerpt(n, 40) for n in names[:most])
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def type_name(value: object) -> str:
    return {type(None): "null", bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def split_system(messages: list[dict]) -> tuple[str | None, list[dict]]:
    if messages and messages[0]["role"] == "system":
        return messages[0]["content"], messages[1:]
    return None, messages


def require(row: dict, *names: str) -> None:
    for name in names:
        if name not in row:
            raise RowError(name, f"missing field '{name}' (fields present: {field_names(row) or 'none'})",
                           "missing field")


# A normalizer takes one row and returns (system, prompt messages, completion, chosen, rejected,
# chosen score, rejected score), and optionally an 8th item: a dict of the extra columns ("ranked", "thumb").
Record = tuple[str | None, list[dict], str | None, str | None, str | None, float | None, float | None]


def prompt_of(value: object, lim: Limits, name: str = "prompt") -> tuple[str | None, list[dict]]:
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return None, [{"role": "user", "content": lim.text(value, name)}]
    system, turns = split_system(lim.messages(value, name))
    if not turns:
        raise RowError(name, f"field '{name}' holds only a system message")
    return system, turns


def answer_of(value: object, lim: Limits, name: str) -> str:
    """A completion: a string, or a conversational list holding exactly one assistant message."""
    if isinstance(value, str) and not value.lstrip().startswith("["):
        return lim.text(value, name)
    messages = lim.messages(value, name)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        roles = [m["role"] for m in messages]
        raise RowError(name, f"field '{name}' must hold one assistant message, got roles {roles}")
    return messages[0]["content"]


def distinct_pair(chosen: str, rejected: str) -> tuple[str, str]:
    if chosen == rejected:
        raise RowError("rejected", "fields 'chosen' and 'rejected' are identical: the pair says nothing",
                       "identical chosen and rejected")
    return chosen, rejected


def row_scores(row: dict, lim: Limits) -> tuple[float | None, float | None]:
    cs = row.get("score_chosen", row.get("chosen_score"))
    rs = row.get("score_rejected", row.get("rejected_score"))
    return (None if cs in (None, "") else lim.score(cs, "score_chosen"),
            None if rs in (None, "") else lim.score(rs, "score_rejected"))
