"""The leaderboard of model versions from blind A/B votes, as Chatbot Arena reports it: per version, the
win rate with a 95% Wilson interval, and Bradley-Terry scores on the Elo scale with bootstrap intervals;
per pair of versions, the head-to-head win rate.

Ties and 'both bad' are counted and shown; win rates leave them out (wins / (wins + losses)), and
Bradley-Terry counts each as half a win for both sides, as FastChat does. Each pair of versions that met
also gets one virtual tie, so a version that never won has a finite score (a weak prior towards equal).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

Z95 = 1.959963984540054
ELO_SCALE = 400 / math.log(10)  # a 400-point gap = 10:1 odds, as in Elo
CENTER = 1000.0


def wilson(wins: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at small n and near 0 or 1, unlike the normal
    approximation); (0, 1) when there are no games."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _matrix(votes: list[dict], versions: list[str]) -> np.ndarray:
    """wins[i, j]: how often i beat j, ties counting half to each."""
    index = {v: i for i, v in enumerate(versions)}
    wins = np.zeros((len(versions), len(versions)))
    for vote in votes:
        a, b = index[vote["chosen"]], index[vote["rejected"]]
        if vote["outcome"] == "chosen":
            wins[a, b] += 1
        else:
            wins[a, b] += 0.5
            wins[b, a] += 0.5
    return wins


def bradley_terry(wins: np.ndarray, *, iterations: int = 200, tolerance: float = 1e-9) -> np.ndarray:
    """Bradley-Terry strengths by Hunter's MM algorithm, as Elo-scale scores centred on 1000."""
    games = wins + wins.T
    met = games > 0
    wins = wins + 0.5 * met  # one virtual tie per pair that met
    games = wins + wins.T
    n = len(wins)
    strength = np.ones(n)
    total_wins = wins.sum(axis=1)
    for _ in range(iterations):
        denominators = (games / (strength[:, None] + strength[None, :] + 1e-300)).sum(axis=1)
        updated = np.where(denominators > 0, total_wins / np.maximum(denominators, 1e-300), strength)
        updated /= np.exp(np.mean(np.log(np.maximum(updated, 1e-300))))
        if np.max(np.abs(updated - strength)) < tolerance:
            strength = updated
            break
        strength = updated
    scores = ELO_SCALE * np.log(np.maximum(strength, 1e-300))
    return scores - scores.mean() + CENTER


def leaderboard(votes: list[dict], *, rounds: int = 1000, seed: int = 0) -> dict:
    """Rows per version (best first) and per pair of versions, from votes with `chosen`, `rejected` (the
    versions shown) and `outcome` ('chosen', 'tie' or 'both_bad')."""
    votes = [v for v in votes if v["chosen"] and v["rejected"] and v["chosen"] != v["rejected"]]
    versions = sorted({v["chosen"] for v in votes} | {v["rejected"] for v in votes})
    if not versions:
        return {"versions": [], "pairs": [], "votes": 0, "rounds": rounds}
    scores = bradley_terry(_matrix(votes, versions))
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(versions)))
    for r in range(rounds):  # resample votes with replacement, refit
        picked = rng.integers(0, len(votes), len(votes))
        samples[r] = bradley_terry(_matrix([votes[i] for i in picked], versions))
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    tally: dict[str, dict[str, int]] = defaultdict(lambda: {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0})
    pair_tally: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"wins": 0, "losses": 0, "ties": 0, "both_bad": 0})
    for vote in votes:
        winner, loser = vote["chosen"], vote["rejected"]
        first, second = sorted((winner, loser))
        if vote["outcome"] == "chosen":
            tally[winner]["wins"] += 1
            tally[loser]["losses"] += 1
            pair_tally[(first, second)]["wins" if winner == first else "losses"] += 1
        else:
            key = "both_bad" if vote["outcome"] == "both_bad" else "ties"
            tally[winner][key] += 1
            tally[loser][key] += 1
            pair_tally[(first, second)][key] += 1  # a pair's ties and both-bad counted apart, as per version
    rows = []
    for i, version in enumerate(versions):
        t = tally[version]
        decided = t["wins"] + t["losses"]
        wlow, whigh = wilson(t["wins"], decided)
        rows.append({"version": version, "score": round(float(scores[i]), 1), "score_low": round(float(low[i]), 1),
                     "score_high": round(float(high[i]), 1), "games": decided + t["ties"] + t["both_bad"], **t,
                     "win_rate": t["wins"] / decided if decided else None, "win_low": wlow, "win_high": whigh})
    rows.sort(key=lambda r: -r["score"])
    pairs = []
    for (a, b), t in sorted(pair_tally.items()):
        decided = t["wins"] + t["losses"]
        plow, phigh = wilson(t["wins"], decided)
        pairs.append({"a": a, "b": b, "a_wins": t["wins"], "b_wins": t["losses"], "ties": t["ties"],
                      "both_bad": t["both_bad"], "a_win_rate": t["wins"] / decided if decided else None, "low": plow, "high": phigh})
    return {"versions": rows, "pairs": pairs, "votes": len(votes), "rounds": rounds}


def head_to_head(board: dict, a: str, b: str) -> dict | None:
    """The pair row read from `a`'s side: a's wins, b's wins, ties, both bad, a's win rate and its interval."""
    for pair in board["pairs"]:
        if (pair["a"], pair["b"]) == (a, b):
            return pair
        if (pair["a"], pair["b"]) == (b, a):
            rate = pair["b_wins"] / (pair["a_wins"] + pair["b_wins"]) if pair["a_wins"] + pair["b_wins"] else None
            return {"a": a, "b": b, "a_wins": pair["b_wins"], "b_wins": pair["a_wins"], "ties": pair["ties"],
                    "both_bad": pair["both_bad"], "a_win_rate": rate, "low": 1 - pair["high"], "high": 1 - pair["low"]}
    return None
