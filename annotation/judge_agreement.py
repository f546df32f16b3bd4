"""How far a task's model judges agree with its people, and where people are needed most.

Per judge: agreement with the human majority (percent and Cohen's kappa) on the units both answered, set
against the ceiling (the people's own agreement with each other: a judge cannot be held to more), and its
position-bias rate (verdicts that flipped when the responses swapped places). Units are those of
annotation.agreement: a pairwise or feedback item, or one pair of responses inside a ranking.

The queue order serves first the items where a judge is unsure (a low probability, a flipped or unread verdict)
or where judges disagree with each other; items with a verdict an admin accepted go last.
"""

from __future__ import annotations

from collections import Counter
from statistics import mean

from annotation.agreement import Units, cohen_kappa, report, units_from_answers
from workbench.store.judges import VERDICT_KINDS


def as_answers(judgements: list[dict]) -> list[dict]:
    """Judge verdicts as the answers they stand for (annotator: the judge), for annotation.agreement."""
    return [{**j, "kind": j["payload"]["as"]} for j in judgements if j["payload"].get("as") in VERDICT_KINDS]


def human_majority(units: Units) -> dict[tuple, str]:
    """Each unit's majority category among people; a unit whose votes tie at the top has none."""
    out = {}
    for unit, votes in units.items():
        top = Counter(votes.values()).most_common(2)
        if top and (len(top) == 1 or top[0][1] > top[1][1]):
            out[unit] = top[0][0]
    return out


def by_place(units: Units, response_ids: dict[str, list[str]] | None) -> Units:
    """Categories as places, not response ids: a pairwise or feedback item's winner as its place among the
    item's responses, a ranking pair's as 'first' or 'second' of the pair. With ids every item has its own
    categories, chance agreement is nil and kappa reads as percent; with places kappa corrects for chance."""
    if response_ids is None:
        return units
    out: Units = {}
    for unit, votes in units.items():
        if len(unit) == 3:
            out[unit] = {w: ("first" if c == unit[1] else "second") for w, c in votes.items()}
            continue
        ids = response_ids.get(unit[0], [])
        out[unit] = {w: (f"response {ids.index(c) + 1}" if c in ids else c) for w, c in votes.items()}
    return out


def judge_report(human_answers: list[dict], judgements: list[dict],
                 response_ids: dict[str, list[str]] | None = None) -> dict:
    """Every judge's figures on a task, and the people's ceiling; `response_ids` (item id -> its responses)
    compares places rather than ids (see `by_place`)."""
    humans = by_place(units_from_answers(human_answers), response_ids)
    majority = human_majority(humans)
    ceiling = report(humans, worst=0)
    kappas = [p["kappa"] for p in ceiling["cohen_kappa"] if p["kappa"] is not None]
    out = {"human_units": len(humans), "human_majority_units": len(majority),
           "ceiling": {"percent": ceiling["percent_agreement"], "cohen_kappa": mean(kappas) if kappas else None,
                       "units_with_overlap": ceiling["units_with_overlap"]},
           "judges": []}
    for judge in sorted({j["annotator"] for j in judgements}):
        mine = [j for j in judgements if j["annotator"] == judge]
        units = by_place(units_from_answers(as_answers(mine)), response_ids)
        both = {u: {"humans": majority[u], "judge": votes[judge]} for u, votes in units.items() if u in majority}
        agree = sum(v["humans"] == v["judge"] for v in both.values())
        kappa, n = cohen_kappa(both, "humans", "judge")
        kinds = Counter(j["payload"].get("as") for j in mine)
        ordered = kinds["preference"] + kinds["ranking"] + kinds["inconsistent"]
        out["judges"].append({
            "judge": judge, "items": len(mine), "verdicts": sum(kinds[k] for k in VERDICT_KINDS),
            "inconsistent": kinds["inconsistent"], "abstained": kinds["abstain"],
            "accepted": sum(1 for j in mine if j["payload"].get("accepted_by")),
            "position_bias_rate": kinds["inconsistent"] / ordered if ordered else None,
            "units_with_humans": n, "percent": agree / n if n else None, "cohen_kappa": kappa})
    return out


