"""CSV and TSV, streamed from disk as they are parsed (the csv module over a text stream, never whole)."""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from workbench.importers.rows import BadRow, ImportError_
from workbench.importers.source import HEAD_BYTES, NON_SPACE, READ_CHUNK, Block, Source, check_head, too_big


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
            raise too_big(self.label, f"more than {self.cap:,} bytes once decompressed", self.cap)
        if not self.checked:
            self.head += bytes(memoryview(buffer)[:min(n, HEAD_BYTES)])
            if n == 0 or len(self.head) >= HEAD_BYTES:
                self.checked = True
                if m := NON_SPACE.search(self.head):
                    check_head(self.label, self.inner, self.head, m.start())
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


def csv_stream(path: Path, label: str, inner: str, gz: bool, cap: int, file_hash: str) -> Source:
    """CSV/TSV read from disk as it is parsed (the csv module over a text stream), never whole: a quoted field
    may hold newlines, so the file cannot be cut into byte blocks as JSONL is; the rows stream instead, and the
    reader batches them. A row with bytes that are not UTF-8 is a bad row of its own (skippable, named by line)."""
    size = path.stat().st_size
    if not gz and size > cap:
        raise too_big(label, f"{size:,} bytes", cap)
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
