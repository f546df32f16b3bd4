"""Active selection: put the items whose labels are worth most at the head of a task's queue.

Annotators' time is the scarce thing. A reward model that already ranks a pair with a wide margin learns
little from a human saying the same; a pair it can hardly tell apart (uncertainty sampling), a pair two
reward models disagree on (query by committee), or a prompt whose responses spread widely is where a label
moves it. The scores come from model versions the project trained: a reward model's score, or a policy's
own preference (mean log-prob per token of each reply), so two policy versions (SFT and DPO) can disagree
too. The order is written by the store (`Store.set_queue_order`) and the queue serves items in it.

This module is the maths only: the scores come in. A model scores in a scoring job's own process
(trainers/scoring.py, run by workbench/scoring.py), so nothing here loads a model or imports trainers/.

    workbench tasks prioritize NAME --by margin --model reward-1
    workbench tasks prioritize NAME --by disagreement --model sft-1,dpo-2    (or two reward models)
    workbench tasks prioritize NAME --by variance [--model reward-1]
    workbench tasks prioritize NAME --by task-order

Every strategy returns (priority, reason) per item: higher priority is labeled first, and the reason is
shown to admins beside the item.
"""

from __future__ import annotations

import math
from itertools import combinations

from workbench.errors import WorkbenchError
from workbench.store import ModelVersion, Store, Task

STRATEGIES = {
    "margin": "pairs the model can hardly tell apart first (smallest score margin)",
    "disagreement": "pairs two model versions disagree on most first (query by committee)",
    "variance": "prompts whose responses vary most first (reward spread, or word overlap without a model)",
    "task-order": "back to the order the task was made with",
}
KINDS = ("pairwise", "ranking", "feedback", "review")  # demonstrations have no responses to score


class ActiveError(WorkbenchError):
    """A prioritization that cannot run; the message says why and what to do."""


def _letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def _snippets(responses: list[str], words: int = 6) -> list[str]:
    """Name responses by their opening words: annotators (admins too) see them under letters shuffled per
    person, so a stored "A" would point at the wrong one."""
    out = []
    for text in responses:
        head = text.split()
        out.append('"' + " ".join(head[:words]) + ("..." if len(head) > words else "") + '"')
    return out


def margin_priority(scores: list[float], model: str, center: float = 0.0,
                    names: list[str] | None = None) -> tuple[float, str]:
    """The smallest score gap between any two of the item's responses: the pair the model is least sure of.
    A single response (feedback) is scored by its distance from `center` (a reward model's scores have no
    fixed zero, so callers pass the median score of the task's responses)."""
    if len(scores) == 1:
        gap = abs(scores[0] - center)
        return -gap, f"{model} scores the response {gap:.3f} from the task's median: close to undecided"
    names = names or _letters(len(scores))
    gap, i, j = min((abs(scores[i] - scores[j]), i, j) for i, j in combinations(range(len(scores)), 2))
    return -gap, f"{model} margin {gap:.3f} between {names[i]} and {names[j]}"


def _p_first(scores: list[float], i: int, j: int) -> float:
    """Bradley-Terry: the probability that response i beats response j under these rewards."""
    return 1.0 / (1.0 + math.exp(-(scores[i] - scores[j])))


def disagreement_priority(a: list[float], b: list[float], models: tuple[str, str],
                          names: list[str] | None = None) -> tuple[float, str]:
    """The largest gap between two reward models' win probabilities over the item's pairs."""
    if len(a) == 1:
        pa, pb = 1 / (1 + math.exp(-a[0])), 1 / (1 + math.exp(-b[0]))
        return abs(pa - pb), f"{models[0]} says good with p={pa:.2f}, {models[1]} p={pb:.2f}"
    names = names or _letters(len(a))
    gap, i, j = max((abs(_p_first(a, i, j) - _p_first(b, i, j)), i, j) for i, j in combinations(range(len(a)), 2))
    return gap, (f"{models[0]} gives {names[i]} over {names[j]} p={_p_first(a, i, j):.2f}, "
                 f"{models[1]} p={_p_first(b, i, j):.2f}")


def variance_priority(scores: list[float], model: str) -> tuple[float, str]:
    """The spread (standard deviation) of the reward model's scores over the item's responses."""
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return spread, f"{model} scores spread {spread:.3f} across {len(scores)} responses"


def _words(text: str) -> set[str]:
    return set(text.lower().split())


def lexical_variance_priority(responses: list[str]) -> tuple[float, str]:
    """Without a model: how little the responses share, as 1 - mean Jaccard overlap of their words."""
    pairs = list(combinations(responses, 2))
    if not pairs:
        return 0.0, "one response: nothing to compare"
    distance = sum(1 - len(_words(x) & _words(y)) / max(len(_words(x) | _words(y)), 1) for x, y in pairs) / len(pairs)
    return distance, f"responses share {1 - distance:.0%} of their words"


