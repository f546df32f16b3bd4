"""Scoring job: every response of some items scored by one or more model versions, for active selection. A
reward model gives its score of (prompt, reply); a policy version its mean log-prob per token of the reply
(its own preference, so SFT and the DPO over it can disagree).

    workbench tasks prioritize NAME --by margin --model reward-1    # snapshots the items, runs this, orders
    python -m trainers.scoring JOB_DIR                              # the job alone, on a job folder

A job folder is the whole contract with the workbench (which owns the store; this never opens it):

    job.json        models [{name, kind: reward | policy, base_model, adapter, stacked_on}]
    items.jsonl     {"id", "prompt": [messages], "responses": [texts]} per line
    scores.jsonl    {"model", "item", "scores": [one per response]} per model and item, written as they come
    progress.json   {"done", "total"} responses scored, for the UI
    status.json     succeeded | failed, with the error
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from trainers.run_folder import stage_status

Scorer = Callable[[list[list[dict]], list[str]], list[float]]


def load_scorer(spec: dict) -> Scorer:
    """Score (prompt, reply) pairs with one model version, loaded as its load spec says."""
    if spec["kind"] == "reward":
        from trainers.models import load_reward_version, reward_scores

        model, tokenizer = load_reward_version(spec["base_model"], spec["adapter"])
        return lambda prompts, replies: reward_scores(model, tokenizer, prompts, replies)
    from trainers.evaluation import sequence_logps
    from trainers.generation import load_for_generation

    model, tokenizer = load_for_generation(spec["base_model"], spec["adapter"], spec.get("stacked_on"))
    return lambda prompts, replies: sequence_logps(model, tokenizer, prompts, replies, per_token=True)


def main(job_dir: str | Path) -> None:
    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    items = [json.loads(line) for line in (job_dir / "items.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
    total = len(job["models"]) * sum(len(item["responses"]) for item in items)
    done = 0

    def progress() -> None:
        tmp = job_dir / "progress.tmp"
        tmp.write_text(json.dumps({"done": done, "total": total}))
        tmp.replace(job_dir / "progress.json")  # atomic: the UI never reads half a file

    with stage_status(job_dir) as summary, (job_dir / "scores.jsonl").open("w", encoding="utf-8") as out:
        t0 = time.perf_counter()
        progress()
        for spec in job["models"]:  # one model in memory at a time
            score = load_scorer(spec)
            for item in items:
                replies = item["responses"]
                scores = score([item["prompt"]] * len(replies), replies) if replies else []
                out.write(json.dumps({"model": spec["name"], "item": item["id"], "scores": scores}) + "\n")
                out.flush()
                done += len(replies)
                progress()
        summary.update({"scored": done, "seconds": round(time.perf_counter() - t0, 2)})


if __name__ == "__main__":
    main(sys.argv[1])
