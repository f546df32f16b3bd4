"""Judging job: ask a model judge every question of a job folder and write down its replies.

    workbench judge compare --judge gpt        # prepares the folder, runs this, stores the verdicts
    python -m trainers.judging JOB_DIR         # the job alone, on a job folder

The judge is one of: an OpenAI-compatible chat endpoint (`http`: a vLLM, Ollama, llama.cpp, TGI or
`transformers serve` server, or a hosted API) asked through the official `openai` client, many requests at
once, each retried with backoff (the client's own) and cut off after a timeout; a policy version or the base
model (`model`) answering the same chats in this process; or a reward-model version (`reward`) scoring each
response. The API key is read from the environment variable the judge names, never written to the folder.

    job.json        judge {kind, url, model, api_key_env, concurrency, timeout, retries, max_tokens | base_model,
                    adapter, stacked_on}
    requests.jsonl  {"id", "messages"} (prompted) or {"id", "prompt", "responses"} (reward) per line
    replies.jsonl   {"id", "reply"} or {"id", "scores"}, appended as they come; ids already there (a cancelled
                    or failed job's, copied in by the workbench) are not asked again
    progress.json   {"done", "total"}
    status.json     succeeded | failed, with the error

A request that still fails after its retries fails the whole job: the replies so far stay for the next job
to resume from, and the workbench stores nothing of a failed job.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from trainers.run_folder import stage_status


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def http_asker(judge: dict) -> Callable[[list[dict]], str]:
    """One chat completion per call through the `openai` client (thread-safe, one connection pool)."""
    from openai import OpenAI

    key = os.environ.get(judge["api_key_env"], "") if judge.get("api_key_env") else ""
    client = OpenAI(base_url=judge["url"], api_key=key or "not-needed", timeout=judge.get("timeout", 60),
                    max_retries=judge.get("retries", 3))

    def ask(messages: list[dict]) -> str:
        reply = client.chat.completions.create(model=judge["model"], messages=messages, temperature=0,
                                               max_tokens=judge.get("max_tokens", 16))
        return reply.choices[0].message.content or ""
    return ask


def ask_http(judge: dict, todo: list[dict], write: Callable[[dict], None]) -> None:
    """Ask `concurrency` requests at a time; the first that fails for good stops the rest and fails the job."""
    ask = http_asker(judge)
    url = judge["url"]

    def one(request: dict) -> None:
        try:
            write({"id": request["id"], "reply": ask(request["messages"])})
        except Exception as exc:
            raise RuntimeError(f"the judge endpoint {url} failed on {request['id']} after "
                               f"{judge.get('retries', 3)} retries: {type(exc).__name__}: {exc}") from exc

    with ThreadPoolExecutor(max_workers=max(1, judge.get("concurrency", 8))) as pool:
        futures = [pool.submit(one, r) for r in todo]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                for f in futures:
                    f.cancel()
                raise future.exception()


def ask_model(judge: dict, todo: list[dict], write: Callable[[dict], None]) -> None:
    """A policy version or the base model answers the same chats here, greedily, a batch at a time."""
    from trainers.generation import Sampling, generate_hf, load_for_generation

    model, tokenizer = load_for_generation(judge["base_model"], judge.get("adapter"), judge.get("stacked_on"))
    sampling = Sampling(temperature=0, max_new_tokens=judge.get("max_tokens", 16))
    batch = 8
    for start in range(0, len(todo), batch):
        chunk = todo[start:start + batch]
        replies = generate_hf(model, tokenizer, [r["messages"] for r in chunk], sampling, batch_size=batch)
        for request, reply in zip(chunk, replies, strict=True):
            write({"id": request["id"], "reply": reply[0][0]})


def score_reward(judge: dict, todo: list[dict], write: Callable[[dict], None]) -> None:
    """A reward-model version scores every response of each item (trainers.scoring's loader)."""
    from trainers.scoring import load_scorer

    score = load_scorer({"kind": "reward", **judge})
    for request in todo:
        replies = request["responses"]
        write({"id": request["id"], "scores": score([request["prompt"]] * len(replies), replies)})


def main(job_dir: str | Path) -> None:
    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    judge = job["judge"]
    requests = _read_jsonl(job_dir / "requests.jsonl")
    have = {r["id"] for r in _read_jsonl(job_dir / "replies.jsonl")}
    todo = [r for r in requests if r["id"] not in have]
    done = len(requests) - len(todo)
    lock = threading.Lock()

    def progress() -> None:
        tmp = job_dir / "progress.tmp"
        tmp.write_text(json.dumps({"done": done, "total": len(requests)}))
        tmp.replace(job_dir / "progress.json")  # atomic: the UI never reads half a file

    with stage_status(job_dir) as summary, (job_dir / "replies.jsonl").open("a", encoding="utf-8") as out:
        def write(row: dict) -> None:
            nonlocal done
            with lock:  # HTTP replies arrive on many threads: one whole line at a time
                out.write(json.dumps(row) + "\n")
                out.flush()
                done += 1
                progress()

        t0 = time.perf_counter()
        progress()
        {"http": ask_http, "model": ask_model, "reward": score_reward}[judge["kind"]](judge, todo, write)
        seconds = time.perf_counter() - t0
        summary.update({"asked": len(todo), "resumed": len(requests) - len(todo), "seconds": round(seconds, 2),
                        "requests_per_s": round(len(todo) / seconds, 2) if seconds > 0 else None})


if __name__ == "__main__":
    main(sys.argv[1])
