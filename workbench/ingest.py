"""Import files into a project's store: every file is read, checked and inserted a block at a time inside one
transaction, so a bad file anywhere leaves the store exactly as it was and memory does not grow with the file.

With on_error='skip' a file's bad rows are left out and written, each with its file, line, field and reason,
to a rejects file (JSONL) beside the store; `max_rejects` (a count, or a share such as '1%') refuses the
whole import when a file has more, since a wrong format or a broken export shows as most rows refused.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import orjson
import pyarrow as pa

from workbench.config import DEFAULT_MAX_FILE_BYTES
from workbench.errors import check_text, excerpt
from workbench.importers import RECORD_SCHEMA, ImportError_, ReadResult, RecordStream
from workbench.store import ImportCounts, Store

# 1%: a public dataset's odd rows are well under it (HH-RLHF's test split: 9 of 2,312, 0.4%), while a file
# read in the wrong format, or truncated and re-joined, refuses far more; past it, say so instead of
# importing what is left. A count (--max-rejects 50) suits small files, where 1% is less than one row.
DEFAULT_MAX_REJECTS = "1%"
T = TypeVar("T")


@dataclass
class FileReport:
    path: str
    read: ReadResult
    counts: ImportCounts | None
    rejects_file: Path | None = None

    def summary(self) -> str:
        c = self.counts
        skipped = "".join(f"; skipped {n} rows ({why})" for why, n in self.read.skipped.items())
        if not c.added_anything:
            head = (f"{self.path}: {c.rows_read} rows ({self.read.fmt}, {self.read.kind}), nothing new: "
                    f"every row is already in the store{skipped}")
        else:
            head = (f"{self.path}: {c.rows_read} rows ({self.read.fmt}, {self.read.kind}) -> added {c.prompts_added} "
                    f"prompts, {c.responses_added} responses, {c.labels_added} labels{skipped}")
        if not self.read.rejects:
            return head
        lines = [f"{head}; refused {len(self.read.rejects):,} rows, listed in {self.rejects_file}:"]
        lines += [f"  {n:,} {reason}" for reason, n in self.read.reject_reasons.items()]
        return "\n".join(lines)


def parse_max_rejects(text: str) -> tuple[float, bool]:
    """'N' (rows) or 'P%' (of a file's rows) -> (value, is_share)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", str(text))
    if not m or (not m.group(2) and "." in m.group(1)) or (m.group(2) and float(m.group(1)) > 100):
        raise ImportError_(f"--max-rejects {excerpt(str(text))}: give a number of rows (50) or a share (1%, at most 100%)")
    return float(m.group(1)), bool(m.group(2))


Progress = Callable[[str, int, int], None]  # (file, bytes read, file size) after each block


def import_files(store: Store, paths: list[str | Path], *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 tags: list[str] | None = None, on_error: str = "fail", max_rejects: str = DEFAULT_MAX_REJECTS,
                 rejects_dir: Path | None = None, progress: Progress | None = None) -> list[FileReport]:
    """Every file streams into one transaction, a block at a time: read, checked and inserted, so memory
    stays near one block. A bad row (with on_error='fail'), too many rejects or a bad file anywhere raises
    inside the transaction, which leaves the store as it was."""
    for tag in tags or []:  # from argv, where bytes that are not UTF-8 arrive as lone surrogates
        check_text(tag, f"--tag {excerpt(tag)}", ImportError_)
    limit, share = parse_max_rejects(max_rejects)
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    folder = Path(rejects_dir) if rejects_dir else Path(store.path).parent / "rejects"
    streams = [RecordStream(p, fmt=fmt, kind=kind, max_field_bytes=max_field_bytes, max_file_bytes=max_file_bytes,
                            on_error=on_error) for p in paths]
    reports: list[FileReport] = []

    def checked(p: str | Path, stream: RecordStream) -> Iterator[pa.Table]:
        # how far the file is read is taken beside each table, in the reading thread (the file is its own)
        blocks = ((t, stream.source.read_so_far()) for t in stream.tables())
        for table, done in read_ahead(blocks):
            if progress:
                progress(str(p), done, stream.source.size)
            yield table
        rejects_file = None
        if stream.rejects:
            rejects_file = write_rejects(stream.rejects, folder / f"{Path(p).name}.{stamp}.rejects.jsonl")
            result = stream.result(RECORD_SCHEMA.empty_table())
            allowed = stream.rows_seen * limit / 100 if share else limit
            if len(stream.rejects) > allowed:
                reasons = ", ".join(f"{n:,} {why}" for why, n in list(result.reject_reasons.items())[:3])
                raise ImportError_(
                    f"{p}: {len(stream.rejects):,} of {stream.rows_seen:,} rows refused "
                    f"({100 * len(stream.rejects) / stream.rows_seen:.1f}%: {reasons}), above --max-rejects "
                    f"{max_rejects}; nothing imported. Is --format right? The refused rows are in {rejects_file}; "
                    "raise --max-rejects to import the rest")
        reports.append(FileReport(str(p), stream.result(RECORD_SCHEMA.empty_table()), None, rejects_file))

    items = [_StreamItem(checked(p, st), st, str(Path(p).resolve())) for p, st in zip(paths, streams, strict=True)]
    counts = store.import_records(items, tags=tags)
    for report, c in zip(reports, counts, strict=True):
        report.counts = c
    return reports


def read_ahead(tables: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The same tables (or anything), read `depth` blocks ahead in a thread while the store stages the one before: Arrow's
    JSON reader and DuckDB both let go of the GIL, so reading and inserting overlap on two cores (a serial
    stream ran 1.45x slower than reading the whole file at once, BENCHMARKS.md). The thread's error is
    raised here, where the reader would have raised it; closing this generator (the store failed) stops it."""
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def give(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for table in tables:
                if not give((table, None)):
                    return
            give((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            give((done, exc))

    thread = threading.Thread(target=read, name="import-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handoff.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


class _StreamItem:
    """An ImportItem whose kind and format come from its stream (known once its first table is out)."""

    def __init__(self, records: Iterator[pa.Table], stream: RecordStream, path: str):
        self.records, self.stream, self.path = records, stream, path
        self.file_hash = stream.file_hash

    @property
    def kind(self) -> str:
        return self.stream.kind

    @property
    def fmt(self) -> str:
        return self.stream.fmt


def write_rejects(rejects: list[dict], path: Path) -> Path:
    """One JSON object a line: file, line, field, reason, message and the row as it was read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for r in rejects:
            fh.write(orjson.dumps(r, default=str, option=orjson.OPT_APPEND_NEWLINE))
    return path
