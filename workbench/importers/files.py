"""File types: JSONL, JSON (an array, or JSON lines in a .json file), CSV/TSV, Parquet, gzip of any of these,
and a folder written by `datasets`' `save_to_disk`, each read as numbered rows (and, where Arrow can read
the whole file at once, as a table for the columnar fast path)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa

from workbench.importers.formats import BATCH_ROWS, ImportError_, type_name


@dataclass
class Source:
    """Rows of one input, with what to call a position in it ('line' or 'row')."""

    label: str
    unit: str
    rows: Iterator[tuple[int, dict]]
    file_hash: str
    arrow: Callable[[], pa.Table | None] = lambda: None
    """The whole input as one Arrow table, row i being position i + 1, or None where that cannot be
    promised (then only the row-by-row path runs)."""


def _file_hash(path: Path) -> str:
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


SUPPORTED = ".jsonl, .ndjson, .json, .csv, .tsv, .parquet (each optionally .gz), or a datasets folder"


def open_source(path: Path) -> Source:
    label = str(path)
    if not path.exists():
        raise ImportError_(f"{label}: no such file or folder")
    if path.is_dir():
        return _datasets_source(path)
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    inner = suffixes[-2] if gz and len(suffixes) >= 2 else (suffixes[-1] if suffixes and not gz else "")
    if inner not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet"):
        raise ImportError_(f"{label}: unsupported file type {''.join(suffixes[-2:]) or '(no extension)'}; "
                           f"supported: {SUPPORTED}")
    if path.stat().st_size == 0:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    with path.open("rb") as fh:
        head = fh.read(4)
    if gz and head[:2] != b"\x1f\x8b":
        raise ImportError_(f"{label}: the name ends in .gz but the file is not gzip-compressed "
                           f"(it starts with {head!r})")
    if not gz and head[:2] == b"\x1f\x8b":
        raise ImportError_(f"{label}: the file is gzip-compressed but its name does not end in .gz; "
                           f"rename it to {path.name}.gz")
    data = gzip.decompress(path.read_bytes()) if gz else None
    file_hash = _file_hash(path)
    if inner == ".parquet":
        raw = data if data is not None else path.read_bytes()
        if raw[:4] != b"PAR1" or raw[-4:] != b"PAR1":
            raise ImportError_(f"{label}: the name says Parquet but the file is not a Parquet file "
                               f"(it starts with {raw[:12]!r})")
        return Source(label, "row", _parquet_rows(label, raw), file_hash, lambda: _parquet_table(raw))
    raw = data if data is not None else path.read_bytes()
    if not raw or raw.isspace():  # no strip(): it would copy the whole file
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    if raw[:4] == b"PAR1":
        raise ImportError_(f"{label}: the file is a Parquet file but its name ends in {inner}; rename it to .parquet")
    if inner in (".csv", ".tsv"):
        return Source(label, "line", _csv_rows(label, raw, "\t" if inner == ".tsv" else ","), file_hash)
    if inner == ".json" and raw.lstrip()[:1] == b"[":
        return Source(label, "row", _json_array_rows(label, raw), file_hash)
    return Source(label, "line", _jsonl_rows(label, raw), file_hash, lambda: _jsonl_table(raw))


def _decode_error(label: str, unit: str, n: int, exc: UnicodeDecodeError) -> ImportError_:
    return ImportError_(f"{label}: {unit} {n}: invalid UTF-8 (byte 0x{exc.object[exc.start]:02x} at "
                        f"column {exc.start + 1}); save the file as UTF-8")


def _jsonl_rows(label: str, raw: bytes) -> Iterator[tuple[int, dict]]:
    for n, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _decode_error(label, "line", n, exc) from None
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ImportError_(f"{label}: line {n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(row, dict):
            raise ImportError_(f"{label}: line {n}: expected a JSON object, got {type_name(row)}")
        yield n, row


def _json_array_rows(label: str, raw: bytes) -> Iterator[tuple[int, dict]]:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImportError_(f"{label}: line {line}: invalid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                           "save the file as UTF-8") from None
    try:
        rows = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ImportError_(f"{label}: line {exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ImportError_(f"{label}: row {n}: expected a JSON object, got {type_name(row)}")
        yield n, row


def _csv_rows(label: str, raw: bytes, delimiter: str) -> Iterator[tuple[int, dict]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ImportError_(f"{label}: line {line}: invalid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                           "save the file as UTF-8") from None
    # The size limit is enforced per field later; the csv module's own cap must not cut in first.
    csv.field_size_limit(max(csv.field_size_limit(), len(raw) + 1))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    if not reader.fieldnames:
        raise ImportError_(f"{label}: the file has no header row")
    start = 2
    try:
        for row in reader:
            if None in row:
                raise ImportError_(f"{label}: line {start}: more values than the header's "
                                   f"{len(reader.fieldnames)} columns")
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportError_(f"{label}: line {reader.line_num}: malformed CSV ({exc})") from None


def _arrow_rows(table_batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[int, dict]]:
    n = 0
    for batch in table_batches:
        for row in batch.to_pylist():
            n += 1
            yield n, {k: v for k, v in row.items() if v is not None}


def _parquet_rows(label: str, raw: bytes) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportError_(f"{label}: not a readable Parquet file ({exc})") from None
    if pf.metadata.num_rows == 0:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    return _arrow_rows(pf.iter_batches(batch_size=BATCH_ROWS))


def _datasets_source(path: Path) -> Source:
    label = str(path)
    if not ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        raise ImportError_(f"{label}: a folder must be a `datasets` save_to_disk folder "
                           "(with dataset_info.json or dataset_dict.json)")
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many types for a broken folder
        raise ImportError_(f"{label}: cannot load the datasets folder ({exc})") from None
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    if sum(len(ds) for _, ds in splits) == 0:
        raise ImportError_(f"{label}: the dataset is empty, there are no rows to import")

    def rows() -> Iterator[tuple[int, dict]]:
        # Rows are numbered across splits in order; an error names the split too (see read_records).
        offset = 0
        for _, ds in splits:
            table = ds.with_format("arrow")[:]
            for n, row in _arrow_rows(iter(table.to_batches(max_chunksize=BATCH_ROWS))):
                yield offset + n, row
            offset += len(ds)

    def table() -> pa.Table:
        return pa.concat_tables([ds.with_format("arrow")[:] for _, ds in splits], promote_options="permissive")

    split_names = [name for name, _ in splits if name]
    suffix = f" (splits {', '.join(split_names)})" if split_names else ""
    return Source(label + suffix, "row", rows(), _file_hash(path), table)


def _parquet_table(raw: bytes) -> pa.Table | None:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError):
        return None


def _jsonl_table(raw: bytes) -> pa.Table | None:
    """pyarrow's multi-threaded JSON reader, kept only when every line is exactly one row."""
    import pyarrow.json as pj

    try:
        table = pj.read_json(pa.BufferReader(raw), read_options=pj.ReadOptions(block_size=64 << 20))
        table.validate(full=True)  # the JSON reader lets invalid UTF-8 through; this catches it
    except (pa.ArrowException, OSError):
        return None
    lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)  # no rstrip: it would copy the file
    if b"\n\n" in raw or raw.startswith(b"\n") or lines != table.num_rows:
        return None
    return table
