"""Model judges' bookkeeping, plain Python: what a judge is asked (its template filled in, both ways round),
and how its replies become verdicts.

A prompted judge (an OpenAI-compatible endpoint, or a policy version or the base model run in a job) reads
the admin's template with the prompt and the responses filled in. A pairwise question is asked twice, the
responses swapped the second time: a verdict that flips with the order is position bias, stored as
'inconsistent', never as a preference. A reward-model judge scores each response once; its verdict is the
higher score, its probability the Bradley-Terry sigmoid of the margin, and it has no order to flip.

    workbench judges add gpt --endpoint http://localhost:8000/v1 --model NAME --api-key-env OPENAI_API_KEY
    workbench judge compare --judge gpt        # runs a judging job: trainers/judging.py asks, this reads
"""

from __future__ import annotations

import hashlib
import math
import re
from itertools import combinations, permutations

from workbench.errors import WorkbenchError

JUDGED_TASK_KINDS = ("pairwise", "ranking", "feedback")

PAIRWISE_TEMPLATE = """You are judging two assistant responses to the same user message.
Which response is more helpful, correct and polite? Reply with one letter: A or B (or "tie" if they are equal).

[User]
{prompt}

[Response A]
{a}

[Response B]
{b}

Answer (A, B or tie):"""

POINTWISE_TEMPLATE = """You are judging an assistant response to a user message.
Is the response helpful, correct and polite? Reply with one word: good or bad.

[User]
{prompt}

[Response]
{response}

Answer (good or bad):"""

FIELDS = {"pairwise": ("{prompt}", "{a}", "{b}"), "pointwise": ("{prompt}", "{response}")}


class JudgeError(WorkbenchError):
    """A judge or a judging request that cannot work; the message says why."""


def check_template(mode: str, template: str) -> str:
    """A template must name every field its mode fills in (else the judge would answer without seeing it)."""
    missing = [f for f in FIELDS[mode] if f not in template]
    if missing:
        raise JudgeError(f"the {mode} template lacks {', '.join(missing)}: a {mode} template fills in "
                         f"{', '.join(FIELDS[mode])}")
    return template


def template_hash(text: str) -> str:
    """Stored with every verdict, so verdicts of an edited template are told apart (12 hex digits)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def judge_template_hash(judge: dict, task_kind: str) -> str:
    """The hash a judge's verdicts on a task of this kind carry: its template's, or a reward model's version."""
    if judge["kind"] == "reward":
        return template_hash("reward:" + judge["config"]["version"])
    return template_hash(template_for(judge, task_kind))


def template_for(judge: dict, task_kind: str) -> str:
    mode = "pointwise" if task_kind == "feedback" else "pairwise"
    return judge["config"].get(f"{mode}_template") or (POINTWISE_TEMPLATE if mode == "pointwise"
                                                       else PAIRWISE_TEMPLATE)


def chat_text(prompt: list[dict]) -> str:
    """A chat as the judge reads it inside the template: one 'role: text' paragraph per turn."""
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        return prompt[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def _fill(template: str, values: dict[str, str]) -> str:
    """Fill the fields in one pass, so a response that itself contains '{b}' is never filled in again."""
    return re.sub(r"\{(prompt|a|b|response)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def requests_for(judge: dict, task_kind: str, items: list[dict]) -> list[dict]:
    """Every question a judging job asks: for a reward judge one scoring request per item; for a prompted judge
    one chat per ordered pair of responses (pairwise and ranking: both ways round) or per response (feedback).
    A request's id is 'item|i|j' (response i shown as A, j as B) or 'item|i'."""
    if task_kind not in JUDGED_TASK_KINDS:
        raise JudgeError(f"judges answer {', '.join(JUDGED_TASK_KINDS)} tasks, not {task_kind} tasks")
    if judge["kind"] == "reward":
        return [{"id": item["id"], "prompt": item["prompt"], "responses": item["responses"]} for item in items]
    template = template_for(judge, task_kind)
    out = []
    for item in items:
        prompt, texts = chat_text(item["prompt"]), item["responses"]
        if task_kind == "feedback":
            out += [{"id": f"{item['id']}|{i}", "messages": [
                {"role": "user", "content": _fill(template, {"prompt": prompt, "response": t})}]}
                for i, t in enumerate(texts)]
            continue
        for i, j in permutations(range(len(texts)), 2):
            out.append({"id": f"{item['id']}|{i}|{j}", "messages": [
                {"role": "user", "content": _fill(template, {"prompt": prompt, "a": texts[i], "b": texts[j]})}]})
    return out


def read_pairwise(reply: str) -> str | None:
    """'A', 'B' or 'tie' from a judge's reply (the first one it names), None when it names none."""
    match = re.search(r"\b(A|B|tie|Tie|TIE)\b", reply or "")
    return None if match is None else ("tie" if match.group(1).lower() == "tie" else match.group(1))


def read_pointwise(reply: str) -> str | None:
    """'up' or 'down' from a pointwise reply ('good'/'bad', 'yes'/'no'), None when it says neither."""
    match = re.search(r"\b(good|bad|yes|no)\b", (reply or "").lower())
    return None if match is None else ("up" if match.group(1) in ("good", "yes") else "down")


def both_ways(first: str | None, second: str | None, i: int, j: int) -> int | str | None:
    """The verdict on responses i and j from the answer with i shown as A (`first`) and the answer with j shown
    as A (`second`): the winner's index, 'tie', 'inconsistent' when the verdict followed the position rather
    than the response, None when either reply named no verdict."""
    if first is None or second is None:
        return None
    one = {"A": i, "B": j, "tie": "tie"}[first]
    two = {"A": j, "B": i, "tie": "tie"}[second]
    return one if one == two else "inconsistent"


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-max(-60.0, min(60.0, x))))


