"""Export: vote pooling and filters, splits, card, and files that `datasets` loads unchanged."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import datasets
import pytest

from workbench.exporters import ExportError, export
from workbench.store import ExportFilters


def _prompt(store, pid: str, text: str, turns=None) -> None:
    messages = turns or [{"role": "user", "content": text}]
    store.cursor().execute("INSERT INTO prompts (id, messages, source) VALUES (?, ?, 'test')", [pid, messages])


def _response(store, rid: str, pid: str, text: str) -> None:
    store.cursor().execute(
        "INSERT INTO responses (id, prompt_id, text, origin, source) VALUES (?, ?, ?, 'person', 'test')",
        [rid, pid, text])


def _vote(store, who, pid, chosen, rejected, outcome="chosen", when="2026-03-01"):
    store.add_preference(prompt_id=pid, chosen_id=chosen, rejected_id=rejected, annotator=who,
                         client_id=f"{who}-{pid}-{chosen}-{rejected}-{outcome}", outcome=outcome,
                         created_at=datetime.fromisoformat(when))


@pytest.fixture
def voted(store, load, tmp_path):
    for pid, (a, b) in {"q1": ("A1", "B1"), "q2": ("C2", "D2"), "q3": ("E3", "F3"), "q4": ("G4", "H4")}.items():
        _prompt(store, pid, f"question {pid}")
        _response(store, a, pid, f"good answer to {pid}")
        _response(store, b, pid, f"bad answer to {pid}")
    _vote(store, "alice", "q1", "A1", "B1")
    _vote(store, "bob", "q1", "B1", "A1", outcome="chosen")  # bob disagrees ...
    _vote(store, "dan", "q1", "A1", "B1", when="2026-05-01")  # ... dan agrees with alice later
    _vote(store, "carol", "q1", "A1", "B1", outcome="tie")
    _vote(store, "alice", "q2", "C2", "D2")
    _vote(store, "bob", "q2", "D2", "C2")  # an even split: no winner
    _vote(store, "alice", "q3", "E3", "F3")
    _vote(store, "alice", "q4", "G4", "H4", outcome="tie")
    _vote(store, "bob", "q4", "G4", "H4", outcome="both_bad")
    src = tmp_path / "prefs.jsonl"
    src.write_text(json.dumps({"prompt": "imported q", "chosen": "imported good", "rejected": "imported bad"}) + "\n")
    load(src)
    return store


def prompts_of(store, tmp_path, name, **filters) -> list[str]:
    out = tmp_path / name
    export(store, kind="preferences", out_dir=out, style="standard", filters=ExportFilters(**filters))
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return sorted(r["prompt"] for r in rows)


def test_votes_are_pooled_and_pairs_without_a_winner_are_left_out(voted, tmp_path):
    assert prompts_of(voted, tmp_path, "all") == ["imported q", "question q1", "question q3"]
    out = tmp_path / "all"
    q1 = [json.loads(r) for r in (out / "train.jsonl").read_text().splitlines() if "q1" in r]
    assert q1 == [{"prompt": "question q1", "chosen": "good answer to q1", "rejected": "bad answer to q1"}]


@pytest.mark.parametrize("filters,expected", [
    ({"min_votes": 2}, ["question q1"]),
    ({"min_agreement": 0.75}, ["imported q", "question q3"]),  # q1: 2 of 4 votes for its winner
    ({"exclude_ties": True}, ["imported q", "question q3"]),
    ({"annotators": ["alice"]}, ["question q1", "question q2", "question q3"]),
    ({"annotators": ["alice", "bob"]}, ["question q3"]),
    ({"sources": ["ui"]}, ["question q1", "question q3"]),
    ({"sources": ["prefs.jsonl"]}, ["imported q"]),
    ({"sources": ["pref*"]}, ["imported q"]),
    ({"until": datetime(2026, 4, 1), "sources": ["ui"]}, ["question q3"]),  # without dan, q1 splits 1-1-1
    ({"since": datetime(2026, 4, 1)}, ["imported q", "question q1"]),
])
def test_filters(voted, tmp_path, filters, expected):
    assert prompts_of(voted, tmp_path, "f", **filters) == expected


def test_filters_that_leave_nothing_are_an_error(voted, tmp_path):
    with pytest.raises(ExportError, match="no preferences rows match"):
        export(voted, kind="preferences", out_dir=tmp_path / "none", filters=ExportFilters(annotators=["zed"]))


@pytest.fixture
def demo_store(store, load):
    from tests.conftest import DEMO_DATA

    load(DEMO_DATA / "sft.jsonl", DEMO_DATA / "preferences.jsonl")
    return store


def test_split_is_by_prompt_deterministic_and_seeded(demo_store, tmp_path):
    def split(name, seed):
        out = tmp_path / name
        result = export(demo_store, kind="preferences", out_dir=out, split=0.2, seed=seed)
        rows = {s: [json.loads(x) for x in (out / f"{s}.jsonl").read_text().splitlines()] for s in result.counts}
        return result, rows

    r1, rows1 = split("a", 0)
    r2, rows2 = split("b", 0)
    r3, _ = split("c", 1)
    assert rows1 == rows2 and r1.content_hash == r2.content_hash
    assert r3.content_hash != r1.content_hash
    train_prompts = {json.dumps(r["prompt"]) for r in rows1["train"]}
    test_prompts = {json.dumps(r["prompt"]) for r in rows1["test"]}
    assert not train_prompts & test_prompts
    assert len(test_prompts) == round(0.2 * len(train_prompts | test_prompts))
    assert r1.counts["train"] + r1.counts["test"] == 500


def test_card_says_what_made_the_data(demo_store, tmp_path):
    out = tmp_path / "card"
    result = export(demo_store, kind="sft", out_dir=out, split=0.1, seed=3,
                    filters=ExportFilters(sources=["sft.jsonl"]), project_name="loki")
    card = (out / "README.md").read_text()
    meta = json.loads(card.split("```json\n")[1].split("```")[0])
    assert meta["rows"] == result.counts and sum(result.counts.values()) == 1945
    assert meta["filters"]["sources"] == ["sft.jsonl"] and meta["seed"] == 3 and meta["split"] == 0.1
    assert meta["annotators"] == ["import"] and meta["sources"][0].endswith("data/loki/sft.jsonl")
    digest = hashlib.sha256()
    for f in sorted(p for p in out.iterdir() if p.name != "README.md"):
        digest.update(f.name.encode())
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    assert meta["sha256"] == digest.hexdigest() == result.content_hash


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_exports_load_unchanged_with_datasets(demo_store, tmp_path, fmt):
    out = tmp_path / fmt
    result = export(demo_store, kind="preferences", out_dir=out, fmt=fmt, split=0.1)
    loaded = datasets.load_from_disk(str(out)) if fmt == "hf" else datasets.load_dataset(str(out))
    assert {s: len(d) for s, d in loaded.items()} == result.counts
    row = loaded["train"][0]
    assert set(row) == {"prompt", "chosen", "rejected"}
    assert row["chosen"][0]["role"] == "assistant" and row["prompt"][-1]["role"] == "user"


def test_standard_style_refuses_multi_turn_or_system_prompts(demo_store, tmp_path):
    with pytest.raises(ExportError, match="system prompt or multi-turn context.*--style conversational"):
        export(demo_store, kind="sft", out_dir=tmp_path / "s", style="standard")
    assert not (tmp_path / "s").exists()


def test_bad_export_settings(demo_store, tmp_path):
    with pytest.raises(ExportError, match="apply to preference pairs"):
        export(demo_store, kind="sft", out_dir=tmp_path / "x", filters=ExportFilters(min_votes=2))
    with pytest.raises(ExportError, match="does not apply to preferences"):
        export(demo_store, kind="preferences", out_dir=tmp_path / "x", style="messages")
    with pytest.raises(ExportError, match="--split"):
        export(demo_store, kind="sft", out_dir=tmp_path / "x", split=1.5)
    Path(tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.jsonl").write_text("{}\n")
    with pytest.raises(ExportError, match="not empty"):
        export(demo_store, kind="sft", out_dir=tmp_path / "full")
