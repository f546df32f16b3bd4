"""The column-wise import path gives exactly what the row path gives, and steps aside when in doubt."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from tests.conftest import DEMO_DATA
from workbench.importers import Limits, columnar, read_records

LIMIT = 1_000_000


def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


SHAPES = {
    "standard pairs": [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go."},
                       {"prompt": "Q2", "chosen": "Good", "rejected": "Bad"}],
    "conversational pairs with system and turns": [
        {"prompt": [{"role": "system", "content": "Be kind."}, u("Hi"), a("Hello"), u("Help?")],
         "chosen": [a("Sure!")], "rejected": [a("No.")]},
        {"prompt": [u("Plain")], "chosen": [a("Yes")], "rejected": [a("Nope")]},
    ],
    "conversational completions, extra keys": [
        {"prompt": [u("Hi")], "completion": [a("Hello")], "issue": "x"},
        {"prompt": [{"content": "Order?", "role": "user"}], "completion": [{"content": "Here.", "role": "assistant"}],
         "issue": "y"},
    ],
    "prompts only": [{"prompt": "One"}, {"prompt": "Two"}],
}

DOUBTFUL = {
    "blank text": [{"prompt": "Hi", "completion": "  "}],
    "json-looking string": [{"prompt": "[not json", "completion": "x"}],
    "two assistant messages": [{"prompt": [u("Hi")], "completion": [a("a"), a("b")]}],
    "system not first": [{"prompt": [u("Hi"), {"role": "system", "content": "s"}], "completion": "x"}],
    "only a system message": [{"prompt": [{"role": "system", "content": "s"}], "completion": "x"}],
    "unknown role": [{"prompt": [{"role": "human", "content": "Hi"}], "completion": "x"}],
    "identical pair": [{"prompt": "Hi", "chosen": "Same", "rejected": "Same"}],
    "scores": [{"prompt": "Hi", "chosen": "a", "rejected": "b", "score_chosen": 1.0}],
    "oversized": [{"prompt": "Hi", "completion": "x" * (LIMIT + 1)}],
}


def write(tmp_path, rows, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def row_path(path, monkeypatch, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(columnar, "fast_records", lambda *a, **k: None)
        return read_records(path, max_field_bytes=LIMIT, **kwargs)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_same_records_as_the_row_path(shape, tmp_path, monkeypatch):
    path = write(tmp_path, SHAPES[shape])
    table = pa.Table.from_pylist(SHAPES[shape])
    assert columnar.fast_records(table, None, None, Limits(LIMIT), str(path)) is not None, "fast path not taken"
    fast = read_records(path, max_field_bytes=LIMIT)
    slow = row_path(path, monkeypatch)
    assert (fast.fmt, fast.kind) == (slow.fmt, slow.kind)
    assert fast.table.to_pylist() == slow.table.to_pylist()


@pytest.mark.parametrize("case", list(DOUBTFUL))
def test_steps_aside_when_in_doubt(case, tmp_path):
    table = pa.Table.from_pylist(DOUBTFUL[case])
    assert columnar.fast_records(table, None, None, Limits(LIMIT), "x") is None


def test_demo_files_take_the_fast_path_with_the_same_result(monkeypatch):
    for name in ("sft.jsonl", "preferences.jsonl", "heldout_prompts.jsonl"):
        calls = []
        real = columnar.fast_records

        def spy(*args, _real=real, _calls=calls, **kwargs):
            result = _real(*args, **kwargs)
            _calls.append(result is not None)
            return result

        monkeypatch.setattr(columnar, "fast_records", spy)
        fast = read_records(DEMO_DATA / name, max_field_bytes=LIMIT)
        monkeypatch.setattr(columnar, "fast_records", real)
        assert calls == [True], name
        slow = row_path(DEMO_DATA / name, monkeypatch)
        assert fast.table.to_pylist() == slow.table.to_pylist(), name


def test_blank_lines_in_jsonl_use_the_row_path_and_keep_true_line_numbers(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n\n{"prompt": "c", "completion": "d"}\n')
    result = read_records(path, max_field_bytes=LIMIT)
    assert result.table.column("line").to_pylist() == [1, 3]