def verdicts(judge: dict, task_kind: str, items: list[dict], replies: dict[str, dict], *,
             name: str, hash_: str, job_id: str) -> list[dict]:
    """Label rows (for Store.add_judgements) from a finished job's replies, one per item it was asked about."""
    rows = []
    for item in items:
        ids = item["response_ids"]
        if judge["kind"] == "reward":
            got = replies.get(item["id"])
            if got is None:
                continue
            verdict, extra = _reward_verdict(task_kind, ids, got["scores"])
        else:
            asked = {k: v["reply"] for k, v in replies.items() if k.split("|")[0] == item["id"]}
            if not asked:
                continue
            verdict, extra = _prompted_verdict(task_kind, ids, asked)
        payload = {"judge": name, "template_hash": hash_, "job": job_id, **extra}
        rows.append({"item_id": item["id"], "prompt_id": item["prompt_id"], "annotator": f"judge:{name}",
                     **verdict, "payload": payload})
    return rows


def _pair_label(ids: list[str], winner: int | str) -> dict:
    if winner == "tie":
        return {"chosen_id": ids[0], "rejected_id": ids[1], "outcome": "tie"}
    return {"chosen_id": ids[winner], "rejected_id": ids[1 - winner], "outcome": "chosen"}


def _reward_verdict(task_kind: str, ids: list[str], scores: list[float]) -> tuple[dict, dict]:
    extra = {"scores": scores}
    if task_kind == "feedback":
        up = sigmoid(scores[0])
        thumb = "up" if up >= 0.5 else "down"
        return {"response_id": ids[0]}, extra | {"as": "feedback", "thumb": thumb,
                                                 "probability": up if thumb == "up" else 1 - up}
    order = sorted(range(len(ids)), key=lambda k: -scores[k])
    if task_kind == "pairwise":
        margin = abs(scores[0] - scores[1])
        winner = "tie" if margin == 0 else order[0]
        return _pair_label(ids, winner), extra | {"as": "preference", "probability": sigmoid(margin)}
    weakest = min((sigmoid(scores[a] - scores[b]) for a, b in zip(order, order[1:], strict=False)), default=1.0)
    return {"ranking": [ids[k] for k in order]}, extra | {"as": "ranking", "probability": weakest}


def _prompted_verdict(task_kind: str, ids: list[str], asked: dict[str, str]) -> tuple[dict, dict]:
    """A prompted judge is sure (probability 1) of a verdict both orders gave; the replies are kept short for
    the admin to read when it abstained or flipped."""
    short = {k.split("|", 1)[1]: (v or "")[:200] for k, v in sorted(asked.items())}
    if task_kind == "feedback":
        thumb = read_pointwise(next(iter(asked.values())))
        if thumb is None:
            return {"response_id": ids[0]}, {"as": "abstain", "replies": short}
        return {"response_id": ids[0]}, {"as": "feedback", "thumb": thumb, "probability": None, "replies": short}
    answers = {tuple(int(x) for x in k.split("|")[1:]): read_pairwise(v) for k, v in asked.items()}
    pairs = {}
    for i, j in combinations(range(len(ids)), 2):
        pairs[(i, j)] = both_ways(answers.get((i, j)), answers.get((j, i)), i, j)
    if any(v is None for v in pairs.values()):
        return {}, {"as": "abstain", "replies": short}
    flipped = [list(p) for p, v in pairs.items() if v == "inconsistent"]
    if flipped:
        return {}, {"as": "inconsistent", "flipped": flipped, "replies": short}
    if task_kind == "pairwise":
        return _pair_label(ids, pairs[(0, 1)]), {"as": "preference", "probability": 1.0}
    wins = [0.0] * len(ids)  # Copeland: a win counts 1, a tie half to each
    for (i, j), v in pairs.items():
        for k in ((i, j) if v == "tie" else (v,)):
            wins[k] += 0.5 if v == "tie" else 1.0
    order = sorted(range(len(ids)), key=lambda k: (-wins[k], k))
    return {"ranking": [ids[k] for k in order]}, {"as": "ranking", "probability": 1.0, "wins": wins}
