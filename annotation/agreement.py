"""Inter-annotator agreement on a task's answers: percent agreement, Cohen's kappa for each pair of
annotators, Fleiss' kappa and Krippendorff's alpha (nominal) for all, and the units where annotators
disagree most, for adjudication.

A unit is one decision: a pairwise item (A better, B better, tie, both bad) or one pair of responses
inside an N-way ranking (which of the two is ranked higher). Free-text demonstrations have no units.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

Units = dict[tuple, dict[str, str]]  # unit -> {annotator: category}


def units_from_answers(answers: list[dict]) -> Units:
    units: Units = {}
    for answer in answers:
        if answer["kind"] == "preference":
            category = answer["chosen_id"] if answer["outcome"] == "chosen" else answer["outcome"]
            units.setdefault((answer["item_id"],), {})[answer["annotator"]] = category
        elif answer["kind"] == "feedback":  # thumbs on one response: the category is up or down
            units.setdefault((answer["item_id"],), {})[answer["annotator"]] = (answer["payload"] or {}).get("thumb")
        elif answer["kind"] == "ranking":
            rank = {rid: i for i, rid in enumerate(answer["ranking"])}
            for a, b in combinations(sorted(rank), 2):
                units.setdefault((answer["item_id"], a, b), {})[answer["annotator"]] = a if rank[a] < rank[b] else b
    return units


def percent_agreement(units: Units) -> float | None:
    """Share of agreeing annotator pairs, averaged over units with two or more annotators."""
    shares = []
    for votes in units.values():
        pairs = list(combinations(votes.values(), 2))
        if pairs:
            shares.append(sum(x == y for x, y in pairs) / len(pairs))
    return sum(shares) / len(shares) if shares else None


def cohen_kappa(units: Units, first: str, second: str) -> tuple[float | None, int]:
    """Cohen's kappa of two annotators over the units both answered, and how many units that is."""
    both = [(v[first], v[second]) for v in units.values() if first in v and second in v]
    n = len(both)
    if n == 0:
        return None, 0
    observed = sum(x == y for x, y in both) / n
    a, b = Counter(x for x, _ in both), Counter(y for _, y in both)
    expected = sum(a[c] * b[c] for c in a) / (n * n)
    if expected == 1:
        return (1.0 if observed == 1 else None), n
    return (observed - expected) / (1 - expected), n


def fleiss_kappa(counts: list[dict[str, int]]) -> float | None:
    """Fleiss' kappa from per-unit category counts; every unit must have the same number of raters."""
    if not counts:
        return None
    raters = sum(counts[0].values())
    if raters < 2 or any(sum(c.values()) != raters for c in counts):
        return None
    n_units = len(counts)
    p_bar = sum((sum(v * v for v in c.values()) - raters) / (raters * (raters - 1)) for c in counts) / n_units
    totals: Counter = Counter()
    for c in counts:
        totals.update(c)
    p_e = sum((t / (n_units * raters)) ** 2 for t in totals.values())
    if p_e == 1:
        return 1.0 if p_bar == 1 else None
    return (p_bar - p_e) / (1 - p_e)


def krippendorff_alpha(units: Units) -> float | None:
    """Krippendorff's alpha for nominal data; handles any number of annotators per unit."""
    coincidence: Counter = Counter()
    for votes in units.values():
        values = list(votes.values())
        m = len(values)
        if m < 2:
            continue
        for i, x in enumerate(values):
            for j, y in enumerate(values):
                if i != j:
                    coincidence[(x, y)] += 1 / (m - 1)
    n = sum(coincidence.values())
    if n <= 1:
        return None
    marginals: Counter = Counter()
    for (x, _), w in coincidence.items():
        marginals[x] += w
    observed = sum(w for (x, y), w in coincidence.items() if x != y)
    expected = sum(marginals[x] * marginals[y] for x in marginals for y in marginals if x != y) / (n - 1)
    if expected == 0:
        return 1.0 if observed == 0 else None
    return 1 - observed / expected


def report(units: Units, *, worst: int = 20) -> dict:
    """Every figure for a task, and its `worst` units by majority share (lowest first)."""
    annotators = sorted({a for votes in units.values() for a in votes})
    pairs = []
    for first, second in combinations(annotators, 2):
        kappa, n = cohen_kappa(units, first, second)
        if n:
            pairs.append({"annotators": [first, second], "kappa": kappa, "units": n})
    rated = [v for v in units.values() if len(v) >= 2]
    sizes = Counter(len(v) for v in rated)
    fleiss_raters = max(sizes, key=lambda k: (sizes[k], k)) if sizes else 0
    fleiss_units = [Counter(v.values()) for v in rated if len(v) == fleiss_raters]
    disagreements = sorted(
        ({"unit": list(unit), "votes": dict(votes), "majority_share": Counter(votes.values()).most_common(1)[0][1]
          / len(votes)} for unit, votes in units.items() if len(votes) >= 2),
        key=lambda d: (d["majority_share"], -len(d["votes"]), d["unit"]))
    return {
        "units": len(units), "units_with_overlap": len(rated), "annotators": annotators,
        "percent_agreement": percent_agreement(units),
        "cohen_kappa": pairs,
        "fleiss_kappa": {"kappa": fleiss_kappa(fleiss_units), "raters": fleiss_raters, "units": len(fleiss_units)},
        "krippendorff_alpha": krippendorff_alpha(units),
        "disagreements": [d for d in disagreements if d["majority_share"] < 1][:worst],
    }
