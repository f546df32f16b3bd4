"""What every file reader shares: a file as blocks of numbered rows (`Source`, `Block`), the size cap's
error, the check of a file's first bytes against its declared type, and the read sizes. The readers are a
module per file type (jsonl.py, delimited.py, arrow_files.py); files.py opens a path and picks one."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from workbench.errors import excerpt
from workbench.importers.rows import BadRow, ImportError_

READ_CHUNK = 1 << 20  # a .gz file inflates this much at a time
STREAM_BLOCK = 32 << 20  # a JSONL file is read, checked and stored this much at a time
PARQUET_BUFFER = 1 << 20
HEAD_BYTES = 64 << 10  # the first bytes checked against the declared type before the rest is read
NON_SPACE = re.compile(rb"\S")


@dataclass
class Block:
    """A run of consecutive rows, read and checked together: one for a file held in memory, one per chunk
    of a streamed JSONL file or per batch of a Parquet file."""

    rows: Iterator[tuple[int, dict | BadRow]]
    """Numbered rows; a line that cannot be read as a row (invalid JSON or UTF-8, not an object, too many
    CSV values) comes as a BadRow in its place, so the reader decides whether it ends the import."""
    first: int = 1
    arrow: Callable[[], pa.Table | None] = lambda: None
    """The block as one Arrow table, row i being position `first + i`, or None where that cannot be
    promised (then only the row-by-row path runs)."""


@dataclass
class Source:
    """The blocks of one input, with what to call a position in it ('line' or 'row')."""

    label: str
    unit: str
    blocks: Iterator[Block]
    file_hash: str
    size: int = 0
    read_so_far: Callable[[], int] = lambda: 0
    """Bytes of the file (as stored, compressed or not) read so far, for a progress bar."""


def hash_file(path: Path) -> str:
    if path.is_dir():
        digest = hashlib.sha256()
        for f in sorted(path.rglob("*")):
            if f.is_file():
                digest.update(str(f.relative_to(path)).encode())
                with f.open("rb") as fh:
                    digest.update(hashlib.file_digest(fh, "sha256").digest())
        return digest.hexdigest()
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def too_big(label: str, size: str, cap: int) -> ImportError_:
    return ImportError_(f"{label}: the file is {size}, above the limit of {cap:,} (max_file_bytes in "
                        "workbench.toml; raise it there for a bigger file)")


def check_head(label: str, inner: str, data: bytes | bytearray, at: int) -> None:
    """The declared type against the file's first non-blank bytes (from offset `at`), before the rest is
    read: JSON rows start with '{' or '[', CSV is text with no NUL bytes."""
    line = data.count(b"\n", 0, at) + 1
    head = bytes(data[at:at + 16])
    if head[:4] == b"PAR1":
        raise ImportError_(f"{label}: the file is a Parquet file but its name ends in {inner}; rename it to .parquet")
    if inner in (".jsonl", ".ndjson", ".json") and head[:1] not in (b"{", b"["):
        raise ImportError_(f"{label}: line {line}: invalid JSON (the file starts with {excerpt(head)}, "
                           "not an object or a list)")
    if inner in (".csv", ".tsv") and b"\0" in data[:HEAD_BYTES]:
        raise ImportError_(f"{label}: line {line}: a NUL byte: this is a binary file, not CSV text")


def whole(label: str, unit: str, rows: Iterator, file_hash: str, size: int,
           arrow: Callable[[], pa.Table | None] = lambda: None) -> Source:
    """A file read into memory at once (CSV, a JSON array, gzipped Parquet, a datasets folder): one block."""
    return Source(label, unit, iter([Block(rows, 1, arrow)]), file_hash, size, lambda: size)
