"""Import files into a project's store: parse and validate every file first, then insert them all in one
transaction, so a bad file anywhere leaves the store exactly as it was.

With on_error='skip' a file's bad rows are left out and written, each with its file, line, field and reason,
to a rejects file (JSONL) beside the store; `max_rejects` (a count, or a share such as '1%') refuses the
whole import when a file has more, since a wrong format or a broken export shows as most rows refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from workbench.config import DEFAULT_MAX_FILE_BYTES
from workbench.errors import check_text, excerpt
from workbench.importers import ImportError_, ReadResult, read_records
from workbench.store import ImportCounts, ImportItem, Store

# 1%: a public dataset's odd rows are well under it (HH-RLHF's test split: 9 of 2,312, 0.4%), while a file
# read in the wrong format, or truncated and re-joined, refuses far more; past it, say so instead of
# importing what is left. A count (--max-rejects 50) suits small files, where 1% is less than one row.
DEFAULT_MAX_REJECTS = "1%"


@dataclass
class FileReport:
    path: str
    read: ReadResult
    counts: ImportCounts
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


def import_files(store: Store, paths: list[str | Path], *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 tags: list[str] | None = None, on_error: str = "fail", max_rejects: str = DEFAULT_MAX_REJECTS,
                 rejects_dir: Path | None = None) -> list[FileReport]:
    for tag in tags or []:  # from argv, where bytes that are not UTF-8 arrive as lone surrogates
        check_text(tag, f"--tag {excerpt(tag)}", ImportError_)
    limit, share = parse_max_rejects(max_rejects)
    stamp = f"{datetime.now():%Y%m%d-%H%M%S}"
    reads: list[tuple[str, ReadResult, Path | None]] = []
    for p in paths:
        read = read_records(p, fmt=fmt, kind=kind, max_field_bytes=max_field_bytes, max_file_bytes=max_file_bytes,
                            on_error=on_error)
        rejects_file = None
        if read.rejects:
            folder = Path(rejects_dir) if rejects_dir else Path(store.path).parent / "rejects"
            rejects_file = write_rejects(read, folder / f"{Path(p).name}.{stamp}.rejects.jsonl")
            allowed = read.rows_seen * limit / 100 if share else limit
            if len(read.rejects) > allowed:
                reasons = ", ".join(f"{n:,} {why}" for why, n in list(read.reject_reasons.items())[:3])
                raise ImportError_(
                    f"{p}: {len(read.rejects):,} of {read.rows_seen:,} rows refused "
                    f"({100 * len(read.rejects) / read.rows_seen:.1f}%: {reasons}), above --max-rejects "
                    f"{max_rejects}; nothing imported. Is --format right? The refused rows are in {rejects_file}; "
                    "raise --max-rejects to import the rest")
        reads.append((str(p), read, rejects_file))
    items = [ImportItem(r.table, r.kind, str(Path(p).resolve()), r.file_hash, r.fmt) for p, r, _ in reads]
    counts = store.import_records(items, tags=tags)
    return [FileReport(p, r, c, f) for (p, r, f), c in zip(reads, counts, strict=True)]


def write_rejects(read: ReadResult, path: Path) -> Path:
    """One JSON object a line: file, line, field, reason, message and the row as it was read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for r in read.rejects:
            fh.write(orjson.dumps(r, default=str, option=orjson.OPT_APPEND_NEWLINE))
    return path
