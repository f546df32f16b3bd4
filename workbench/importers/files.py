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

import csv
import gzip
import hashlib
import io
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa

from workbench.errors import excerpt
from workbench.importers.rows import BATCH_ROWS, BadRow, ImportError_, type_name

READ_CHUNK = 1 << 20  # a .gz file inflates this much at a time
STREAM_BLOCK = 32 << 20  # a JSONL file is read, checked and stored this much at a time
PARQUET_BUFFER = 1 << 20
HEAD_BYTES = 64 << 10  # the first bytes checked against the declared type before the rest is read
_NON_SPACE = re.compile(rb"\S")


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


def _too_big(label: str, size: str, cap: int) -> ImportError_:
    return ImportError_(f"{label}: the file is {size}, above the limit of {cap:,} (max_file_bytes in "
                        "workbench.toml; raise it there for a bigger file)")


def _check_head(label: str, inner: str, data: bytes | bytearray, at: int) -> None:
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


def _read(path: Path, label: str, inner: str, gz: bool, cap: int) -> bytearray:
    """The file's bytes (inflated for .gz), refused above `cap` and at a first chunk that cannot be the
    declared type. Read into one bytearray, never copied whole again."""
    if not gz:
        size = path.stat().st_size
        if size > cap:
            raise _too_big(label, f"{size:,} bytes", cap)
        out = bytearray(size)
        with path.open("rb") as fh, memoryview(out) as view:
            got = fh.readinto(view[:HEAD_BYTES])
            if inner != ".parquet" and (m := _NON_SPACE.search(out, 0, got)):
                _check_head(label, inner, out, m.start())
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
                    raise _too_big(label, f"more than {cap:,} bytes once decompressed", cap)
                start = len(out)
                out += chunk
                if inner == ".parquet":
                    if not checked and len(out) >= 4 and out[:4] != b"PAR1":
                        raise ImportError_(f"{label}: the name says Parquet but the file is not a Parquet file "
                                           f"(it starts with {excerpt(bytes(out[:12]))})")
                    checked = len(out) >= 4
                elif not checked and (m := _NON_SPACE.search(chunk)):
                    _check_head(label, inner, out, start + m.start())
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
        return _datasets_source(path)
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
        file_hash = _file_hash(path)
        if inner in (".jsonl", ".ndjson"):
            return _jsonl_stream(path, label, inner, gz, max_file_bytes, file_hash)
        if inner == ".parquet" and not gz:
            return _parquet_stream(path, label, max_file_bytes, file_hash)
        if inner in (".csv", ".tsv"):
            return _csv_stream(path, label, inner, gz, max_file_bytes, file_hash)
        raw = _read(path, label, inner, gz, max_file_bytes)
    except OSError as exc:
        raise ImportError_(f"{label}: cannot read the file ({exc.strerror or exc})") from None
    size = path.stat().st_size
    if inner == ".parquet":
        if raw[:4] != b"PAR1" or raw[-4:] != b"PAR1":
            raise ImportError_(f"{label}: the name says Parquet but the file is not a Parquet file "
                               f"(it starts with {excerpt(bytes(raw[:12]))})")
        return _whole(label, "row", _parquet_rows(label, raw), file_hash, size, lambda: _parquet_table(raw))
    first = _NON_SPACE.search(raw)  # not strip(): it would copy the whole file
    if first is None:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    if raw[:4] == b"PAR1":
        raise ImportError_(f"{label}: the file is a Parquet file but its name ends in {inner}; rename it to .parquet")
    if raw[first.start():first.start() + 1] == b"[":
        return _whole(label, "row", _json_array_rows(label, raw), file_hash, size)
    return _whole(label, "line", _jsonl_rows(label, raw), file_hash, size, lambda: _jsonl_table(raw))


