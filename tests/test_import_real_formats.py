"""Public datasets as their owners wrote them: a hand-written fixture per real shape (tests/fixtures/real/),
read the way the dataset's own loaders and TRL read it, with the odd rows refused for their own reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.exporters import export
from workbench.importers import ImportError_
from workbench.store import ExportFilters

REAL = Path(__file__).parent / "fixtures" / "real"


def user(text):
    return {"role": "user", "content": text}


def asst(text):
    return {"role": "assistant", "content": text}


def exported(store, tmp_path, kind, name="x", **filters):
    out = tmp_path / f"export-{name}"
    export(store, kind=kind, out_dir=out, filters=ExportFilters(**filters) if filters else None)
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def skip(load, name, **kw):
    kw.setdefault("max_rejects", "50%")
    [report] = load(REAL / name, on_error="skip", **kw)
    return report


def test_hh_rlhf_branching_pair_takes_the_shared_prefix_and_an_empty_reply_is_refused(store, load, tmp_path):
    report = skip(load, "hh_rlhf.jsonl")
    assert report.read.fmt == "hh-rlhf"
    assert report.counts.labels_added == 4
    [reject] = report.read.rejects
    assert (reject["line"], reject["field"], reject["reason"]) == (4, "rejected", "empty reply")
    rows = {r["chosen"][0]["content"]: r for r in exported(store, tmp_path, "preferences")}
    # The transcripts branch at the first Assistant turn: the prompt is what they share, as TRL's extract_prompt.
    branched = rows["Sure! How many guests?"]
    assert branched["prompt"] == [user("Can you help me plan a birthday party?")]
    assert branched["rejected"] == [asst("No, plan it yourself.")]
    multi = rows["A certified fast charger and cable will help; cheap ones often limit the current."]
    assert multi["prompt"] == [user("How do I get my phone to charge faster?"),
                               asst("Are you using the charger that came with it?"), user("No, a cheap one.")]


def test_hh_rlhf_fail_counts_every_bad_row_and_names_the_option(store, load, tmp_path):
    before = store.dump()
    rows = [json.loads(line) for line in (REAL / "hh_rlhf.jsonl").read_text().splitlines()]
    empty = rows[3]
    path = tmp_path / "hh.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [rows[0], empty, rows[1], empty, empty, rows[4]]))
    with pytest.raises(ImportError_) as err:
        load(path)
    message = str(err.value)
    assert "line 2" in message and "empty reply" in message
    assert "3 of 6 rows are bad" in message and "--on-error skip" in message
    assert store.dump() == before


def test_sharegpt_roles_system_turns_and_a_cut_off_conversation(store, load, tmp_path):
    report = skip(load, "sharegpt.jsonl")
    assert report.read.fmt == "sharegpt" and report.counts.labels_added == 5
    [reject] = report.read.rejects
    assert (reject["line"], reject["reason"]) == (6, "empty reply")
    rows = {r["completion"][0]["content"]: r["prompt"] for r in exported(store, tmp_path, "sft")}
    assert rows["144."] == [user("What's 12 times 12?")]  # chatgpt
    assert "Mix flour, milk, eggs and a pinch of salt, then fry thin rounds in butter." in rows  # bing
    assert rows["Spring or autumn."] == [{"role": "system", "content": "You are a helpful assistant.\n\nAnswer briefly."},
                                         user("Hi"), asst("Hello!"), user("Best time to visit Rome?")]
    haiku = "Soft rain on the roof / the gutters hum their old song / puddles hold the sky"
    assert rows[haiku] == [user("Write a haiku about rain.")]  # the unanswered last human turn is dropped


def test_alpaca_empty_input_and_empty_output(store, load, tmp_path):
    report = skip(load, "alpaca.json")
    assert report.read.fmt == "alpaca" and report.counts.labels_added == 3
    [reject] = report.read.rejects
    assert (reject["line"], reject["field"], reject["reason"]) == (4, "output", "empty reply")
    rows = {r["completion"][0]["content"]: r["prompt"] for r in exported(store, tmp_path, "sft")}
    assert rows["Red."] == [user("Name a primary colour.")]
    assert rows["Où est la gare ?"] == [user("Translate the sentence into French.\n\nWhere is the station?")]


def test_ultrafeedback_keeps_every_rated_completion_for_every_pair_rule(store, load, tmp_path):
    [report] = load(REAL / "ultrafeedback.jsonl")
    assert report.read.fmt == "ultrafeedback"
    assert report.read.skipped == {"fewer than two rated completions": 2}
    assert report.counts.responses_added == 4 + 2  # the unrated completion is left out
    default = exported(store, tmp_path, "preferences", "default")
    assert sorted((r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in default) == sorted([
        ("Use my_list.reverse() in place, or my_list[::-1] for a reversed copy.", "Python lists cannot be reversed."),
        ("A VPN encrypts your traffic and sends it through a server elsewhere. Sites then see that server's address, "
         "not yours.", "It makes the internet faster."),
    ])
    assert len(exported(store, tmp_path, "preferences", "all", pairs="all", pairs_chosen=True)) == 6 + 1
    assert len(exported(store, tmp_path, "preferences", "rest", pairs="best_vs_rest")) == 3 + 1
    # Score margins of at least 3: 9-4, 9-2, 7.5-4, 7.5-2 and 8-3.
    assert len(exported(store, tmp_path, "preferences", "margin", pairs="margin", min_margin=3)) == 5
    [again] = load(REAL / "ultrafeedback.jsonl")
    assert not again.counts.added_anything


def test_ultrafeedback_distilabel_ratings_with_a_null(store, load, tmp_path):
    [report] = load(REAL / "ultrafeedback_distilabel.jsonl")
    assert report.read.fmt == "ultrafeedback" and report.counts.labels_added == 2
    rows = exported(store, tmp_path, "preferences")
    assert sorted(r["chosen"][0]["content"] for r in rows) == ["100 °C (212 °F).", "Jupiter."]


def test_trl_unpaired_rows_become_feedback_that_kto_export_reads(store, load, tmp_path):
    report = skip(load, "trl_unpaired.jsonl")
    assert (report.read.fmt, report.read.kind) == ("trl-unpaired", "unpaired")
    [reject] = report.read.rejects
    assert (reject["line"], reject["field"], reject["reason"]) == (5, "label", "bad label")
    assert store.stats()["labels_by_kind"] == {"feedback": 4}
    rows = exported(store, tmp_path, "unpaired")
    assert sorted((r["completion"][0]["content"], r["label"]) for r in rows) == [
        (" blue.", True), (" green.", False), ("It is blue.", True), ("It is green.", False)]
