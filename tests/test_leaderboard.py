"""Leaderboard statistics against values worked out by hand or published."""

from __future__ import annotations

import math

import pytest

from annotation.leaderboard import ELO_SCALE, head_to_head, leaderboard, wilson


def votes(a: str, b: str, a_wins: int, b_wins: int, ties: int = 0, both_bad: int = 0) -> list[dict]:
    return ([{"chosen": a, "rejected": b, "outcome": "chosen"}] * a_wins
            + [{"chosen": b, "rejected": a, "outcome": "chosen"}] * b_wins
            + [{"chosen": a, "rejected": b, "outcome": "tie"}] * ties
            + [{"chosen": b, "rejected": a, "outcome": "both_bad"}] * both_bad)


def test_wilson_interval_matches_the_textbook():
    low, high = wilson(8, 10)  # Wilson 1927 / Newcombe 1998: 8 of 10 -> 0.490 .. 0.943
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(0, 20)
    assert low == 0.0 and 0.16 < high < 0.17  # 0/20 -> upper 0.161


def test_two_versions_bradley_terry_gap_is_the_log_odds_with_one_virtual_tie():
    board = leaderboard(votes("dpo", "sft", 3, 1), rounds=50)
    by = {r["version"]: r for r in board["versions"]}
    # 3 wins + half a virtual tie against 1 + half: strength ratio 3.5 / 1.5
    assert by["dpo"]["score"] - by["sft"]["score"] == pytest.approx(ELO_SCALE * math.log(3.5 / 1.5), abs=0.2)
    assert (by["dpo"]["score"] + by["sft"]["score"]) / 2 == pytest.approx(1000, abs=0.1)
    assert [r["version"] for r in board["versions"]] == ["dpo", "sft"]
    assert by["dpo"]["win_rate"] == 0.75 and by["sft"]["win_rate"] == 0.25


def test_ties_and_both_bad_are_counted_but_left_out_of_win_rates():
    board = leaderboard(votes("a", "b", 6, 2, ties=3, both_bad=1), rounds=20)
    a = next(r for r in board["versions"] if r["version"] == "a")
    assert (a["wins"], a["losses"], a["ties"], a["both_bad"], a["games"]) == (6, 2, 3, 1, 12)
    assert a["win_rate"] == 0.75
    pair = head_to_head(board, "b", "a")
    assert (pair["a_wins"], pair["b_wins"], pair["ties"], pair["both_bad"]) == (2, 6, 3, 1)  # as per version
    assert pair["a_win_rate"] == 0.25 and pair["high"] < 0.6


def test_three_versions_rank_in_order_and_intervals_hold_the_estimate():
    data = votes("good", "ok", 30, 10) + votes("ok", "bad", 30, 10) + votes("good", "bad", 36, 4)
    board = leaderboard(data, rounds=300, seed=1)
    assert [r["version"] for r in board["versions"]] == ["good", "ok", "bad"]
    for row in board["versions"]:
        assert row["score_low"] <= row["score"] <= row["score_high"]
        assert row["score_high"] - row["score_low"] > 20  # 40 votes a pair leave real uncertainty
    good_vs_bad = head_to_head(board, "good", "bad")
    assert good_vs_bad["low"] > 0.5  # clearly better: the interval lies above a coin flip
    assert leaderboard([], rounds=10)["versions"] == []
