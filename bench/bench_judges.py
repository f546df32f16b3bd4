"""Model judges (issue 21): how fast a judge labels (items/s over HTTP with concurrency against one request at
a time, and in-process), and how far it agrees with people against the people's own agreement.

The demo's preference pairs are split by prompt: pairs about the Loki Watch (87 pairs over 53 prompts) become a pairwise task with
two answers per item, the rest train the reward-model judge (`--source train.jsonl`, so it never saw the
judged pairs). The people are scripted: `p1` answers each item with the pair's known winner, `p2` agrees with
`p1` with probability --p2-agree (the ceiling a judge is held to). Judges, each through `workbench judge`:

  rm      the reward model (reward-1, --reward-steps steps)
  http-1  `transformers serve` on the project's base model, through the openai client, --concurrency 1
  http-8  the same server, --concurrency 8 (another judge name, so it asks every item again)
  local   the base model prompted in the job's own process (--model-version base)

    .venv/bin/python bench/bench_judges.py                       # the tiny model: throughput only (it abstains)
    .venv/bin/python bench/bench_judges.py --base-model smollm2 --arms http-8   # SmolLM2-135M-Instruct: real verdicts

Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = ROOT / "data" / "loki"


def serve(model: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "transformers"), "serve", model, "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("transformers serve did not start")


def new_project(tmp: Path, base_model: str) -> str:
    """A fresh project in `tmp` on `base_model` ('tiny': the tiny model, built here); returns its folder."""
    from workbench.cli import main as wb

    base = base_model
    if base == "tiny":
        from trainers.tiny_model import build_tiny_model

        base = str(build_tiny_model(tmp / "tiny"))
    root = str(tmp / "proj")
    assert wb(["init", root, "--base-model", base]) == 0
    return root


def watch_split() -> tuple[list[dict], list[dict]]:
    """The demo's preference pairs: those about the Loki Watch (87 pairs over 53 prompts), and the rest."""
    rows = [json.loads(line) for line in (DATA / "preferences.jsonl").read_text().splitlines()]
    watch = [r for r in rows if "Loki Watch" in r["prompt"][-1]["content"]]
    return watch, [r for r in rows if r not in watch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="tiny", help="tiny (built here) or anything `workbench init` takes")
    parser.add_argument("--reward-steps", type=int, default=60)
    parser.add_argument("--p2-agree", type=float, default=0.85)
    parser.add_argument("--max-tokens", type=int, default=3)
    parser.add_argument("--port", type=int, default=8937)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="rm,http-1,http-8,local", help="which judges to run (comma-separated)")
    args = parser.parse_args()

    from workbench.cli import main as wb
    from workbench.config import load_project
    from workbench.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-judges-"))
    root = new_project(tmp, args.base_model)
    judged, rest = watch_split()
    for name, part in (("judged.jsonl", judged), ("train.jsonl", rest)):
        (tmp / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    assert wb(["import", "-p", root, str(tmp / "judged.jsonl"), str(tmp / "train.jsonl")]) == 0
    assert wb(["tasks", "add", "watch", "-p", root, "--kind", "pairwise", "--overlap", "2",
               "--source", "judged.jsonl"]) == 0
    project = load_project(root)
    rng = random.Random(args.seed)
    with Store.open(project.store_path) as store:  # the scripted people
        task = store.task("watch")
        winners = dict(store.cursor().execute(
            "SELECT prompt_id, chosen_id FROM labels WHERE kind = 'preference' AND task_id IS NULL").fetchall())
        for item in store.items_to_judge(task.id, "judge:none", "", every=True):
            ids = item["response_ids"]
            best = winners[item["prompt_id"]]
            other = ids[1] if ids[0] == best else ids[0]
            p2 = best if rng.random() < args.p2_agree else other
            for who, chosen in (("p1", best), ("p2", p2)):
                store.add_answer(task_id=task.id, item_id=item["id"], annotator=who, client_id=f"{who}-{item['id']}",
                                 kind="preference", chosen_id=chosen,
                                 rejected_id=other if chosen == best else best, outcome="chosen")
    arms = args.arms.split(",")
    if "rm" in arms:
        assert wb(["train", "reward", root, "--max-steps", str(args.reward_steps), "--batch-size", "8",
                   "--max-length", "256", "--source", "train.jsonl"]) == 0

    timings = {}

    def judge(name: str, *add: str) -> None:
        assert wb(["judges", "add", name, "-p", root, *add]) == 0
        t0 = time.perf_counter()
        assert wb(["judge", "watch", "-p", root, "--judge", name, "--all-items", "--json"]) == 0
        wall = time.perf_counter() - t0
        with Store.open(project.store_path, read_only=True) as store:
            run = max((r for r in store.cursor().execute(
                "SELECT id, dir FROM runs WHERE stage = 'judge'").fetchall()), key=lambda r: int(r[0].split("-")[1]))
        summary = json.loads((Path(run[1]) / "status.json").read_text())["summary"]
        timings[name] = {"items": 53, "requests": summary["asked"], "job_wall_s": round(wall, 1),
                         "asking_s": summary["seconds"], "items_per_s": round(53 / summary["seconds"], 2),
                         "items_per_s_wall": round(53 / wall, 2)}
        print(name, timings[name], file=sys.stderr, flush=True)

    if "rm" in arms:
        judge("rm", "--reward-model", "reward-1")
    if "http-1" in arms or "http-8" in arms:
        server = serve(project.base_model_path(), args.port)
        try:
            url = f"http://127.0.0.1:{args.port}/v1"
            common = ["--endpoint", url, "--model", project.base_model_path(), "--max-tokens", str(args.max_tokens)]
            for arm in ("http-1", "http-8"):
                if arm in arms:
                    judge(arm, *common, "--concurrency", arm.split("-")[1])
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:  # busy with queued requests: it ignores SIGTERM until they end
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    if "local" in arms:
        judge("local", "--model-version", "base", "--max-tokens", str(args.max_tokens))

    from annotation.judge_agreement import judge_report

    with Store.open(project.store_path, read_only=True) as store:
        task = store.task("watch")
        places = store.item_response_ids(task.id)
        report = judge_report(store.task_answers(task.id), store.judgements(task.id), places)
    print(json.dumps({"base_model": args.base_model, "cpus": os.cpu_count(), "timings": timings,
                      "agreement": report}, indent=2))


if __name__ == "__main__":
    main()