def _whole(label: str, unit: str, rows: Iterator, file_hash: str, size: int,
           arrow: Callable[[], pa.Table | None] = lambda: None) -> Source:
    """A file read into memory at once (CSV, a JSON array, gzipped Parquet, a datasets folder): one block."""
    return Source(label, unit, iter([Block(rows, 1, arrow)]), file_hash, size, lambda: size)


def _jsonl_stream(path: Path, label: str, inner: str, gz: bool, cap: int, file_hash: str) -> Source:
    """JSONL read STREAM_BLOCK bytes at a time (inflated chunk by chunk for .gz), cut at the last newline, so
    memory stays near one block however long the file. The first bytes are checked against the type before
    any more is read, and a .gz file stops at `cap` inflated bytes, as a file read whole does."""
    size = path.stat().st_size
    if not gz and size > cap:
        raise _too_big(label, f"{size:,} bytes", cap)
    raw_fh = path.open("rb")
    fh = gzip.GzipFile(fileobj=raw_fh, mode="rb") if gz else raw_fh

    total, checked = 0, False

    def read() -> bytes:
        """Up to STREAM_BLOCK bytes, READ_CHUNK at a time: a .gz file stops at the cap, and the first bytes
        are checked against the declared type before more is read (a bomb of zeros stops at one chunk)."""
        nonlocal total, checked
        out = bytearray()
        try:
            while len(out) < STREAM_BLOCK and (piece := fh.read(min(READ_CHUNK, STREAM_BLOCK - len(out)))):
                total += len(piece)
                if gz and total > cap:
                    raise _too_big(label, f"more than {cap:,} bytes once decompressed", cap)
                start = len(out)
                out += piece
                if not checked and (m := _NON_SPACE.search(piece)):
                    _check_head(label, inner, out, start + m.start())
                    checked = True
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ImportError_(f"{label}: not a valid gzip file ({exc})") from None
        except OSError as exc:
            raise ImportError_(f"{label}: cannot read the file ({exc.strerror or exc})") from None
        return bytes(out)

    def blocks() -> Iterator[Block]:
        line, carry, seen = 1, b"", False
        try:
            while True:
                chunk = read()
                data = carry + chunk if carry else chunk
                if chunk:
                    cut = data.rfind(b"\n") + 1
                    block, carry = data[:cut], data[cut:]
                else:
                    block, carry = data, b""
                if block:
                    seen = seen or checked
                    yield Block(_jsonl_rows(label, block, line - 1), line, lambda b=block: _jsonl_table(b))
                    line += block.count(b"\n")
                if not chunk:
                    break
            if not seen:
                raise ImportError_(f"{label}: the file is empty, there are no rows to import")
        finally:
            fh.close()
            raw_fh.close()

    return Source(label, "line", blocks(), file_hash, size, raw_fh.tell)


