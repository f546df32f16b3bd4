"""Import files into a project's store: parse and validate every file first, then insert them all in one
transaction, so a bad file anywhere leaves the store exactly as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.config import DEFAULT_MAX_FILE_BYTES
from workbench.errors import check_text, excerpt
from workbench.importers import ImportError_, ReadResult, read_records
from workbench.store import ImportCounts, ImportItem, Store


@dataclass
class FileReport:
    path: str
    read: ReadResult
    counts: ImportCounts

    def summary(self) -> str:
        c = self.counts
        skipped = "".join(f"; skipped {n} rows ({why})" for why, n in self.read.skipped.items())
        if not c.added_anything:
            return (f"{self.path}: {c.rows_read} rows ({self.read.fmt}, {self.read.kind}), nothing new: "
                    f"every row is already in the store{skipped}")
        return (f"{self.path}: {c.rows_read} rows ({self.read.fmt}, {self.read.kind}) -> added {c.prompts_added} "
                f"prompts, {c.responses_added} responses, {c.labels_added} labels{skipped}")


def import_files(store: Store, paths: list[str | Path], *, fmt: str | None = None, kind: str | None = None,
                 max_field_bytes: int, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 tags: list[str] | None = None) -> list[FileReport]:
    for tag in tags or []:  # from argv, where bytes that are not UTF-8 arrive as lone surrogates
        check_text(tag, f"--tag {excerpt(tag)}", ImportError_)
    reads = [(str(p), read_records(p, fmt=fmt, kind=kind, max_field_bytes=max_field_bytes,
                                   max_file_bytes=max_file_bytes)) for p in paths]
    items = [ImportItem(r.table, r.kind, str(Path(p).resolve()), r.file_hash, r.fmt) for p, r in reads]
    counts = store.import_records(items, tags=tags)
    return [FileReport(p, r, c) for (p, r), c in zip(reads, counts, strict=True)]
