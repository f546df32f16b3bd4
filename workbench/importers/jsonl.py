"""JSONL (and a JSON array, or JSON lines in a .json file): streamed from disk a block at a time, each block
read as numbered rows and, where every line is one row, as an Arrow table for the columnar fast path."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa

from workbench.importers.rows import BadRow, ImportError_, type_name
from workbench.importers.source import (
    NON_SPACE,
    READ_CHUNK,
    STREAM_BLOCK,
    Block,
    Source,
    check_head,
    too_big,
)


def jsonl_stream(path: Path, label: str, inner: str, gz: bool, cap: int, file_hash: str) -> Source:
    """JSONL read STREAM_BLOCK bytes at a time (inflated chunk by chunk for .gz), cut at the last newline, so
    memory stays near one block however long the file. The first bytes are checked against the type before
    any more is read, and a .gz file stops at `cap` inflated bytes, as a file read whole does."""
    size = path.stat().st_size
    if not gz and size > cap:
        raise too_big(label, f"{size:,} bytes", cap)
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
                    raise too_big(label, f"more than {cap:,} bytes once decompressed", cap)
                start = len(out)
                out += piece
                if not checked and (m := NON_SPACE.search(piece)):
                    check_head(label, inner, out, start + m.start())
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
                    yield Block(jsonl_rows(label, block, line - 1), line, lambda b=block: jsonl_table(b))
                    line += block.count(b"\n")
                if not chunk:
                    break
            if not seen:
                raise ImportError_(f"{label}: the file is empty, there are no rows to import")
        finally:
            fh.close()
            raw_fh.close()

    return Source(label, "line", blocks(), file_hash, size, raw_fh.tell)


def _utf8_tail(exc: UnicodeDecodeError) -> str:
    return f"invalid UTF-8 (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8"


def jsonl_rows(label: str, raw: bytes | bytearray, before: int = 0) -> Iterator[tuple[int, dict | BadRow]]:
    """The rows of `raw`, numbered from `before + 1`."""
    # Lines as views into the file, not split() copies: a file is in memory once, however long its lines.
    view, begin, n, size = memoryview(raw), 0, before, len(raw)
    while begin <= size:
        end = raw.find(b"\n", begin)
        end = size if end < 0 else end
        n, first, begin = n + 1, begin, end + 1
        if not NON_SPACE.search(raw, first, end):
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


def json_array_rows(label: str, raw: bytes) -> Iterator[tuple[int, dict]]:
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


def jsonl_table(raw: bytes | bytearray) -> pa.Table | None:
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
