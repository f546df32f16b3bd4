"""A streamed import: a JSONL file is read, checked and stored a block at a time inside one transaction.
Memory is measured in bench/bench_store.py; here, that streaming keeps what a whole-file import promised."""

from __future__ import annotations

import json

import pytest

from workbench.importers import ImportError_, delimited, jsonl

ROWS = [{"prompt": f"Question {i}?", "chosen": f"A good answer to {i}.", "rejected": "No."} for i in range(300)]


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(jsonl, "STREAM_BLOCK", 2048)  # about 30 rows a block: a 300-row file is 10 blocks or more


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


def test_csv_streams_from_disk_with_quoted_newlines_across_reads(monkeypatch, store, load, tmp_path):
    """A CSV is parsed as it is read (64-byte reads here), never held whole: a quoted field with newlines that
    spans two reads is one field, and each row keeps the line it starts on."""
    import csv

    monkeypatch.setattr(delimited, "READ_CHUNK", 64)
    path = tmp_path / "p.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["prompt", "chosen", "rejected"])
        for i in range(30):
            out.writerow([f"Question {i}?", f"A good answer to {i},\nover two lines.", "No."])
    [report] = load(path)
    assert report.counts.labels_added == 30
    rows = store.cursor().execute(
        "SELECT r.text, l.source_line FROM labels l JOIN responses r ON r.id = l.chosen_id ORDER BY 2").fetchall()
    assert rows[0] == ("A good answer to 0,\nover two lines.", 2)
    assert [n for _, n in rows] == [2 + 2 * i for i in range(30)]  # each row is two lines long


def test_a_csv_row_that_is_not_utf8_is_a_bad_row_of_its_own(store, load, tmp_path):
    """Skipped with its line and reason (the rest goes in); with the default, named and counted."""
    path = tmp_path / "p.csv"
    path.write_bytes(b"prompt,completion\nok,fine\ncaf\xe9,x\nalso ok,fine too\n")
    with pytest.raises(ImportError_, match=r"p.csv: line 3: invalid UTF-8 \(byte 0xe9\).*1 of 3 rows are bad"):
        load(path)
    [report] = load(path, on_error="skip", max_rejects="50%")
    assert report.counts.labels_added == 2
    [reject] = [json.loads(line) for line in report.rejects_file.read_text().splitlines()]
    assert (reject["line"], reject["reason"], reject["row"]) == (3, "invalid UTF-8", "caf\ufffd,x")


def test_a_gzipped_csv_stops_at_the_cap_once_inflated(store, load, tmp_path):
    import gzip

    path = tmp_path / "big.csv.gz"
    path.write_bytes(gzip.compress(b"prompt,completion\n" + b"hello,world\n" * 100_000))
    with pytest.raises(ImportError_, match="big.csv.gz: the file is more than 100,000 bytes once decompressed"):
        load(path, max_file_bytes=100_000)
    assert store.cursor().execute("SELECT count(*) FROM labels").fetchone() == (0,)
