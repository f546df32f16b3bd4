"""A streamed import: a JSONL file is read, checked and stored a block at a time inside one transaction.
Memory is measured in bench/bench_store.py; here, that streaming keeps what a whole-file import promised."""

from __future__ import annotations

import json

import pytest

from workbench.importers import ImportError_, files

ROWS = [{"prompt": f"Question {i}?", "chosen": f"A good answer to {i}.", "rejected": "No."} for i in range(300)]


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(files, "STREAM_BLOCK", 2048)  # about 30 rows a block: a 300-row file is 10 blocks or more


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_blocks_keep_line_numbers_and_dedupe_across_blocks(small_blocks, store, load, tmp_path):
    path = write(tmp_path / "p.jsonl", ROWS + [ROWS[3]] + ["", ROWS[299]])  # duplicates in later blocks
    seen = []
    [report] = load(path, progress=lambda name, done, total: seen.append((done, total)))
    assert report.counts.rows_read == 302 and report.counts.labels_added == 300
    assert len(seen) >= 10 and seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    lines = store.cursor().execute("SELECT source_line FROM labels ORDER BY source_line").fetchall()
    assert [n for (n,) in lines] == list(range(1, 301))  # each row keeps its own line, the first of duplicates


def test_a_bad_row_in_a_late_block_undoes_the_early_blocks(small_blocks, store, load, tmp_path):
    before = store.dump()
    path = write(tmp_path / "late.jsonl", ROWS + [{"prompt": "Q", "chosen": "same", "rejected": "same"}])
    with pytest.raises(ImportError_) as err:
        load(path)
    assert "line 301" in str(err.value) and "1 of 301 rows are bad" in str(err.value)
    assert store.dump() == before


def test_gzipped_jsonl_streams_too(small_blocks, store, load, tmp_path):
    import gzip

    path = tmp_path / "p.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in ROWS))
    [report] = load(path)
    assert report.counts.labels_added == 300


def test_reading_ahead_hands_on_the_readers_error_and_stops_when_the_store_gives_up():
    """The next block is read in a thread while the store inserts the one before: a reader's error still
    reaches the import (which then rolls back), and an import that fails mid-file leaves no reader running."""
    import threading

    from workbench.ingest import read_ahead

    def broken():
        yield 1
        raise ImportError_("p.jsonl: line 40: bad row")

    got = []
    with pytest.raises(ImportError_, match="line 40"):
        for item in read_ahead(broken()):
            got.append(item)
    assert got == [1]

    endless = read_ahead(iter(range(10**9)))
    assert next(endless) == 0
    endless.close()  # the store raised: the generator is closed
    assert not [t for t in threading.enumerate() if t.name == "import-read-ahead"]