def _parquet_stream(path: Path, label: str, cap: int, file_hash: str) -> Source:
    """A Parquet file read a batch at a time from disk (the footer first), never whole."""
    import pyarrow.parquet as pq

    size = path.stat().st_size
    if size > cap:
        raise _too_big(label, f"{size:,} bytes", cap)
    with path.open("rb") as fh:
        head = fh.read(12)
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    if head[:4] != b"PAR1" or tail != b"PAR1":
        raise ImportError_(f"{label}: the name says Parquet but the file is not a Parquet file "
                           f"(it starts with {excerpt(head)})")
    try:  # read a column chunk 1 MiB at a time, not a whole row group at once (one group of 1M rows: +150 MiB)
        pf = pq.ParquetFile(path, buffer_size=PARQUET_BUFFER, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportError_(f"{label}: not a readable Parquet file ({exc})") from None
    if pf.metadata.num_rows == 0:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    done = [0]

    def blocks() -> Iterator[Block]:
        first = 1
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            done[0] = min(size, done[0] + size * batch.num_rows // max(1, pf.metadata.num_rows))
            yield Block(_arrow_rows(label, iter([batch]), first - 1), first,
                        lambda b=batch: _valid(pa.Table.from_batches([b])))
            first += batch.num_rows

    return Source(label, "row", blocks(), file_hash, size, lambda: done[0])


def _utf8_tail(exc: UnicodeDecodeError) -> str:
    return f"invalid UTF-8 (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8"


def _jsonl_rows(label: str, raw: bytes | bytearray, before: int = 0) -> Iterator[tuple[int, dict | BadRow]]:
    """The rows of `raw`, numbered from `before + 1`."""
    # Lines as views into the file, not split() copies: a file is in memory once, however long its lines.
    view, begin, n, size = memoryview(raw), 0, before, len(raw)
    while begin <= size:
        end = raw.find(b"\n", begin)
        end = size if end < 0 else end
        n, first, begin = n + 1, begin, end + 1
        if not _NON_SPACE.search(raw, first, end):
            continue
        line = view[first:end]
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            text = str(line, "utf-8", "replace")
            try:  # orjson checks UTF-8 too; decode only a failed line, to say which byte
                str(line, "utf-8")
            except UnicodeDecodeError as bad:
                yield n, BadRow("invalid UTF-8", _utf8_tail(bad), text)
                continue
            yield n, BadRow("invalid JSON", f"invalid JSON ({exc.msg} at column {exc.colno})", text)
            continue
        if not isinstance(row, dict):
            yield n, BadRow("not an object", f"expected a JSON object, got {type_name(row)}", str(line, "utf-8"))
            continue
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


class _CappedFile(io.RawIOBase):
    """A file's bytes as a stream (inflated for .gz): refused past `cap` inflated bytes, and at first bytes that
    cannot be the declared type (checked before more than HEAD_BYTES is read), as a file read whole is."""

    def __init__(self, path: Path, label: str, inner: str, gz: bool, cap: int):
        self.raw_fh = path.open("rb")
        self.fh = gzip.GzipFile(fileobj=self.raw_fh, mode="rb") if gz else self.raw_fh
        self.label, self.inner, self.gz, self.cap = label, inner, gz, cap
        self.total, self.head, self.checked = 0, bytearray(), False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self.fh.readinto(buffer)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise ImportError_(f"{self.label}: not a valid gzip file ({exc})") from None
        self.total += n
        if self.gz and self.total > self.cap:
            raise _too_big(self.label, f"more than {self.cap:,} bytes once decompressed", self.cap)
        if not self.checked:
            self.head += bytes(memoryview(buffer)[:min(n, HEAD_BYTES)])
            if n == 0 or len(self.head) >= HEAD_BYTES:
                self.checked = True
                if m := _NON_SPACE.search(self.head):
                    _check_head(self.label, self.inner, self.head, m.start())
        return n

    def close(self) -> None:
        self.fh.close()
        self.raw_fh.close()
        super().close()


_LONE_BYTE = re.compile("[\udc80-\udcff]")


def _lone_byte(row: dict) -> int | None:
    """The first byte of a field that was not UTF-8 (read with surrogateescape: byte 0xNN is U+DCNN)."""
    for value in row.values():  # a regex scans in C: a loop over characters cost 13 s per 1M rows
        if isinstance(value, str) and (m := _LONE_BYTE.search(value)):
            return ord(m.group()) - 0xDC00
    return None


def _printable(values) -> str:
    """A CSV row's values as the rejects file can hold them (bytes that were not UTF-8 replaced)."""
    return ",".join(str(v).encode("utf-8", "surrogateescape").decode("utf-8", "replace") for v in values)


def _csv_stream(path: Path, label: str, inner: str, gz: bool, cap: int, file_hash: str) -> Source:
    """CSV/TSV read from disk as it is parsed (the csv module over a text stream), never whole: a quoted field
    may hold newlines, so the file cannot be cut into byte blocks as JSONL is; the rows stream instead, and the
    reader batches them. A row with bytes that are not UTF-8 is a bad row of its own (skippable, named by line)."""
    size = path.stat().st_size
    if not gz and size > cap:
        raise _too_big(label, f"{size:,} bytes", cap)
    capped = _CappedFile(path, label, inner, gz, cap)
    text = io.TextIOWrapper(io.BufferedReader(capped, READ_CHUNK), encoding="utf-8-sig", errors="surrogateescape",
                            newline="")
    delimiter = "\t" if inner == ".tsv" else ","

    def rows() -> Iterator[tuple[int, dict | BadRow]]:
        # The size limit is enforced per field later; the csv module's own cap must not cut in first.
        csv.field_size_limit(max(csv.field_size_limit(), cap + 1))
        reader = csv.DictReader(text, delimiter=delimiter, strict=True)
        try:
            if not reader.fieldnames:
                raise ImportError_(f"{label}: the file has no header row")
            if (byte := _lone_byte(dict(enumerate(reader.fieldnames)))) is not None:
                raise ImportError_(f"{label}: line 1: invalid UTF-8 in the header (byte 0x{byte:02x}); "
                                   "save the file as UTF-8")
            start = 2
            for row in reader:
                if None in row:
                    yield start, BadRow("too many CSV values", f"more values than the header's "
                                        f"{len(reader.fieldnames)} columns", _printable(row.values()))
                elif (byte := _lone_byte(row)) is not None:
                    yield start, BadRow("invalid UTF-8", f"invalid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8",
                                        _printable(row.values()))
                else:
                    yield start, row
                start = reader.line_num + 1
        except csv.Error as exc:
            raise ImportError_(f"{label}: line {reader.line_num}: malformed CSV ({exc})") from None
        finally:
            text.close()

    return Source(label, "line", iter([Block(rows(), 1, lambda: None)]), file_hash, size,
                  lambda: size if capped.raw_fh.closed else capped.raw_fh.tell())


def _bad_utf8(label: str, batch: pa.RecordBatch, first: int) -> ImportError_:
    """Name the row and column of the text that is not UTF-8 (Arrow strings are not checked when a Parquet
    file is read, so Python's decode raised on them)."""
    for i in range(batch.num_rows):
        for name in batch.schema.names:
            try:
                batch.column(name)[i].as_py()
            except UnicodeDecodeError:
                return ImportError_(f"{label}: row {first + i}: field {excerpt(name)} is not valid UTF-8; "
                                    "write the file's text as UTF-8")
    return ImportError_(f"{label}: rows {first}-{first + batch.num_rows - 1}: text that is not valid UTF-8")


def _arrow_rows(label: str, table_batches: Iterator[pa.RecordBatch], before: int = 0) -> Iterator[tuple[int, dict]]:
    n = before
    for batch in table_batches:
        try:
            rows = batch.to_pylist()
        except UnicodeDecodeError:
            raise _bad_utf8(label, batch, n + 1) from None
        for row in rows:
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
    return _arrow_rows(label, pf.iter_batches(batch_size=BATCH_ROWS))


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
            for n, row in _arrow_rows(label, iter(table.to_batches(max_chunksize=BATCH_ROWS))):
                yield offset + n, row
            offset += len(ds)

    def table() -> pa.Table | None:
        return _valid(pa.concat_tables([ds.with_format("arrow")[:] for _, ds in splits], promote_options="permissive"))

    split_names = [name for name, _ in splits if name]
    suffix = f" (splits {', '.join(split_names)})" if split_names else ""
    return _whole(label + suffix, "row", rows(), _file_hash(path), 0, table)


def _parquet_table(raw: bytes) -> pa.Table | None:
    import pyarrow.parquet as pq

    try:
        return _valid(pq.read_table(pa.BufferReader(raw)))
    except (pa.ArrowException, OSError):
        return None


def _valid(table: pa.Table) -> pa.Table | None:
    """The table, or None when a string in it is not UTF-8: then the row path names the row."""
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return table


def _jsonl_table(raw: bytes | bytearray) -> pa.Table | None:
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
