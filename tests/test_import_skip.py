"""`import --on-error skip`: the good rows go in in one transaction, each bad row goes to a rejects file with
its file, line, field and reason, and --max-rejects refuses the whole import when too many are bad."""

from __future__ import annotations

import json

import pytest

from workbench.cli import main
from workbench.importers import ImportError_

GOOD = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(20)]


def write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def mixed(tmp_path):
    """20 good rows and 4 bad ones of 3 kinds, at lines 3, 8, 12 and 20."""
    rows = list(GOOD)
    rows.insert(2, '{"prompt": "broken", "completion": ')
    rows.insert(7, {"prompt": "No answer"})
    rows.insert(11, {"prompt": "Empty", "completion": "  "})
    rows.insert(19, {"prompt": "Empty too", "completion": ""})
    return write(tmp_path / "mixed.jsonl", rows)


def test_skip_imports_the_good_rows_and_lists_each_bad_one(store, load, tmp_path):
    path = mixed(tmp_path)
    [report] = load(path, on_error="skip", max_rejects="20%", rejects_dir=tmp_path / "rejects")
    assert report.counts.labels_added == 20
    assert store.stats()["labels_by_kind"] == {"demonstration": 20}
    assert report.read.reject_reasons == {"empty reply": 2, "invalid JSON": 1, "missing field": 1}
    rejects = [json.loads(line) for line in report.rejects_file.read_text().splitlines()]
    assert report.rejects_file.parent == tmp_path / "rejects"
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        (3, None, "invalid JSON"), (8, "completion", "missing field"), (12, "completion", "empty reply"),
        (20, "completion", "empty reply")]
    assert all(r["file"] == str(path.resolve()) for r in rejects)
    assert rejects[0]["row"] == '{"prompt": "broken", "completion": '  # the line as it was, unparsable
    assert rejects[1]["row"] == {"prompt": "No answer"}
    summary = report.summary()
    assert "refused 4 rows" in summary and str(report.rejects_file) in summary
    assert "  2 empty reply" in summary.splitlines()


def test_fail_counts_the_bad_rows_of_the_whole_file(store, load, tmp_path):
    before = store.dump()
    with pytest.raises(ImportError_) as err:
        load(mixed(tmp_path))
    message = str(err.value)
    assert "line 3: invalid JSON" in message
    assert "4 of 24 rows are bad" in message and "--on-error skip" in message
    assert store.dump() == before


def test_max_rejects_refuses_the_whole_import(store, load, tmp_path):
    before = store.dump()
    path = mixed(tmp_path)
    with pytest.raises(ImportError_) as err:  # the default, 1%, of 24 rows
        load(path, on_error="skip", rejects_dir=tmp_path / "rejects")
    assert "4 of 24 rows refused" in str(err.value) and "--max-rejects 1%" in str(err.value)
    with pytest.raises(ImportError_):
        load(path, on_error="skip", max_rejects="3", rejects_dir=tmp_path / "rejects")
    assert store.dump() == before
    written = list((tmp_path / "rejects").iterdir())
    assert written and str(written[0]) in str(err.value)  # what was refused can still be read
    [report] = load(path, on_error="skip", max_rejects="4")
    assert report.counts.labels_added == 20


def test_a_file_in_the_wrong_format_is_never_mostly_skipped(store, load, tmp_path):
    path = write(tmp_path / "odd.jsonl", [{"question": f"q{i}", "answer": "a"} for i in range(10)] + GOOD[:1])
    with pytest.raises(ImportError_) as err:
        load(path, on_error="skip")
    assert "10 of 11 rows refused" in str(err.value) and "unknown format" in str(err.value)


def test_skip_through_the_cli_writes_rejects_in_the_project(project, tmp_path, capsys):
    path = mixed(tmp_path)
    assert main(["import", "-p", str(project.root), str(path)]) == 2
    assert "4 of 24 rows are bad" in capsys.readouterr().err
    assert main(["import", "-p", str(project.root), str(path), "--on-error", "skip", "--max-rejects", "5"]) == 0
    out = capsys.readouterr().out
    [rejects] = (project.root / "rejects").iterdir()
    assert rejects.name.startswith("mixed.jsonl.") and rejects.name.endswith(".rejects.jsonl")
    assert f"refused 4 rows, listed in {rejects}" in out and "  1 invalid JSON" in out
    assert main(["import", "-p", str(project.root), str(path), "--on-error", "skip", "--max-rejects", "x%"]) == 2
    assert "--max-rejects" in capsys.readouterr().err
