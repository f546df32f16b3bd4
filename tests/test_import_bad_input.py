"""Bad input: each case names file, line (or row) and field, and leaves the store exactly as it was."""

from __future__ import annotations

import gzip
import json

import pytest

from workbench.cli import main
from workbench.importers import ImportError_


@pytest.fixture
def seeded(store, load, tmp_path):
    """A store that already holds data, so 'unchanged' means more than 'still empty'."""
    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps({"prompt": "Seed?", "chosen": "Yes.", "rejected": "No."}) + "\n")
    load(seed)
    return store.dump()


def lines(*rows) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


GOOD = {"prompt": "Hi", "completion": "Hello!"}
BIG = "x" * (50 * 1024 * 1024)

CASES = {
    # name: (file name, content (str or bytes), expected message fragments)
    "invalid json": ("a.jsonl", lines(GOOD, GOOD, '{"prompt": "Hi", "completion": '),
                     ["a.jsonl", "line 3", "invalid JSON"]),
    "missing column": ("b.jsonl", lines({"prompt": "Hi", "chosen": "A"}, ),
                       ["b.jsonl", "line 1", "'rejected'"]),
    "missing column later": ("b2.jsonl", lines(GOOD, GOOD, {"prompt": "Hi", "answer": "x"}),
                             ["b2.jsonl", "line 3", "missing field 'completion'"]),
    "wrong column names": ("c.jsonl", lines({"question": "Hi", "answer": "Hello"}),
                           ["c.jsonl", "line 1", "cannot tell the format", "--format"]),
    "empty text": ("d.jsonl", lines(GOOD, {"prompt": "Hi", "completion": "   "}),
                   ["d.jsonl", "line 2", "field 'completion' is empty"]),
    "empty message content": ("d2.jsonl", lines({"prompt": [{"role": "user", "content": ""}], "completion": "x"}),
                              ["d2.jsonl", "line 1", "prompt[0].content", "empty"]),
    "wrong type": ("e.jsonl", lines(GOOD, {"prompt": "Hi", "completion": 42}),
                   ["e.jsonl", "line 2", "field 'completion'", "a number"]),
    "wrong role": ("e2.jsonl", lines({"messages": [{"role": "human", "content": "x"},
                                                   {"role": "assistant", "content": "y"}]}),
                   ["e2.jsonl", "line 1", "messages[0].role", "'human'"]),
    "not an object": ("e3.jsonl", lines(GOOD, "[1, 2]"), ["e3.jsonl", "line 2", "expected a JSON object"]),
    "identical pair": ("f.jsonl", lines({"prompt": "Hi", "chosen": "Same", "rejected": "Same"}),
                       ["f.jsonl", "line 1", "identical"]),
    "invalid utf-8": ("g.jsonl", lines(GOOD).encode() + b'{"prompt": "caf\xe9", "completion": "x"}\n',
                      ["g.jsonl", "line 2", "invalid UTF-8"]),
    "invalid utf-8 csv": ("g.csv", b"prompt,completion\nok,fine\ncaf\xe9,x\n", ["g.csv", "line 3", "invalid UTF-8"]),
    "parquet that is json": ("h.parquet", lines(GOOD), ["h.parquet", "not a Parquet file"]),
    "jsonl that is parquet": ("h2.jsonl", b"PAR1" + b"\0" * 20 + b"PAR1", ["h2.jsonl", "is a Parquet file"]),
    "gz that is not gzip": ("h3.jsonl.gz", lines(GOOD), ["h3.jsonl.gz", "not gzip-compressed"]),
    "json array not an array of objects": ("h4.json", "[1, 2]", ["h4.json", "row 1", "expected a JSON object"]),
    "unsupported extension": ("notes.txt", "hello", ["notes.txt", "unsupported file type"]),
    "empty file": ("i.jsonl", "", ["i.jsonl", "empty"]),
    "blank lines only": ("i2.jsonl", "\n\n  \n", ["i2.jsonl", "empty"]),
    "empty csv": ("i3.csv", "prompt,completion\n", ["i3.csv", "no rows"]),
    "huge field": ("j.jsonl", lines(GOOD, {"prompt": "Hi", "completion": BIG}),
                   ["j.jsonl", "line 2", "field 'completion'", "52,428,800 bytes", "limit of 1,000,000"]),
    "csv extra values": ("k.csv", "prompt,completion\nHi,Hello,extra\n", ["k.csv", "line 2", "more values"]),
    "hh prompt mismatch": ("l.jsonl", lines({"chosen": "\n\nHuman: A\n\nAssistant: B",
                                             "rejected": "\n\nHuman: C\n\nAssistant: D"}),
                           ["l.jsonl", "line 1", "share no leading Human turn"]),
    "kind mismatch": ("m.jsonl", lines(GOOD), ["m.jsonl", "line 1", "not preferences", "--kind sft"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_names_the_spot_and_changes_nothing(case, seeded, store, load, tmp_path):
    name, content, fragments = CASES[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    kwargs = {"kind": "preferences"} if case == "kind mismatch" else {}
    with pytest.raises(ImportError_) as err:
        load(path, **kwargs)
    for fragment in fragments:
        assert fragment in str(err.value), (fragment, str(err.value))
    assert store.dump() == seeded


def test_gzip_without_gz_extension(store, load, tmp_path):
    path = tmp_path / "sneaky.jsonl"
    path.write_bytes(gzip.compress(lines(GOOD).encode()))
    with pytest.raises(ImportError_, match="gzip-compressed but its name does not end in .gz"):
        load(path)


def test_limit_comes_from_the_project_config(project, tmp_path, capsys):
    """The limit is a project setting: lowering it in workbench.toml makes a 2 KB field fail."""
    config = project.root / "workbench.toml"
    config.write_text(config.read_text().replace("max_field_bytes = 1000000", "max_field_bytes = 1000"))
    src = tmp_path / "mid.jsonl"
    src.write_text(lines({"prompt": "Hi", "completion": "y" * 2000}))
    assert main(["import", "-p", str(project.root), str(src)]) == 2
    assert "above the limit of 1,000 (max_field_bytes in workbench.toml)" in capsys.readouterr().err


def test_cli_prints_one_line_and_exits_2(project, tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_text(lines(GOOD, "{oops"))
    assert main(["import", "-p", str(project.root), str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench import: error: ") and "bad.jsonl: line 2: invalid JSON" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
