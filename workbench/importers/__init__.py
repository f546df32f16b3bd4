"""Read the files people actually have and turn each row into one normalized record.

File types: JSONL, JSON (an array, or JSON lines in a .json file), CSV/TSV, Parquet, gzip of any of these,
and a folder written by `datasets`' `save_to_disk`. Formats (auto-detected from the first row's fields,
or named with --format): TRL's standard and conversational prompt/completion, messages and preference
formats (explicit or implicit prompt), Anthropic HH-RLHF transcripts, Alpaca, ShareGPT and
UltraFeedback-style scored completions.

The formats are in formats.py, file types in files.py, the columnar fast path in columnar.py.
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
from workbench.importers.formats import (
    BATCH_ROWS,
    FORMATS,
    KINDS,
    RECORD_SCHEMA,
    ImportError_,
    Limits,
    ReadResult,
    RowError,
    SkipRow,
    check_kind,
    detect_format,
)

__all__ = ["FORMATS", "KINDS", "RECORD_SCHEMA", "SUPPORTED", "ImportError_", "Limits", "ReadResult", "read_records"]

def read_records(path: str | Path, *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> ReadResult:
    """Parse and validate a whole file into normalized records, or raise ImportError_ naming the spot.
    `max_file_bytes` caps what is read (after gzip decompression), `max_field_bytes` each text field."""
    if fmt is not None and fmt not in FORMATS:
        raise ImportError_(f"unknown format {excerpt(fmt)}; choose one of {', '.join(FORMATS)}")
    if kind is not None and kind not in KINDS:
        raise ImportError_(f"unknown kind {excerpt(kind)}; choose one of {', '.join(KINDS)}")
    path = Path(path)
    source = open_source(path, max_file_bytes)
    lim = Limits(max_field_bytes)
    chosen_format = FORMATS[fmt] if fmt else None
    abs_source = str(path.resolve())
    fast = columnar.fast_records(source.arrow(), chosen_format, kind, lim, abs_source)
    if fast is not None:
        table, chosen_format = fast
        return ReadResult(table, chosen_format.name, kind or chosen_format.kind, source.file_hash)
    columns: dict[str, list] = {name: [] for name in RECORD_SCHEMA.names}
    skipped: dict[str, int] = {}
    batches: list[pa.RecordBatch] = []
    n = 0
    for n, row in source.rows:
        try:
            if chosen_format is None:
                chosen_format = detect_format(row)
                check_kind(chosen_format, kind, source.label)
            record = chosen_format.normalize(row, lim)
        except RowError as exc:
            where = f"{source.label}: {source.unit} {n}"
            fmt_note = f" [format {chosen_format.name}]" if chosen_format else ""
            raise ImportError_(f"{where}: {exc.message}{fmt_note}") from None
        except SkipRow as exc:
            skipped[exc.reason] = skipped.get(exc.reason, 0) + 1
            continue
        system, prompt, completion, chosen, rejected, cs, rs = record
        columns["line"].append(n)
        columns["system"].append(system)
        columns["prompt"].append(prompt)
        columns["completion"].append(completion)
        columns["chosen"].append(chosen)
        columns["rejected"].append(rejected)
        columns["chosen_score"].append(cs)
        columns["rejected_score"].append(rs)
        if len(columns["line"]) >= BATCH_ROWS:
            batches.append(_to_batch(columns, abs_source))
            columns = {name: [] for name in RECORD_SCHEMA.names}
    if n == 0:
        raise ImportError_(f"{source.label}: the file holds no rows to import")
    if columns["line"]:
        batches.append(_to_batch(columns, abs_source))
    assert chosen_format is not None
    effective_kind = kind or chosen_format.kind
    table = pa.Table.from_batches(batches, schema=RECORD_SCHEMA)
    return ReadResult(table, chosen_format.name, effective_kind, source.file_hash, skipped)


def _to_batch(columns: dict[str, list], source: str) -> pa.RecordBatch:
    columns["source"] = [source] * len(columns["line"])
    return pa.RecordBatch.from_pydict(columns, schema=RECORD_SCHEMA)
