"""Active selection: put the items whose labels are worth most at the head of a task's queue.

Annotators' time is the scarce thing. A reward model that already ranks a pair with a wide margin learns
little from a human saying the same; a pair it can hardly tell apart (uncertainty sampling), a pair two
reward models disagree on (query by committee), or a prompt whose responses spread widely is where a label
moves it. The scores come from model versions the project trained: a reward model's score, or a policy's
own preference (mean log-prob per token of each reply), so two policy versions (SFT and DPO) can disagree
too. The order is written by the store (`Store.set_queue_order`) and the queue serves items in it.

    workbench tasks prioritize NAME --by margin --model reward-1
    workbench tasks prioritize NAME --by disagreement --model sft-1,dpo-2    (or two reward models)
    workbench tasks prioritize NAME --by variance [--model reward-1]
    workbench tasks prioritize NAME --by task-order

Every strategy returns (priority, reason) per item: higher priority is labeled first, and the reason is
shown to admins beside the item.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import combinations

from workbench.store import Store

STRATEGIES = {
    "margin": "pairs the model can hardly tell apart first (smallest score margin)",
    "disagreement": "pairs two model versions disagree on most first (query by committee)",
    "variance": "prompts whose responses vary most first (reward spread, or word overlap without a model)",
    "task-order": "back to the order the task was made with",
}
KINDS = ("pairwise", "ranking", "feedback", "review")  # demonstrations have no responses to score


class ActiveError(Exception):
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


Scorer = Callable[[list[list[dict]], list[str]], list[float]]


def version_scorer(store: Store, version_name: str) -> Scorer:
    """Score (prompt, reply) pairs with a model version of the project: a reward model's score, or for a policy
    version (SFT, DPO, KTO, PPO...) the reply's mean log-prob per token, the policy's own preference."""
    version = store.model_version(version_name)
    if version is None:
        raise ActiveError(f"--model {version_name}: no model version of that name (see `workbench stats`)")
    if version["stage"] == "reward":
        from trainers.models import load_reward_version, reward_scores

        model, tokenizer = load_reward_version(version["base_model"], version["path"])
        return lambda prompts, replies: reward_scores(model, tokenizer, prompts, replies)
    from trainers.evaluation import sequence_logps
    from trainers.generation import load_for_generation
    from workbench.generate import how_to_load

    spec = how_to_load(version)
    model, tokenizer = load_for_generation(spec["base_model"], spec["adapter"], spec["stacked_on"])
    return lambda prompts, replies: sequence_logps(model, tokenizer, prompts, replies, per_token=True)


def _score_items(items: list[dict], scorer: Scorer) -> list[list[float]]:
    prompts = [item["prompt"] for item in items for _ in item["responses"]]
    replies = [text for item in items for text in item["responses"]]
    flat = iter(scorer(prompts, replies))
    return [[next(flat) for _ in item["responses"]] for item in items]


def priorities(items: list[dict], by: str, scorers: dict[str, Scorer]) -> dict[str, tuple[float, str]]:
    """(priority, reason) for each item under strategy `by`, scoring with the named reward models."""
    names = list(scorers)
    scored = {name: _score_items(items, scorer) for name, scorer in scorers.items()}
    medians = {}  # a reward model's scores have no fixed zero: single responses are read against the median
    for name, per_item in scored.items():
        flat = sorted(s for scores in per_item for s in scores)
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


def prioritize(store: Store, task_name: str, by: str, reward_models: list[str],
               scorer_for: Callable[[Store, str], Scorer] = version_scorer) -> dict:
    """Reorder a task's queue by `by`; returns what was done and the first items with their reasons."""
    task = store.task(task_name)
    if task is None:
        raise ActiveError(f"no task named {task_name!r}: see `workbench tasks list`")
    if by not in STRATEGIES:
        raise ActiveError(f"unknown order {by!r}; choose one of {', '.join(STRATEGIES)}")
    if by == "task-order":
        store.set_queue_order(task["id"], {}, {"by": "task order"})
        return {"task": task["name"], "by": by, "prioritized": 0, "head": []}
    if task["kind"] not in KINDS:
        raise ActiveError(f"task {task['name']} is a {task['kind']} task: only tasks with responses to compare "
                          f"({', '.join(KINDS)}) can be ordered by {by}")
    wanted = {"margin": 1, "disagreement": 2}.get(by, 0)
    if by == "variance" and len(reward_models) > 1:
        raise ActiveError("--by variance uses at most one --model (none: word overlap)")
    if wanted and len(reward_models) != wanted:
        raise ActiveError(f"--by {by} needs {'one model version' if wanted == 1 else 'two model versions'}: "
                          f"--model {'VERSION' if wanted == 1 else 'A,B'}")
    if len(set(reward_models)) != len(reward_models):
        raise ActiveError("--by disagreement compares two different model versions")
    scorers = {name: scorer_for(store, name) for name in reward_models}  # unknown versions fail before scoring
    items = store.open_items_for_scoring(task["id"])
    ranked = priorities(items, by, scorers)
    how = {"by": by, "reward_models": reward_models}
    count = store.set_queue_order(task["id"], ranked, how)
    head = sorted(ranked.items(), key=lambda kv: -kv[1][0])[:5]
    return {"task": task["name"], "by": by, "reward_models": reward_models, "prioritized": count,
            "open_items": len(items), "head": [{"item": i, "priority": p, "reason": r} for i, (p, r) in head]}
