"""Read the files people actually have and turn each row into one normalized record.

File types: JSONL, JSON (an array, or JSON lines in a .json file), CSV/TSV, Parquet, gzip of any of these,
and a folder written by `datasets`' `save_to_disk`. Formats (auto-detected from the first row's fields,
or named with --format): TRL's standard and conversational prompt/completion, messages and preference
formats (explicit or implicit prompt), Anthropic HH-RLHF transcripts, Alpaca, ShareGPT and
UltraFeedback-style scored completions.

The formats are in formats.py (public datasets' shapes in public.py, what they share in rows.py), file
types in files.py, the columnar fast path in columnar.py.
Every problem is an `ImportError_` that names the file, the line (or row) and the field. Nothing here
touches the store: `read_records` returns an Arrow table the store inserts in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from workbench.config import DEFAULT_MAX_FILE_BYTES
from workbench.errors import excerpt
from workbench.importers import columnar
from workbench.importers.files import SUPPORTED, open_source
from workbench.importers.formats import FORMATS, check_kind, detect_format
from workbench.importers.rows import (
    BATCH_ROWS,
    KINDS,
    RECORD_SCHEMA,
    BadRow,
    ImportError_,
    Limits,
    ReadResult,
    RowError,
    SkipRow,
)

__all__ = ["FORMATS", "KINDS", "ON_ERROR", "RECORD_SCHEMA", "SUPPORTED", "ImportError_", "Limits", "ReadResult", "read_records"]

ON_ERROR = ("fail", "skip")


def read_records(path: str | Path, *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 on_error: str = "fail") -> ReadResult:
    """Parse and validate a whole file into normalized records, or raise ImportError_ naming the spot.
    `max_file_bytes` caps what is read (after gzip decompression), `max_field_bytes` each text field.

    on_error='fail' refuses the file at any bad row, after counting the bad rows in the whole file so the
    message says how many there are; 'skip' keeps the good rows and returns each bad one in `rejects`.
    Problems with the file as a whole (its type, its encoding as a whole, a kind that does not fit) end
    the import either way."""
    if fmt is not None and fmt not in FORMATS:
        raise ImportError_(f"unknown format {excerpt(fmt)}; choose one of {', '.join(FORMATS)}")
    if kind is not None and kind not in KINDS:
        raise ImportError_(f"unknown kind {excerpt(kind)}; choose one of {', '.join(KINDS)}")
    if on_error not in ON_ERROR:
        raise ImportError_(f"unknown --on-error {excerpt(on_error)}; choose one of {', '.join(ON_ERROR)}")
    path = Path(path)
    source = open_source(path, max_file_bytes)
    lim = Limits(max_field_bytes)
    chosen_format = FORMATS[fmt] if fmt else None
    abs_source = str(path.resolve())
    fast = columnar.fast_records(source.arrow(), chosen_format, kind, lim, abs_source)
    if fast is not None:
        table, chosen_format = fast
        return ReadResult(table, chosen_format.name, kind or chosen_format.kind, source.file_hash,
                          rows_seen=table.num_rows)
    columns: dict[str, list] = {name: [] for name in RECORD_SCHEMA.names}
    skipped: dict[str, int] = {}
    rejects: list[dict] = []
    first_error: str | None = None
    bad = seen = 0
    batches: list[pa.RecordBatch] = []
    for n, row in source.rows:
        seen += 1
        try:
            if isinstance(row, BadRow):
                raise RowError(None, row.message, row.reason)
            if chosen_format is None:
                chosen_format = detect_format(row)
                try:
                    check_kind(chosen_format, kind, source.label)
                except RowError as exc:  # the whole file is of another kind: no row of it is good
                    raise ImportError_(f"{source.label}: {source.unit} {n}: {exc.message}") from None
            record = chosen_format.normalize(row, lim)
        except RowError as exc:
            bad += 1
            if on_error == "skip":
                rejects.append({"file": abs_source, "line": n, "field": exc.field_name, "reason": exc.reason,
                                "message": exc.message, "row": row.raw if isinstance(row, BadRow) else row})
            elif first_error is None:
                fmt_note = f" [format {chosen_format.name}]" if chosen_format else ""
                first_error = f"{source.label}: {source.unit} {n}: {exc.message}{fmt_note}"
            continue
        except SkipRow as exc:
            skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
            continue
        if first_error is not None:
            continue  # refused anyway: only count the rest
        system, prompt, completion, chosen, rejected, cs, rs = record[:7]
        extra = record[7] if len(record) > 7 else {}
        columns["line"].append(n)
        columns["system"].append(system)
        columns["prompt"].append(prompt)
        columns["completion"].append(completion)
        columns["chosen"].append(chosen)
        columns["rejected"].append(rejected)
        columns["chosen_score"].append(cs)
        columns["rejected_score"].append(rs)
        columns["ranked"].append(extra.get("ranked"))
        columns["thumb"].append(extra.get("thumb"))
        if len(columns["line"]) >= BATCH_ROWS:
            batches.append(_to_batch(columns, abs_source))
            columns = {name: [] for name in RECORD_SCHEMA.names}
    if seen == 0:
        raise ImportError_(f"{source.label}: the file holds no rows to import")
    if first_error is not None:
        if bad == seen:
            raise ImportError_(f"{first_error} (all {seen:,} rows are bad, the first shown: is the format right?)")
        raise ImportError_(f"{first_error} ({bad:,} of {seen:,} rows are bad, the first shown; --on-error skip "
                           f"imports the other {seen - bad:,} and lists the bad ones in a rejects file)")
    if columns["line"]:
        batches.append(_to_batch(columns, abs_source))
    if chosen_format is None:  # every row was bad: nothing told the format
        chosen_format = FORMATS[fmt] if fmt else FORMATS["prompt"]
    effective_kind = kind or chosen_format.kind
    table = pa.Table.from_batches(batches, schema=RECORD_SCHEMA)
    return ReadResult(table, chosen_format.name, effective_kind, source.file_hash, skipped, rejects, seen)


def _to_batch(columns: dict[str, list], source: str) -> pa.RecordBatch:
    columns["source"] = [source] * len(columns["line"])
    return pa.RecordBatch.from_pydict(columns, schema=RECORD_SCHEMA)
