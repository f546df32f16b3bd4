"""Every importer format and file type round-trips: import, export, compare with what the file said."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.exporters import export


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_export(out: Path) -> list[dict]:
    rows = []
    for f in sorted(out.glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    return rows


def user(text):
    return {"role": "user", "content": text}


def asst(text):
    return {"role": "assistant", "content": text}


def exported(store, tmp_path, kind, style="conversational", **kw):
    out = tmp_path / f"export-{kind}-{style}"
    export(store, kind=kind, out_dir=out, style=style, **kw)
    return sorted(read_export(out), key=json.dumps)


def test_trl_standard_prompt_completion(store, load, tmp_path):
    src = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": "What is 2+2?", "completion": "4."},
                                               {"prompt": "Capital of France?", "completion": "Paris."}])
    [report] = load(src)
    assert (report.read.fmt, report.read.kind) == ("trl-completion", "sft")
    assert exported(store, tmp_path, "sft", style="standard") == sorted(
        [{"prompt": "What is 2+2?", "completion": "4."}, {"prompt": "Capital of France?", "completion": "Paris."}],
        key=json.dumps)


def test_trl_conversational_prompt_completion_keeps_system_and_turns(store, load, tmp_path):
    prompt = [{"role": "system", "content": "Be brief."}, user("Hi"), asst("Hello!"), user("Weather?")]
    src = write_jsonl(tmp_path / "sft.jsonl", [{"prompt": prompt, "completion": [asst("Sunny.")]}])
    load(src)
    assert exported(store, tmp_path, "sft") == [{"prompt": prompt, "completion": [asst("Sunny.")]}]
    assert exported(store, tmp_path, "sft", style="messages") == [{"messages": prompt + [asst("Sunny.")]}]


def test_trl_messages_last_assistant_turn_is_the_demonstration(store, load, tmp_path):
    messages = [user("Hi"), asst("Hello!"), user("Name a fruit"), asst("Apple.")]
    [report] = load(write_jsonl(tmp_path / "m.jsonl", [{"messages": messages}]))
    assert report.read.fmt == "trl-messages"
    assert exported(store, tmp_path, "sft", style="messages") == [{"messages": messages}]


def test_trl_preference_standard_and_conversational(store, load, tmp_path):
    rows = [{"prompt": "Say hi", "chosen": "Hi there!", "rejected": "No."},
            {"prompt": [user("Say bye")], "chosen": [asst("Goodbye!")], "rejected": [asst("Whatever.")]}]
    [report] = load(write_jsonl(tmp_path / "p.jsonl", rows))
    assert (report.read.fmt, report.counts.labels_added) == ("trl-preference", 2)
    assert exported(store, tmp_path, "preferences") == sorted([
        {"prompt": [user("Say hi")], "chosen": [asst("Hi there!")], "rejected": [asst("No.")]},
        {"prompt": [user("Say bye")], "chosen": [asst("Goodbye!")], "rejected": [asst("Whatever.")]},
    ], key=json.dumps)


def test_implicit_prompt_conversational_and_standard(store, load, tmp_path):
    rows = [
        {"chosen": [user("Sky colour?"), asst("Blue.")], "rejected": [user("Sky colour?"), asst("Green.")]},
        {"chosen": "Q: 1+1? A: 2", "rejected": "Q: 1+1? A: 3"},
    ]
    [report] = load(write_jsonl(tmp_path / "i.jsonl", rows))
    assert report.read.fmt == "trl-implicit-preference"
    assert exported(store, tmp_path, "preferences") == sorted([
        {"prompt": [user("Sky colour?")], "chosen": [asst("Blue.")], "rejected": [asst("Green.")]},
        {"prompt": [user("Q: 1+1? A:")], "chosen": [asst(" 2")], "rejected": [asst(" 3")]},
    ], key=json.dumps)


def test_hh_rlhf_multi_turn(store, load, tmp_path):
    shared = "\n\nHuman: My phone is slow.\n\nAssistant: Have you restarted it?\n\nHuman: Yes, twice."
    rows = [{"chosen": shared + "\n\nAssistant: Then let's clear the cache together.",
             "rejected": shared + "\n\nAssistant: Buy a new one."}]
    [report] = load(write_jsonl(tmp_path / "hh.jsonl", rows))
    assert report.read.fmt == "hh-rlhf"
    assert exported(store, tmp_path, "preferences") == [{
        "prompt": [user("My phone is slow."), asst("Have you restarted it?"), user("Yes, twice.")],
        "chosen": [asst("Then let's clear the cache together.")], "rejected": [asst("Buy a new one.")],
    }]


def test_alpaca_with_input_and_system(store, load, tmp_path):
    rows = [{"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour",
             "system": "You translate."},
            {"instruction": "Name a colour", "input": "", "output": "Red"}]
    [report] = load(write_jsonl(tmp_path / "a.jsonl", rows))
    assert report.read.fmt == "alpaca"
    assert exported(store, tmp_path, "sft") == sorted([
        {"prompt": [{"role": "system", "content": "You translate."}, user("Translate to French\n\nGood morning")],
         "completion": [asst("Bonjour")]},
        {"prompt": [user("Name a colour")], "completion": [asst("Red")]},
    ], key=json.dumps)


def test_sharegpt(store, load, tmp_path):
    rows = [{"conversations": [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"},
                               {"from": "gpt", "value": "Hello!"}, {"from": "human", "value": "Joke?"},
                               {"from": "gpt", "value": "Knock knock."}]}]
    [report] = load(write_jsonl(tmp_path / "s.jsonl", rows))
    assert report.read.fmt == "sharegpt"
    assert exported(store, tmp_path, "sft") == [{
        "prompt": [{"role": "system", "content": "Be kind."}, user("Hi"), asst("Hello!"), user("Joke?")],
        "completion": [asst("Knock knock.")]}]


def test_ultrafeedback_binarizes_best_vs_worst_and_skips_equal_scores(store, load, tmp_path):
    rows = [
        {"prompt": "Explain rain", "completions": [
            {"response": "Water falls from clouds when droplets grow heavy.", "overall_score": 8.5},
            {"response": "Rain is wet.", "overall_score": 3},
            {"response": "Clouds cry.", "overall_score": 1.5}]},
        {"instruction": "Tie", "completions": [{"response": "a", "score": 5}, {"response": "b", "score": 5}]},
    ]
    [report] = load(write_jsonl(tmp_path / "uf.jsonl", rows))
    assert report.read.fmt == "ultrafeedback"
    assert report.read.skipped == {"all completions scored equal": 1}
    assert exported(store, tmp_path, "preferences") == [{
        "prompt": [user("Explain rain")],
        "chosen": [asst("Water falls from clouds when droplets grow heavy.")], "rejected": [asst("Clouds cry.")]}]


def test_prompts_only_and_kind_prompts_on_a_preference_file(store, load, tmp_path):
    [a] = load(write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "One"}, {"prompt": [user("Two")]}]),
               tags=["pool"])
    [b] = load(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "Three", "chosen": "x", "rejected": "y"}]),
               kind="prompts")
    assert (a.read.fmt, a.counts.prompts_added, b.counts.prompts_added) == ("prompt", 2, 1)
    assert store.table_counts() == {"prompts": 3, "responses": 0, "labels": 0}
    assert [p["messages"][0]["content"] for p in store.prompts_with_tag("pool")] == ["One", "Two"]


SFT_ROWS = [{"prompt": "Hello", "completion": "Hi!"}, {"prompt": "Bye", "completion": "See you."}]
PREF_ROWS = [{"prompt": "Hello", "chosen": "Hi!", "rejected": "What."}]


def _as_json_array(path: Path, rows) -> Path:
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def _as_csv(path: Path, rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _as_parquet(path: Path, rows) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _as_gz(path: Path, rows) -> Path:
    inner = write_jsonl(path.with_suffix(""), rows)
    path.write_bytes(gzip.compress(inner.read_bytes()))
    inner.unlink()
    return path


def _as_datasets(path: Path, rows) -> Path:
    import datasets

    half = max(1, len(rows) // 2)
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:half]),
                          "test": datasets.Dataset.from_list(rows[half:] or rows[:1])}).save_to_disk(str(path))
    return path


@pytest.mark.parametrize("name,writer", [
    ("rows.json", _as_json_array), ("rows.csv", _as_csv), ("rows.parquet", _as_parquet),
    ("rows.jsonl.gz", _as_gz), ("rows.parquet.gz", None), ("ds", _as_datasets),
])
def test_file_types_round_trip(store, load, tmp_path, name, writer):
    if writer is None:  # gzip of parquet
        raw = _as_parquet(tmp_path / "inner.parquet", SFT_ROWS).read_bytes()
        (tmp_path / name).write_bytes(gzip.compress(raw))
    else:
        writer(tmp_path / name, SFT_ROWS)
    [report] = load(tmp_path / name)
    assert report.counts.labels_added == 2
    assert exported(store, tmp_path, "sft", style="standard") == sorted(SFT_ROWS, key=json.dumps)


def test_csv_with_conversational_json_cells(store, load, tmp_path):
    rows = [{"prompt": json.dumps([user("Hi")]), "chosen": json.dumps([asst("Hello!")]),
             "rejected": json.dumps([asst("Go away.")]), "score_chosen": "9", "score_rejected": "2"}]
    load(_as_csv(tmp_path / "p.csv", rows))
    assert exported(store, tmp_path, "preferences") == [
        {"prompt": [user("Hi")], "chosen": [asst("Hello!")], "rejected": [asst("Go away.")]}]


def test_reimport_adds_nothing_and_rows_keep_source_line(store, load, tmp_path):
    src = write_jsonl(tmp_path / "p.jsonl", PREF_ROWS + [{"prompt": "Q2", "chosen": "good", "rejected": "bad"}])
    [first] = load(src)
    before = store.dump()
    [again] = load(src)
    assert first.counts.labels_added == 2 and not again.counts.added_anything
    assert store.dump() == before
    lines = store.cursor().execute(
        "SELECT source, source_line FROM labels ORDER BY source_line").fetchall()
    assert lines == [(str(src.resolve()), 1), (str(src.resolve()), 2)]


def test_duplicate_rows_within_a_file_are_stored_once(store, load, tmp_path):
    [report] = load(write_jsonl(tmp_path / "d.jsonl", SFT_ROWS + SFT_ROWS))
    assert (report.counts.rows_read, report.counts.labels_added) == (4, 2)


def test_two_files_in_one_command_are_one_transaction(store, load, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", SFT_ROWS)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "x", "completion": ""}])
    from workbench.importers import ImportError_

    with pytest.raises(ImportError_):
        load(good, bad)
    assert store.table_counts() == {"prompts": 0, "responses": 0, "labels": 0}