def _sureness(judgement: dict) -> tuple[float, str]:
    """(how unsure, why) of one verdict: 1 for a flip or no verdict, else 1 - its probability (0.5 unknown)."""
    p = judgement["payload"]
    name = judgement["annotator"]
    if p.get("as") == "inconsistent":
        return 1.0, f"{name} flipped with the order"
    if p.get("as") not in VERDICT_KINDS:
        return 1.0, f"{name} gave no verdict"
    prob = p.get("probability")
    return (0.5, f"{name} gave no probability") if prob is None else (1 - prob, f"{name} p={prob:.2f}")


def priorities(open_items: list[str], judgements: list[dict]) -> dict[str, tuple[float, str]]:
    """Queue priorities (highest first) for a task's open items: where judges disagree (1 + the share against
    the most common verdict), then the least sure verdict, then items no judge answered (0.5), and items with
    an accepted verdict last (-1)."""
    by_item: dict[str, list[dict]] = {}
    for j in judgements:
        by_item.setdefault(j["item_id"], []).append(j)
    out = {}
    for item in open_items:
        mine = by_item.get(item, [])
        if any(j["payload"].get("accepted_by") for j in mine):
            out[item] = (-1.0, "judge verdict accepted")
            continue
        if not mine:
            out[item] = (0.5, "no judge verdict")
            continue
        said = Counter(_category(j) for j in mine if j["payload"].get("as") in VERDICT_KINDS)
        if len(said) > 1:
            against = 1 - said.most_common(1)[0][1] / sum(said.values())
            out[item] = (1.0 + against, "judges disagree: " + ", ".join(
                f"{j['annotator']} {_category(j)}" for j in mine if j["payload"].get("as") in VERDICT_KINDS))
            continue
        out[item] = max((_sureness(j) for j in mine), key=lambda s: s[0])
    return out


def _category(judgement: dict) -> str:
    p = judgement["payload"]
    if p["as"] == "feedback":
        return p["thumb"]
    if p["as"] == "ranking":
        return ">".join(r[:8] for r in judgement["ranking"])
    return judgement["chosen_id"][:8] if judgement["outcome"] == "chosen" else judgement["outcome"]


def confident(judgements: list[dict], min_probability: float) -> list[str]:
    """The verdicts an admin's bulk accept takes: a verdict (never a flip or an abstention), not yet accepted,
    with a probability of at least `min_probability`."""
    return [j["id"] for j in judgements if j["payload"].get("as") in VERDICT_KINDS
            and not j["payload"].get("accepted_by") and (j["payload"].get("probability") or 0) >= min_probability]


def order_by_judges(store, task_id: str) -> tuple[int, list[tuple[str, str]]]:
    """Order a task's queue by judge doubt (`priorities`), in one transaction: (open items ordered, the first
    five as (item id, reason)). `workbench judges prioritize` and the Tasks tab."""
    ranked = priorities([i["id"] for i in store.open_items_for_scoring(task_id)], store.judgements(task_id))
    store.set_queue_order(task_id, ranked, {"by": "judges"})
    return len(ranked), [(item, reason) for item, (_, reason) in sorted(ranked.items(), key=lambda kv: -kv[1][0])[:5]]


def accept_confident(store, task_id: str, judge: str, min_probability: float, accepted_by: str) -> tuple[int, int]:
    """Accept in bulk the verdicts of `judge` on a task with at least `min_probability` (recorded as accepted by
    `accepted_by`, never as a person's vote): (accepted, the judge's verdicts on the task)."""
    mine = [j for j in store.judgements(task_id) if j["annotator"] == f"judge:{judge}"]
    return store.accept_judgements(confident(mine, min_probability), accepted_by=accepted_by), len(mine)
