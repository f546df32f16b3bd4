"""File types: JSONL, JSON (an array, or JSON lines in a .json file), CSV/TSV, Parquet, gzip of any of these,
and a folder written by `datasets`' `save_to_disk`, each read as numbered rows (and, where Arrow can read
the whole file at once, as a table for the columnar fast path).

JSONL, CSV/TSV and Parquet stream from disk; the other types are held in memory while they are read. Either
way a file is refused above `max_file_bytes` (workbench.toml), and a .gz file inflates chunk by chunk and stops
at that cap: a gzip bomb costs at most the cap, never its
inflated size. Its first bytes are checked against the declared type before the rest is read, so a bomb of
zeros or a binary file stops after one chunk. A symlink is followed only into its own folder, the current
folder or the Hugging Face cache: a link in a downloaded dataset to /etc/shadow is refused by name, and
no error quotes more than a short escaped excerpt of what a file holds.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from pathlib import Path

from workbench.errors import excerpt
from workbench.importers.arrow_files import datasets_source, parquet_rows, parquet_stream, parquet_table
from workbench.importers.delimited import csv_stream
from workbench.importers.jsonl import json_array_rows, jsonl_rows, jsonl_stream, jsonl_table
from workbench.importers.rows import ImportError_
from workbench.importers.source import (
    HEAD_BYTES,
    NON_SPACE,
    READ_CHUNK,
    Source,
    check_head,
    hash_file,
    too_big,
    whole,
)

SUPPORTED = ".jsonl, .ndjson, .json, .csv, .tsv, .parquet (each optionally .gz), or a datasets folder"


def _link_allowed(path: Path) -> list[Path]:
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    roots = [path.absolute().parent.resolve(), Path.cwd().resolve(), hf_home.resolve()]
    if os.environ.get("HF_HUB_CACHE"):
        roots.append(Path(os.environ["HF_HUB_CACHE"]).resolve())
    return roots


def check_link(path: Path, label: str) -> None:
    """Follow a symlink only where it stays near home: into its own folder (or below), the current folder,
    or the Hugging Face cache (whose snapshots are links into its blobs). A link a downloaded dataset carries
    to a system file is refused by name, so nothing of that file is read, let alone quoted."""
    if not path.is_symlink():
        return
    target = path.resolve()
    if not any(target.is_relative_to(root) for root in _link_allowed(path)):
        raise ImportError_(f"{label} is a symlink to {target}, outside its own folder and the current one: "
                           f"the import does not follow it; name {target} itself if you mean that file")


def _read(path: Path, label: str, inner: str, gz: bool, cap: int) -> bytearray:
    """The file's bytes (inflated for .gz), refused above `cap` and at a first chunk that cannot be the
    declared type. Read into one bytearray, never copied whole again."""
    if not gz:
        size = path.stat().st_size
        if size > cap:
            raise too_big(label, f"{size:,} bytes", cap)
        out = bytearray(size)
        with path.open("rb") as fh, memoryview(out) as view:
            got = fh.readinto(view[:HEAD_BYTES])
            if inner != ".parquet" and (m := NON_SPACE.search(out, 0, got)):
                check_head(label, inner, out, m.start())
            while got < size and (more := fh.readinto(view[got:])):
                got += more
        del out[got:]  # the file shrank while it was read
        return out
    out = bytearray()
    checked = False
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                if len(out) + len(chunk) > cap:
                    raise too_big(label, f"more than {cap:,} bytes once decompressed", cap)
                start = len(out)
                out += chunk
                if inner == ".parquet":
                    if not checked and len(out) >= 4 and out[:4] != b"PAR1":
                        raise ImportError_(f"{label}: the name says Parquet but the file is not a Parquet file "
                                           f"(it starts with {excerpt(bytes(out[:12]))})")
                    checked = len(out) >= 4
                elif not checked and (m := NON_SPACE.search(chunk)):
                    check_head(label, inner, out, start + m.start())
                    checked = True
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ImportError_(f"{label}: not a valid gzip file ({exc})") from None
    return out


def open_source(path: Path, max_file_bytes: int) -> Source:
    label = str(path)
    check_link(path, label)
    if not path.exists():
        raise ImportError_(f"{label}: no such file or folder")
    if path.is_dir():
        return datasets_source(path)
    if not stat.S_ISREG(path.stat().st_mode):
        raise ImportError_(f"{label}: not a regular file (a device, pipe or socket); import a file")
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    inner = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes and not gz else "")
    if inner not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"):
        kind = excerpt("".join(suffixes[-2:]), 20) if suffixes else "(no extension)"
        raise ImportError_(f"{label}: unsupported file type {kind}; supported: {SUPPORTED}")
    if path.stat().st_size == 0:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise ImportError_(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    if gz and head[:2] != b"\x1f\x8b":
        raise ImportError_(f"{label}: the name ends in .gz but the file is not gzip-compressed "
                           f"(it starts with {head!r})")
    if not gz and head[:2] == b"\x1f\x8b":
        raise ImportError_(f"{label}: the file is gzip-compressed but its name does not end in .gz; "
                           f"rename it to {path.name}.gz")
    try:
        file_hash = hash_file(path)
        if inner in (".jsonl", ".ndjson"):
            return jsonl_stream(path, label, inner, gz, max_file_bytes, file_hash)
        if inner == ".parquet" and not gz:
            return parquet_stream(path, label, max_file_bytes, file_hash)
        if inner in (".csv", ".tsv"):
            return csv_stream(path, label, inner, gz, max_file_bytes, file_hash)
        raw = _read(path, label, inner, gz, max_file_bytes)
    except OSError as exc:
        raise ImportError_(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    size = path.stat().st_size
    if inner == ".parquet":
        if raw[:4] != b"PAR1" or raw[-4:] != b"PAR1":
            raise ImportError_(f"{label}: the name says Parquet but the file is not a Parquet file "
                               f"(it starts with {excerpt(bytes(raw[:12]))})")
        return whole(label, "row", parquet_rows(label, raw), file_hash, size, lambda: parquet_table(raw))
    first = NON_SPACE.search(raw)  # not strip(): it would copy the whole file
    if first is None:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    if raw[:4] == b"PAR1":
        raise ImportError_(f"{label}: the file is a Parquet file but its name ends in {inner}; rename it to .parquet")
    if raw[first.start():first.start() + 1] == b"[":
        return whole(label, "row", json_array_rows(label, raw), file_hash, size)
    return whole(label, "line", jsonl_rows(label, raw), file_hash, size, lambda: jsonl_table(raw))
