"""Parquet files (streamed a batch at a time; gzipped ones read whole) and `datasets` save_to_disk folders,
read through Arrow as numbered rows and as one table for the columnar fast path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from workbench.errors import excerpt
from workbench.importers.rows import BATCH_ROWS, ImportError_
from workbench.importers.source import PARQUET_BUFFER, Block, Source, hash_file, too_big, whole


def parquet_stream(path: Path, label: str, cap: int, file_hash: str) -> Source:
    """A Parquet file read a batch at a time from disk (the footer first), never whole."""
    import pyarrow.parquet as pq

    size = path.stat().st_size
    if size > cap:
        raise too_big(label, f"{size:,} bytes", cap)
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
            yield Block(arrow_rows(label, iter([batch]), first - 1), first,
                        lambda b=batch: valid_table(pa.Table.from_batches([b])))
            first += batch.num_rows

    return Source(label, "row", blocks(), file_hash, size, lambda: done[0])


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


def arrow_rows(label: str, table_batches: Iterator[pa.RecordBatch], before: int = 0) -> Iterator[tuple[int, dict]]:
    n = before
    for batch in table_batches:
        try:
            rows = batch.to_pylist()
        except UnicodeDecodeError:
            raise _bad_utf8(label, batch, n + 1) from None
        for row in rows:
            n += 1
            yield n, {k: v for k, v in row.items() if v is not None}


def parquet_rows(label: str, raw: bytes) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(pa.BufferReader(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportError_(f"{label}: not a readable Parquet file ({exc})") from None
    if pf.metadata.num_rows == 0:
        raise ImportError_(f"{label}: the file is empty, there are no rows to import")
    return arrow_rows(label, pf.iter_batches(batch_size=BATCH_ROWS))


def datasets_source(path: Path) -> Source:
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
            for n, row in arrow_rows(label, iter(table.to_batches(max_chunksize=BATCH_ROWS))):
                yield offset + n, row
            offset += len(ds)

    def table() -> pa.Table | None:
        return valid_table(pa.concat_tables([ds.with_format("arrow")[:] for _, ds in splits], promote_options="permissive"))

    split_names = [name for name, _ in splits if name]
    suffix = f" (splits {', '.join(split_names)})" if split_names else ""
    return whole(label + suffix, "row", rows(), hash_file(path), 0, table)


def parquet_table(raw: bytes) -> pa.Table | None:
    import pyarrow.parquet as pq

    try:
        return valid_table(pq.read_table(pa.BufferReader(raw)))
    except (pa.ArrowException, OSError):
        return None


def valid_table(table: pa.Table) -> pa.Table | None:
    """The table, or None when a string in it is not UTF-8: then the row path names the row."""
    try:
        table.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return table
