"""Rankings to pairs: each rule on hand-made rankings with known pairs, ties dropped or kept, per-pair
label smoothing from known vote splits, and the card saying which rule made the data."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from workbench.cli import main
from workbench.exporters import ExportError, export
from workbench.store import ExportFilters


def _prompt(store, pid: str, responses: list[str]) -> None:
    con = store.cursor()
    con.execute("INSERT INTO prompts (id, messages, source) VALUES (?, ?, 'test')",
                [pid, [{"role": "user", "content": f"question {pid}"}]])
    for rid in responses:
        con.execute("INSERT INTO responses (id, prompt_id, text, origin, source) VALUES (?, ?, ?, 'person', 'test')",
                    [rid, pid, f"answer {rid}"])


def _ranking(store, lid: str, pid: str, ranking: list[str], payload: dict | None = None, who: str = "alice") -> None:
    store.cursor().execute(
        "INSERT INTO labels (id, kind, prompt_id, ranking, payload, annotator, source) "
        "VALUES (?, 'ranking', ?, ?, ?, ?, 'ui')", [lid, pid, ranking, json.dumps(payload) if payload else None, who])


def _vote(store, who: str, pid: str, chosen: str, rejected: str, outcome: str = "chosen") -> None:
    store.add_preference(prompt_id=pid, chosen_id=chosen, rejected_id=rejected, annotator=who,
                         client_id=f"{who}-{pid}-{chosen}-{rejected}", outcome=outcome,
                         created_at=datetime(2026, 3, 1))


@pytest.fixture
def ranked(store, load, tmp_path):
    _prompt(store, "r1", ["A", "B", "C", "D"])
    _ranking(store, "l1", "r1", ["A", "B", "C", "D"])  # a plain 4-way ranking, best first
    _prompt(store, "r2", ["E", "F", "G"])
    _ranking(store, "l2", "r2", ["E", "F", "G"], {"scores": [9, 8, 5]})  # rated responses
    _prompt(store, "r3", ["H", "I", "J"])
    _ranking(store, "l3", "r3", ["H", "I", "J"], {"ranks": [1, 1, 2]})  # H and I tied for best
    _prompt(store, "p1", ["K", "L"])
    _vote(store, "alice", "p1", "K", "L")  # a pairwise vote, no score
    src = tmp_path / "scored.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"prompt": "scored wide", "chosen": "nine", "rejected": "two", "score_chosen": 9, "score_rejected": 2},
        {"prompt": "scored narrow", "chosen": "eight", "rejected": "seven and a half",
         "score_chosen": 8, "score_rejected": 7.5}]))
    load(src)
    return store


def pairs_of(store, tmp_path, name: str, **filters) -> set[tuple[str, str]]:
    out = tmp_path / name
    export(store, kind="preferences", out_dir=out, style="standard", filters=ExportFilters(**filters))
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return {(r["chosen"].removeprefix("answer "), r["rejected"].removeprefix("answer ")) for r in rows}


SCORED = {("nine", "two"), ("eight", "seven and a half")}


@pytest.mark.parametrize("filters,expected", [
    ({}, {("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"), ("C", "D"),
          ("E", "F"), ("E", "G"), ("F", "G"), ("H", "J"), ("I", "J"), ("K", "L")} | SCORED),
    ({"pairs": "best_vs_rest"}, {("A", "B"), ("A", "C"), ("A", "D"), ("E", "F"), ("E", "G"),
                                 ("H", "J"), ("I", "J"), ("K", "L")} | SCORED),
    ({"pairs": "best_vs_worst"}, {("A", "D"), ("E", "G"), ("H", "J"), ("I", "J"), ("K", "L")} | SCORED),
    # rank gap for the unscored ranking, score margin for the rated one and the scored pairs; an unscored
    # pairwise vote has no margin and is left out
    ({"pairs": "margin", "min_margin": 2}, {("A", "C"), ("A", "D"), ("B", "D"), ("E", "G"), ("F", "G"),
                                            ("nine", "two")}),
    ({"pairs": "margin", "min_margin": 4}, {("E", "G"), ("nine", "two")}),
    ({"pairs": "margin", "min_margin": 0.5}, {("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D"),
                                              ("C", "D"), ("E", "F"), ("E", "G"), ("F", "G"), ("H", "J"),
                                              ("I", "J")} | SCORED),
])
def test_each_pair_rule_gives_the_expected_pairs(ranked, tmp_path, filters, expected):
    assert pairs_of(ranked, tmp_path, "out", **filters) == expected


def test_ties_are_dropped_or_kept_as_marked_rows(ranked, tmp_path):
    _vote(ranked, "bob", "p1", "K", "L", outcome="both_bad")
    _vote(ranked, "cid", "p1", "K", "L", outcome="tie")  # p1: 1 win, 2 ties: a tie
    assert ("H", "I") not in pairs_of(ranked, tmp_path, "dropped")
    out = tmp_path / "kept"
    export(ranked, kind="preferences", out_dir=out, style="standard", filters=ExportFilters(ties="keep"))
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    ties = {(r["chosen"], r["rejected"]): r for r in rows if r["tie"]}
    assert set(ties) == {("answer H", "answer I"), ("answer K", "answer L")}
    assert {r["label_smoothing"] for r in ties.values()} == {0.5}
    assert all(r["label_smoothing"] == 0.0 for r in rows if not r["tie"])  # one vote each: unanimous


def test_label_smoothing_is_the_share_of_votes_against_the_winner(store, tmp_path):
    splits = {"q32": (3, 2), "q50": (5, 0), "q41t": (4, 1)}
    for pid, (wins, losses) in splits.items():
        _prompt(store, pid, [f"{pid}-good", f"{pid}-bad"])
        for n in range(wins):
            _vote(store, f"w{n}", pid, f"{pid}-good", f"{pid}-bad")
        for n in range(losses):
            outcome = "tie" if pid.endswith("t") else "chosen"
            pair = (f"{pid}-good", f"{pid}-bad") if outcome == "tie" else (f"{pid}-bad", f"{pid}-good")
            _vote(store, f"l{n}", pid, *pair, outcome=outcome)
    out = tmp_path / "smooth"
    export(store, kind="preferences", out_dir=out, style="standard", filters=ExportFilters(smoothing=True))
    rows = {r["chosen"]: r["label_smoothing"]
            for r in map(json.loads, (out / "train.jsonl").read_text().splitlines())}
    assert rows == {"answer q32-good": pytest.approx(0.4), "answer q50-good": 0.0, "answer q41t-good": pytest.approx(0.2)}
    plain = tmp_path / "plain"
    export(store, kind="preferences", out_dir=plain, style="standard")
    assert set(json.loads((plain / "train.jsonl").read_text().splitlines()[0])) == {"prompt", "chosen", "rejected"}


def test_the_card_says_which_rule_made_the_data_and_what_each_item_gave(ranked, tmp_path):
    out = tmp_path / "card"
    result = export(ranked, kind="preferences", out_dir=out, filters=ExportFilters(pairs="best_vs_worst"))
    card = (out / "README.md").read_text()
    assert "pair rule: `best_vs_worst` (the best response against the worst only); ties: dropped" in card
    meta = json.loads(card.split("```json", 1)[1].split("```", 1)[0])
    # r1: 6 candidate pairs, A-D kept; r2: 3, E-G kept; r3: 3, H-J and I-J kept (H-I both best: not taken);
    # the pairwise vote and the two scored pairs are each their own best and worst
    assert meta["pairs"]["fates"] == {"kept": 7, "pair rule": 8}
    assert meta["pairs"]["per_prompt"] == {"1": 5, "2": 1}
    assert result.pairs["rule"] == "best_vs_worst"
    assert "rows per prompt: 5 prompts gave 1, 1 prompt gave 2" in card


def test_bad_pair_options_are_refused(ranked, tmp_path):
    with pytest.raises(ExportError, match="unknown pair rule"):
        export(ranked, kind="preferences", out_dir=tmp_path / "a", filters=ExportFilters(pairs="best"))
    with pytest.raises(ExportError, match="contradict"):
        export(ranked, kind="preferences", out_dir=tmp_path / "b", filters=ExportFilters(ties="keep", exclude_ties=True))
    with pytest.raises(ExportError, match="not sft"):
        export(ranked, kind="sft", out_dir=tmp_path / "c", filters=ExportFilters(pairs="best_vs_rest"))


def test_cli_export_takes_the_rule_and_reports_what_it_kept(project, tmp_path, capsys):
    from workbench.store import Store

    with Store.open(project.store_path) as store:
        _prompt(store, "r1", ["A", "B", "C", "D"])
        _ranking(store, "l1", "r1", ["A", "B", "C", "D"])
        _prompt(store, "r3", ["H", "I", "J"])
        _ranking(store, "l3", "r3", ["H", "I", "J"], {"ranks": [1, 1, 2]})
    out = tmp_path / "cli"
    assert main(["export", "-p", str(project.root), "--kind", "preferences", "--out", str(out),
                 "--pairs", "best_vs_rest", "--ties", "keep"]) == 0
    printed = capsys.readouterr().out
    assert "pairs (best_vs_rest, ties keep): kept: 5, left out by the pair rule: 3, tied" in printed
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert sorted(r["tie"] for r in rows) == [False] * 5 + [True]
    assert main(["export", "-p", str(project.root), "--kind", "preferences", "--out", str(tmp_path / "bad"),
                 "--pairs", "margin", "--min-margin", "0"]) == 2
    assert "--min-margin must be above 0" in capsys.readouterr().err
