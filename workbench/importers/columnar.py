"""The column-wise import path: check and normalize a whole Arrow table at once, for the common shapes.

Row-by-row parsing tops out near 80k rows/s; a million TRL rows in pyarrow's reader plus these checks runs
at 100-150k rows/s end to end (BENCHMARKS.md). Shapes handled: TRL prompt/completion, prompt/chosen/
rejected and prompt-only rows, standard (strings) or conversational (role/content message lists, with an
optional leading system message, answers as one assistant message).

The rule that keeps it honest: `fast_records` accepts only tables the row path would accept with the same
result, and returns None at any doubt (another type, a null, an empty or oversized text, a JSON-looking
string, a column the row path reads). The row path then runs and names the exact line and field of any
problem, so error messages come from one place.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from workbench.importers.formats import Format, check_kind, detect_format
from workbench.importers.rows import MESSAGE_TYPE, RECORD_SCHEMA, ROLES, Limits, RowError

FAST_FIELDS = {"trl-completion": ("prompt", "completion"), "trl-preference": ("prompt", "chosen", "rejected"),
               "prompt": ("prompt",)}
_ROW_PATH_COLUMNS = {"system", "messages", "score_chosen", "chosen_score", "score_rejected", "rejected_score"}
_MESSAGES = pa.list_(MESSAGE_TYPE)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_messages(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_struct(t.value_type):
        return False
    names = {t.value_type.field(i).name: t.value_type.field(i).type for i in range(t.value_type.num_fields)}
    return _is_text(names.get("role", pa.null())) and _is_text(names.get("content", pa.null()))


def _texts_ok(arr: pa.Array | pa.ChunkedArray, lim: Limits, *, plain: bool) -> bool:
    """No nulls, no blank text, nothing over the size limit; `plain` strings must not look like JSON
    lists (the row path would parse those as messages)."""
    if arr.null_count:
        return False
    if pc.any(pc.match_substring_regex(arr, r"^\s*$")).as_py():
        return False
    if plain and pc.any(pc.match_substring_regex(arr, r"^\s*\[")).as_py():
        return False
    return (pc.max(pc.binary_length(arr)).as_py() or 0) <= lim.max_field_bytes


def _messages(role, content, offsets: pa.Array) -> pa.Array:
    structs = pa.StructArray.from_arrays([_array(role).cast(pa.string()), _array(content).cast(pa.string())],
                                         fields=list(MESSAGE_TYPE))
    return pa.ListArray.from_arrays(offsets, structs, type=_MESSAGES)


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    # concat_arrays, not combine_chunks: 0.03 s against 0.66 s for a million strings taken out of structs.
    if isinstance(values, pa.ChunkedArray):
        return pa.concat_arrays(values.chunks) if values.num_chunks else pa.array([], values.type)
    return values


def _prompt(column: pa.ChunkedArray, lim: Limits) -> tuple[pa.Array, pa.Array] | None:
    """(system, prompt messages) for a prompt column, or None. Works chunk-wise: combining a list column
    costs more than every check here together."""
    n = len(column)
    if _is_text(column.type):
        if not _texts_ok(column, lim, plain=True):
            return None
        role = pc.if_else(pc.is_valid(column), "user", None)
        return pa.nulls(n, pa.string()), _messages(role, column, pa.array(range(n + 1), pa.int32()))
    if not _is_messages(column.type) or column.null_count:
        return None
    lengths = pc.list_value_length(column)
    if pc.min(lengths).as_py() < 1:
        return None
    flat = pc.list_flatten(column)
    role, content = pc.struct_field(flat, "role"), pc.struct_field(flat, "content")
    if role.null_count or not pc.all(pc.is_in(role, pa.array(sorted(ROLES)))).as_py():
        return None
    if not _texts_ok(content, lim, plain=False):
        return None
    # A system message is split off as the prompt's system prompt, as the row path does: only a first one.
    first = pc.list_element(column, 0)
    first_is_system = pc.equal(pc.struct_field(first, "role"), "system")
    if pc.sum(pc.equal(role, "system")).as_py() != pc.sum(first_is_system).as_py():
        return None
    if pc.any(pc.and_(first_is_system, pc.equal(lengths, 1))).as_py():
        return None  # only a system message: the row path says so
    new_lengths = pc.subtract(lengths, first_is_system.cast(pa.int32()))
    offsets = pa.concat_arrays([pa.array([0], pa.int32()),
                                _array(pc.cumulative_sum(new_lengths)).cast(pa.int32())])
    system = _array(pc.if_else(first_is_system, pc.struct_field(first, "content"), None)).cast(pa.string())
    if pc.any(first_is_system).as_py():
        starts = pc.subtract(pc.cumulative_sum(lengths), lengths)  # each row's first element in `flat`
        system_at = _array(pc.filter(starts, first_is_system)).cast(pa.int64())
        keep = pc.invert(pc.is_in(pa.array(range(len(flat)), pa.int64()), system_at))
        role, content = pc.filter(role, keep), pc.filter(content, keep)
    return system, _messages(role, content, offsets)


def _answer(column: pa.ChunkedArray, lim: Limits) -> pa.Array | None:
    """A completion as text: a plain string, or a list holding exactly one assistant message."""
    if _is_text(column.type):
        return _array(column).cast(pa.string()) if _texts_ok(column, lim, plain=True) else None
    if not _is_messages(column.type) or column.null_count:
        return None
    if not pc.all(pc.equal(pc.list_value_length(column), 1)).as_py():
        return None
    flat = pc.list_flatten(column)
    role, content = pc.struct_field(flat, "role"), pc.struct_field(flat, "content")
    if role.null_count or not pc.all(pc.equal(role, "assistant")).as_py() or not _texts_ok(content, lim, plain=False):
        return None
    return _array(content).cast(pa.string())


def fast_records(table: pa.Table | None, fmt: Format | None, kind: str | None, lim: Limits,
                 source: str, first_line: int = 1) -> tuple[pa.Table, Format] | None:
    if table is None or table.num_rows == 0 or _ROW_PATH_COLUMNS & set(table.column_names):
        return None
    if fmt is None:
        first = {k: v for k, v in table.slice(0, 1).to_pylist()[0].items() if v is not None}
        try:
            fmt = detect_format(first)
            check_kind(fmt, kind, source)
        except RowError:
            return None
    fields = FAST_FIELDS.get(fmt.name)
    if fields is None or not set(fields) <= set(table.column_names):
        return None
    try:
        prompt = _prompt(table["prompt"], lim)
        answers = {name: _answer(table[name], lim) for name in fields if name != "prompt"}
    except (pa.ArrowException, OverflowError):  # e.g. a column too big to combine: the row path copes
        return None
    if prompt is None or any(a is None for a in answers.values()):
        return None
    if "chosen" in answers and pc.any(pc.equal(answers["chosen"], answers["rejected"])).as_py():
        return None
    n = table.num_rows
    system, messages = prompt
    records = pa.table({
        "line": pa.array(range(first_line, first_line + n), pa.int64()), "source": pa.array([source] * n, pa.string()),
        "system": system, "prompt": messages,
        **{name: answers.get(name, pa.nulls(n, pa.string())) for name in ("completion", "chosen", "rejected")},
        "chosen_score": pa.nulls(n, pa.float64()), "rejected_score": pa.nulls(n, pa.float64()),
        "ranked": pa.nulls(n, RECORD_SCHEMA.field("ranked").type), "thumb": pa.nulls(n, pa.bool_()),
    }, schema=RECORD_SCHEMA)
    return records, fmt
