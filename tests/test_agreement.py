"""Agreement figures against the worked examples they are usually checked with."""

from collections import Counter

import pytest

from annotation.agreement import (
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
    report,
    units_from_answers,
)


def test_cohen_kappa_matches_the_textbook_example():
    # 50 items: both yes 20, first yes / second no 5, first no / second yes 10, both no 15 -> kappa 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    units = {(i,): {"ann": a, "bob": b} for i, (a, b) in enumerate(pairs)}
    kappa, n = cohen_kappa(units, "ann", "bob")
    assert n == 50
    assert kappa == pytest.approx(0.4)


def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    counts = [{str(c): n for c, n in enumerate(row) if n} for row in table]
    assert fleiss_kappa(counts) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa([{"a": 2}, {"a": 1, "b": 2}]) is None  # raters differ per unit: not defined


def test_krippendorff_alpha_matches_krippendorffs_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units, nominal 0.743
    rows = {"A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
            "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
            "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
            "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]}
    units = {(u,): {who: str(v[u]) for who, v in rows.items() if v[u] is not None} for u in range(12)}
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_perfect_agreement_and_the_worst_units():
    answers = [
        {"kind": "preference", "item_id": "i1", "annotator": "ann", "chosen_id": "r1", "outcome": "chosen"},
        {"kind": "preference", "item_id": "i1", "annotator": "bob", "chosen_id": "r1", "outcome": "chosen"},
        {"kind": "preference", "item_id": "i2", "annotator": "ann", "chosen_id": "r3", "outcome": "chosen"},
        {"kind": "preference", "item_id": "i2", "annotator": "bob", "chosen_id": "r3", "outcome": "tie"},
        {"kind": "ranking", "item_id": "i3", "annotator": "ann", "ranking": ["x", "y", "z"]},
        {"kind": "ranking", "item_id": "i3", "annotator": "bob", "ranking": ["y", "x", "z"]},
    ]
    units = units_from_answers(answers)
    assert units[("i2",)] == {"ann": "r3", "bob": "tie"}  # a tie stays a tie
    assert units[("i3", "x", "y")] == {"ann": "x", "bob": "y"}
    assert units[("i3", "x", "z")] == {"ann": "x", "bob": "x"}
    assert percent_agreement(units) == pytest.approx(3 / 5)
    out = report(units)
    assert [d["unit"] for d in out["disagreements"]] == [["i2"], ["i3", "x", "y"]]
    assert out["fleiss_kappa"]["raters"] == 2 and out["fleiss_kappa"]["units"] == 5
    assert Counter(p["units"] for p in out["cohen_kappa"]) == {5: 1}