Scores = dict[str, dict[str, list[float]]]  # model version -> item id -> one score per response, in item order


def priorities(items: list[dict], by: str, scores: Scores) -> dict[str, tuple[float, str]]:
    """(priority, reason) for each item under strategy `by`, from the named model versions' scores."""
    names = list(scores)
    scored = {name: [per_item.get(item["id"], []) for item in items] for name, per_item in scores.items()}
    medians = {}  # a reward model's scores have no fixed zero: single responses are read against the median
    for name, per_item in scored.items():
        flat = sorted(s for item_scores in per_item for s in item_scores)
        medians[name] = flat[len(flat) // 2] if flat else 0.0
    out = {}
    for k, item in enumerate(items):
        if not item["responses"]:
            continue
        if by == "margin":
            out[item["id"]] = margin_priority(scored[names[0]][k], names[0], medians[names[0]],
                                              _snippets(item["responses"]))
        elif by == "disagreement":
            a, b = scored[names[0]][k], scored[names[1]][k]
            if len(a) == 1:
                a, b = [a[0] - medians[names[0]]], [b[0] - medians[names[1]]]
            out[item["id"]] = disagreement_priority(a, b, (names[0], names[1]), _snippets(item["responses"]))
        elif names:
            out[item["id"]] = variance_priority(scored[names[0]][k], names[0])
        else:
            out[item["id"]] = lexical_variance_priority(item["responses"])
    return out


def needs_scores(by: str, models: list[str]) -> bool:
    """Whether an order needs model versions to score the items (a scoring job) or is worked out at once."""
    return by != "task-order" and bool(models)


def _check_order(store: Store, task_name: str, by: str, models: list[str]) -> Task:
    task = store.task(task_name)
    if task is None:
        raise ActiveError(f"no task named {task_name!r}: see `workbench tasks list`")
    if by not in STRATEGIES:
        raise ActiveError(f"unknown order {by!r}; choose one of {', '.join(STRATEGIES)}")
    if by == "task-order":
        return task
    if task.kind not in KINDS:
        raise ActiveError(f"task {task.name} is a {task.kind} task: only tasks with responses to compare "
                          f"({', '.join(KINDS)}) can be ordered by {by}")
    wanted = {"margin": 1, "disagreement": 2}.get(by, 0)
    if by == "variance" and len(models) > 1:
        raise ActiveError("--by variance uses at most one --model (none: word overlap)")
    if wanted and len(models) != wanted:
        raise ActiveError(f"--by {by} needs {'one model version' if wanted == 1 else 'two model versions'}: "
                          f"--model {'VERSION' if wanted == 1 else 'A,B'}")
    if len(set(models)) != len(models):
        raise ActiveError("--by disagreement compares two different model versions")
    return task


def check_request(store: Store, task_name: str, by: str, models: list[str]) -> tuple[Task, list[ModelVersion]]:
    """The task and the model versions that would score it, or ActiveError saying what is wrong: a scoring job
    checks this before it writes anything or loads a model."""
    task = _check_order(store, task_name, by, models)
    versions = []
    for name in models if by != "task-order" else []:
        version = store.model_version(name)
        if version is None:
            raise ActiveError(f"--model {name}: no model version of that name (see `workbench stats`)")
        versions.append(version)
    return task, versions


def prioritize(store: Store, task_name: str, by: str, models: list[str], scores: Scores | None = None,
               items: list[dict] | None = None) -> dict:
    """Reorder a task's queue by `by`, from each model's `scores` of `items` (by default the task's open items
    now; a scoring job passes the items it scored); returns what was done and the first items with reasons."""
    task = _check_order(store, task_name, by, models)
    if by == "task-order":
        store.set_queue_order(task.id, {}, {"by": "task order"})
        return {"task": task.name, "by": by, "prioritized": 0, "head": []}
    scores = scores or {}
    if set(scores) != set(models):
        raise ActiveError(f"scores from {', '.join(sorted(scores)) or 'no model'}, but the order names "
                          f"{', '.join(models) or 'no model'}")
    items = store.open_items_for_scoring(task.id) if items is None else items
    ranked = priorities(items, by, {name: scores[name] for name in models})
    how = {"by": by, "reward_models": models}
    count = store.set_queue_order(task.id, ranked, how)
    head = sorted(ranked.items(), key=lambda kv: -kv[1][0])[:5]
    return {"task": task.name, "by": by, "reward_models": models, "prioritized": count,
            "open_items": len(items), "head": [{"item": i, "priority": p, "reason": r} for i, (p, r) in head]}
