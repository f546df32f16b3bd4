"""Read the files people actually have and turn each row into one normalized record.

File types: JSONL, JSON (an array, or JSON lines in a .json file), CSV/TSV, Parquet, gzip of any of these,
and a folder written by `datasets`' `save_to_disk`. Formats (auto-detected from the first row's fields,
or named with --format): TRL's standard and conversational prompt/completion, messages and preference
formats (explicit or implicit prompt), Anthropic HH-RLHF transcripts, Alpaca, ShareGPT and
UltraFeedback-style scored completions.

The formats are in formats.py (public datasets' shapes in public.py, what they share in rows.py), file
types in files.py, the columnar fast path in columnar.py.
Every problem is an `ImportError_` that names the file, the line (or row) and the field. Nothing here
touches the store: `RecordStream` yields Arrow tables a block at a time, which the store inserts inside one
transaction (`read_records` gathers them into one table).
"""

from __future__ import annotations

from collections.abc import Iterator
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

__all__ = ["FORMATS", "KINDS", "ON_ERROR", "RecordStream", "RECORD_SCHEMA", "SUPPORTED", "ImportError_", "Limits", "ReadResult", "read_records"]

ON_ERROR = ("fail", "skip")


class RecordStream:
    """One file's normalized records as a stream of Arrow tables (a block of the file at a time), checked as
    they are read, so an import holds one block in memory, not the file. Iterate `tables()` to the end:
    only then are `rejects`, `skipped` and `rows_seen` whole, and only then does on_error='fail' raise for
    the bad rows it counted (the caller's transaction, rolled back, leaves the store as it was).

    on_error='fail' refuses the file at any bad row, after counting the bad rows of the whole file so the
    message says how many there are; 'skip' keeps the good rows and lists each bad one in `rejects`.
    Problems with the file as a whole (its type, a kind that does not fit) end the import either way."""

    def __init__(self, path: str | Path, *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, on_error: str = "fail"):
        if fmt is not None and fmt not in FORMATS:
            raise ImportError_(f"unknown format {excerpt(fmt)}; choose one of {', '.join(FORMATS)}")
        if kind is not None and kind not in KINDS:
            raise ImportError_(f"unknown kind {excerpt(kind)}; choose one of {', '.join(KINDS)}")
        if on_error not in ON_ERROR:
            raise ImportError_(f"unknown --on-error {excerpt(on_error)}; choose one of {', '.join(ON_ERROR)}")
        self.path = Path(path)
        self.source = open_source(self.path, max_file_bytes)
        self.file_hash = self.source.file_hash
        self.lim = Limits(max_field_bytes)
        self.format = FORMATS[fmt] if fmt else None
        self.asked_kind = kind
        self.on_error = on_error
        self.abs_source = str(self.path.resolve())
        self.skipped: dict[str, int] = {}
        self.rejects: list[dict] = []
        self.rows_seen = 0
        self.rows_good = 0

    @property
    def fmt(self) -> str:
        return (self.format or FORMATS["prompt"]).name  # no row told the format: every one was bad

    @property
    def kind(self) -> str:
        """Known once the first table is out (the format is told by the first good row)."""
        return self.asked_kind or (self.format or FORMATS["prompt"]).kind

    def tables(self) -> Iterator[pa.Table]:
        first_error: str | None = None
        bad = 0
        source = self.source
        for block in source.blocks:
            if first_error is None and (fast := columnar.fast_records(
                    block.arrow(), self.format, self.asked_kind, self.lim, self.abs_source, block.first)):
                table, self.format = fast
                self.rows_seen += table.num_rows
                self.rows_good += table.num_rows
                yield table
                continue
            columns: dict[str, list] = {name: [] for name in RECORD_SCHEMA.names}
            for n, row in block.rows:
                self.rows_seen += 1
                try:
                    if isinstance(row, BadRow):
                        raise RowError(None, row.message, row.reason)
                    if self.format is None:
                        self.format = detect_format(row)
                        try:
                            check_kind(self.format, self.asked_kind, source.label)
                        except RowError as exc:  # the whole file is of another kind: no row of it is good
                            raise ImportError_(f"{source.label}: {source.unit} {n}: {exc.message}") from None
                    record = self.format.normalize(row, self.lim)
                except RowError as exc:
                    bad += 1
                    if self.on_error == "skip":
                        self.rejects.append({"file": self.abs_source, "line": n, "field": exc.field_name,
                                             "reason": exc.reason, "message": exc.message,
                                             "row": row.raw if isinstance(row, BadRow) else row})
                    elif first_error is None:
                        fmt_note = f" [format {self.format.name}]" if self.format else ""
                        first_error = f"{source.label}: {source.unit} {n}: {exc.message}{fmt_note}"
                    continue
                except SkipRow as exc:
                    self.skipped[exc.reason] = self.skipped.get(exc.reason, 0) + 1
                    continue
                if first_error is not None:
                    continue  # refused anyway: only count the rest
                _append(columns, n, record)
                if len(columns["line"]) >= BATCH_ROWS:
                    yield self._table(columns)
                    columns = {name: [] for name in RECORD_SCHEMA.names}
            if columns["line"] and first_error is None:
                yield self._table(columns)
        if self.rows_seen == 0:
            raise ImportError_(f"{source.label}: the file is empty, there are no rows to import")
        if first_error is not None:
            seen = self.rows_seen
            if bad == seen:
                raise ImportError_(f"{first_error} (all {seen:,} rows are bad, the first shown: is the format right?)")
            raise ImportError_(f"{first_error} ({bad:,} of {seen:,} rows are bad, the first shown; --on-error skip "
                               f"imports the other {seen - bad:,} and lists the bad ones in a rejects file)")

    def _table(self, columns: dict[str, list]) -> pa.Table:
        self.rows_good += len(columns["line"])
        columns["source"] = [self.abs_source] * len(columns["line"])
        return pa.Table.from_pydict(columns, schema=RECORD_SCHEMA)

    def result(self, table: pa.Table) -> ReadResult:
        return ReadResult(table, self.fmt, self.kind, self.file_hash, self.skipped, self.rejects, self.rows_seen)


def _append(columns: dict[str, list], n: int, record: tuple) -> None:
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


def read_records(path: str | Path, *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 on_error: str = "fail") -> ReadResult:
    """A whole file's records as one table (see RecordStream), or ImportError_ naming the spot: for callers
    that want the table itself; an import streams instead."""
    stream = RecordStream(path, fmt=fmt, kind=kind, max_field_bytes=max_field_bytes,
                          max_file_bytes=max_file_bytes, on_error=on_error)
    table = pa.Table.from_batches([b for t in stream.tables() for b in t.to_batches()], schema=RECORD_SCHEMA)
    return stream.result(table)
