"""Model judges: a verdict that flips with the order is no preference; judge labels stay out of exports unless
asked; agreement with people against their own ceiling; the queue serving the judges' doubts first and an
admin's bulk accept; and real judges end to end: a `transformers serve` endpoint through the openai client
(killed half way, then resumed), a reward-model version, and the base model prompted in a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from annotation.judge_agreement import confident, judge_report, priorities
from annotation.judging import (
    PAIRWISE_TEMPLATE,
    both_ways,
    read_pairwise,
    read_pointwise,
    requests_for,
    template_hash,
    verdicts,
)
from tests.test_app import free_port
from tests.test_labeling import ADMIN, ANN, BOB, Clock, candidates_labeling, make_task
from workbench.cli import main
from workbench.exporters import export
from workbench.store import ExportFilters, Store

HTTP = {"kind": "http", "config": {}}


def picks(item: dict, k: int) -> dict[str, dict]:
    """A prompted judge's replies that choose response k of a pairwise item both ways round."""
    first, second = ("A", "B") if k == 0 else ("B", "A")
    return {f"{item['id']}|0|1": {"reply": first}, f"{item['id']}|1|0": {"reply": second}}


def test_a_verdict_that_flips_with_the_order_is_inconsistent_never_a_preference():
    assert [read_pairwise(r) for r in ("B is better.", "Answer: A", "It's a tie", "tactactac", "As I see")] == \
        ["B", "A", "tie", None, None]
    assert [read_pointwise(r) for r in ("Good.", "bad", "yes", "hmm")] == ["up", "down", "up", None]
    assert both_ways("A", "B", 0, 1) == 0  # response 0 won shown first and shown second
    assert both_ways("B", "A", 0, 1) == 1
    assert both_ways("A", "A", 0, 1) == "inconsistent"  # it picked whatever came first
    assert both_ways("tie", "tie", 0, 1) == "tie"
    assert both_ways(None, "A", 0, 1) is None

    item = {"id": "i1", "prompt_id": "p1", "prompt": [{"role": "user", "content": "Q?"}],
            "response_ids": ["r0", "r1"], "responses": ["x {b}", "y"]}
    asked = requests_for(HTTP, "pairwise", [item])
    assert [r["id"] for r in asked] == ["i1|0|1", "i1|1|0"]  # both ways round
    text = asked[0]["messages"][0]["content"]
    assert "[Response A]\nx {b}\n" in text and "[Response B]\ny\n" in text  # a response is never filled in again
    assert "[Response A]\ny\n" in asked[1]["messages"][0]["content"]

    def one(replies):
        return verdicts(HTTP, "pairwise", [item], replies, name="j", hash_="h", job_id="judge-1")[0]

    flipped = one({"i1|0|1": {"reply": "A"}, "i1|1|0": {"reply": "A"}})
    assert flipped["payload"]["as"] == "inconsistent" and "chosen_id" not in flipped
    assert flipped["annotator"] == "judge:j" and flipped["payload"]["template_hash"] == "h"
    chose = one(picks(item, 1))
    assert (chose["chosen_id"], chose["rejected_id"], chose["outcome"]) == ("r1", "r0", "chosen")
    assert one({"i1|0|1": {"reply": "A"}})["payload"]["as"] == "abstain"  # half the question is no verdict

    ranked = {"id": "i2", "prompt_id": "p", "prompt": [{"role": "user", "content": "Q?"}],
              "response_ids": ["a", "b", "c"], "responses": ["1", "2", "3"]}
    questions = requests_for(HTTP, "ranking", [ranked])
    assert len(questions) == 6  # every ordered pair
    better = {(0, 1): 1, (0, 2): 2, (1, 2): 2}  # c > b > a, said the same both ways
    replies = {}
    for (i, j), w in better.items():
        replies[f"i2|{i}|{j}"] = {"reply": "A" if w == i else "B"}
        replies[f"i2|{j}|{i}"] = {"reply": "A" if w == j else "B"}
    row = verdicts(HTTP, "ranking", [ranked], replies, name="j", hash_="h", job_id="judge-1")[0]
    assert row["ranking"] == ["c", "b", "a"] and row["payload"]["as"] == "ranking"
    replies["i2|1|0"] = {"reply": "B"}  # a and b swapped places and the verdict followed the place
    assert verdicts(HTTP, "ranking", [ranked], replies, name="j", hash_="h",
                    job_id="judge-1")[0]["payload"]["flipped"] == [[0, 1]]

    reward = {"kind": "reward", "config": {}}
    row = verdicts(reward, "pairwise", [item], {"i1": {"scores": [0.2, 1.2]}}, name="rm", hash_="h", job_id="j")[0]
    assert row["chosen_id"] == "r1" and row["payload"]["probability"] == pytest.approx(1 / (1 + 2.718281828 ** -1))


def test_agreement_with_the_human_majority_against_the_ceiling():
    def pref(item, who, chosen, kind="preference", **payload):
        return {"kind": kind, "item_id": item, "annotator": who, "chosen_id": chosen, "outcome": "chosen",
                "payload": payload, "ranking": None, "id": f"{item}-{who}"}

    humans = [pref(i, who, c) for i, c in (("i1", "x"), ("i2", "y"), ("i3", "x")) for who in ("ann", "bob")]
    humans += [pref("i4", "ann", "x"), pref("i4", "bob", "y")]  # people split: no majority, not counted
    judged = [pref(i, "judge:j", c, kind="judgement", probability=p, **{"as": "preference"})
              for i, c, p in (("i1", "x", 0.9), ("i2", "y", 0.6), ("i3", "y", 0.95), ("i4", "x", 0.99))]
    judged.append(pref("i5", "judge:j", None, kind="judgement", **{"as": "inconsistent"}))
    out = judge_report(humans, judged)
    assert out["ceiling"]["percent"] == pytest.approx(3 / 4) and out["human_majority_units"] == 3
    (j,) = out["judges"]
    # on i1-i3: agree 2 of 3; people x,y,x and judge x,y,y: expected 4/9, kappa (6/9 - 4/9) / (5/9) = 0.4
    assert j["units_with_humans"] == 3 and j["percent"] == pytest.approx(2 / 3)
    assert j["cohen_kappa"] == pytest.approx(0.4)
    assert j["position_bias_rate"] == pytest.approx(1 / 5) and j["inconsistent"] == 1
    assert confident(judged, 0.9) == ["i1-judge:j", "i3-judge:j", "i4-judge:j"]  # never the flip

    # by place, not by id: people always took the first response, the judge on 3 of 4 items; by response id
    # each item has its own categories and kappa reads 0.69, by place the judge did no better than chance
    places = {f"k{i}": [f"a{i}", f"b{i}"] for i in range(4)}
    humans = [pref(f"k{i}", who, f"a{i}") for i in range(4) for who in ("ann", "bob")]
    judged = [pref(f"k{i}", "judge:j", f"a{i}" if i < 3 else "b3", kind="judgement", **{"as": "preference"})
              for i in range(4)]
    by_id, by_place = (judge_report(humans, judged, p)["judges"][0] for p in (None, places))
    assert by_id["percent"] == by_place["percent"] == 0.75
    assert by_id["cohen_kappa"] == pytest.approx((0.75 - 3 / 16) / (1 - 3 / 16)) and by_place["cohen_kappa"] == 0


def test_judge_labels_stay_out_of_exports_and_queues_unless_asked(store, load, tmp_path):
    labeling = candidates_labeling(store, load, tmp_path, Clock())
    task = make_task(labeling, "pairwise", overlap=2)  # 4 items, one pair per prompt
    items = store.items_to_judge(task.id, "judge:j", "h", every=True)
    view = labeling.open_next(ANN, task.id)
    for _ in range(2):  # ann answers the first two items
        view = labeling.submit_comparison(ANN, task.id, view.item_id, view.client_id, choice="A")
    ann = {a["item_id"]: a["chosen_id"] for a in store.task_answers(task.id)}
    first, second, third, fourth = items
    assert set(ann) == {first["id"], second["id"]}
    against = 1 - first["response_ids"].index(ann[first["id"]])  # the judge picks the other one on item 1
    replies = {**picks(first, against), f"{second['id']}|0|1": {"reply": "A"}, f"{second['id']}|1|0": {"reply": "A"},
               **picks(third, 0), f"{fourth['id']}|0|1": {"reply": "no idea"}, f"{fourth['id']}|1|0": {"reply": "B"}}
    rows = verdicts(HTTP, "pairwise", items, replies, name="j", hash_="h", job_id="judge-1")
    answers_before = store.cursor().execute("SELECT sum(answers) FROM task_items").fetchone()
    assert store.add_judgements(task.id, rows, job_id="judge-1") == 4
    assert store.cursor().execute("SELECT sum(answers) FROM task_items").fetchone() == answers_before
    assert len(store.task_answers(task.id)) == 2  # agreement among people never sees a judge
    assert store.items_to_judge(task.id, "judge:j", "h", every=True) == []  # judged once per template
    assert len(store.items_to_judge(task.id, "judge:j", "other", every=True)) == 4

    def exported(mode: str, name: str) -> tuple[list[dict], str]:
        out = tmp_path / name
        export(store, kind="preferences", out_dir=out, filters=ExportFilters(judges=mode))
        lines = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
        return [{"chosen": r["chosen"][-1]["content"]} for r in lines], (out / "README.md").read_text()

    def chosen(item, response_id):
        return dict(zip(item["response_ids"], item["responses"], strict=True))[response_id]

    rows_out, card = exported("exclude", "exclude")
    assert sorted(r["chosen"] for r in rows_out) == sorted(chosen(i, ann[i["id"]]) for i in (first, second))
    assert "judge:" not in card.split("```json")[0].replace("judge labels", "") and "left out" in card
    rows_out, card = exported("only", "only")
    # the judge's verdicts on items 1 and 3; the flip (item 2) and the abstention (item 4) never
    assert sorted(r["chosen"] for r in rows_out) == sorted([first["responses"][against], third["responses"][0]])
    assert "judge labels: the only labels (--judges only); used: judge:j" in card
    rows_out, card = exported("include", "include")
    # item 1: ann and the judge split (no winner); item 2: ann alone (the judge flipped); item 3: the judge
    assert sorted(r["chosen"] for r in rows_out) == sorted([chosen(second, ann[second["id"]]), third["responses"][0]])
    assert "annotators: ann, judge:j" in card
    assert exported("accepted", "accepted-before")[0] == exported("exclude", "exclude-again")[0]  # none accepted yet

    # the queue: the flip and the abstention first, a confident verdict after, an accepted one last
    open_ids = [i["id"] for i in store.open_items_for_scoring(task.id)]
    store.set_queue_order(task.id, priorities(open_ids, store.judgements(task.id)), {"by": "judges"})
    order = [r[0] for r in store.cursor().execute(
        "SELECT id FROM task_items WHERE task_id = ? AND answers < 2 ORDER BY position", [task.id]).fetchall()]
    assert set(order[:2]) == {second["id"], fourth["id"]}
    accepted = store.accept_judgements(confident(store.judgements(task.id), 0.9), accepted_by="root")
    assert accepted == 2
    stood = {j["item_id"]: j for j in store.judgements(task.id)}
    assert stood[third["id"]]["payload"]["accepted_by"] == "root" and stood[third["id"]]["annotator"] == "judge:j"
    assert store.accept_judgements([stood[third["id"]]["id"]], accepted_by="root") == 0  # once
    rows_out, card = exported("accepted", "accepted")  # people's, and the two accepted verdicts (one split)
    assert sorted(r["chosen"] for r in rows_out) == sorted([chosen(second, ann[second["id"]]), third["responses"][0]])
    assert "only verdicts an admin accepted, beside people's (--judges accepted); used: judge:j" in card

    import gradio as gr

    from workbench.ui.tasks import TasksView

    with gr.Blocks():  # the admin's Tasks tab shows each judge against people beside the people's agreement
        view = TasksView(labeling, lambda request: ADMIN, lambda *a: "", lambda: "")
    _, agreement = view.overview(ADMIN, task.id)
    assert "**Model judges against people**" in agreement and "| judge:j | 4 | 2 | 1 |" in agreement
    store.set_queue_order(task.id, priorities(open_ids, store.judgements(task.id)), {"by": "judges"})
    served = []
    view = labeling.open_next(BOB, task.id)
    while view.item_id:
        served.append(view.item_id)
        view = labeling.submit_comparison(BOB, task.id, view.item_id, view.client_id, choice="A")
    assert set(served[:2]) == {second["id"], fourth["id"]} and set(served[2:]) == {first["id"], third["id"]}


def _serve(model: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "transformers"), "serve", str(model), "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError("transformers serve did not start")


class _DyingFront:
    """A front for the real `transformers serve` that passes the first `limit` requests through and then drops
    every connection unanswered: the endpoint going away half way through a batch, at the same request on a
    quiet machine and a loaded one (killing the server from a progress callback raced the job). `revive()`
    passes everything again."""

    def __init__(self, upstream_port: int, limit: int):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        front = self
        self.limit, self.seen = limit, 0
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with front.lock:
                    front.seen += 1
                    dead = front.limit is not None and front.seen > front.limit
                if dead:
                    self.close_connection = True  # no status line: the client sees the server disconnect
                    return
                request = urllib.request.Request(f"http://127.0.0.1:{upstream_port}{self.path}", data=body,
                                                 headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(request, timeout=60) as answer:
                    data = answer.read()
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def revive(self) -> None:
        with self.lock:
            self.limit = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _small_project(project, tmp_path, n=6) -> str:
    rows = [{"prompt": [{"role": "user", "content": f"My Loki Phone {i} will not charge."}],
             "chosen": [{"role": "assistant", "content": f"Sorry! Try another cable, then the reset {i}."}],
             "rejected": [{"role": "assistant", "content": "No."}]} for i in range(n)]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    root = str(project.root)
    assert main(["import", "-p", root, str(tmp_path / "pairs.jsonl")]) == 0
    assert main(["tasks", "add", "compare", "-p", root, "--kind", "pairwise"]) == 0
    return root


@pytest.mark.slow
def test_an_openai_compatible_endpoint_judges_a_task_and_a_dead_one_stores_nothing(project, tiny_model, tmp_path,
                                                                                    capsys, monkeypatch):
    from workbench.judging import JudgeRequest, run_judge

    root = _small_project(project, tmp_path)
    port = free_port()
    front = _DyingFront(port, limit=5)  # 12 questions (6 pairs both ways round): the endpoint dies after 5
    assert main(["judges", "add", "tiny", "-p", root, "--endpoint", f"http://127.0.0.1:{front.port}/v1", "--model",
                 str(tiny_model), "--api-key-env", "WB_TEST_JUDGE_KEY", "--concurrency", "1", "--max-tokens", "2",
                 "--retries", "1", "--timeout", "20"]) == 0
    monkeypatch.delenv("WB_TEST_JUDGE_KEY", raising=False)
    capsys.readouterr()
    assert main(["judge", "compare", "-p", root, "--judge", "tiny"]) == 2
    assert "$WB_TEST_JUDGE_KEY, which is not set" in capsys.readouterr().err
    monkeypatch.setenv("WB_TEST_JUDGE_KEY", "sk-local")

    server = _serve(tiny_model, port)
    try:
        with Store.open(project.store_path) as store:
            result = run_judge(project, store, JudgeRequest(task="compare", judge="tiny"))
            assert result.status == "failed" and "the judge endpoint" in result.error
            assert store.judgements(store.task("compare").id) == []  # nothing of a failed batch is stored
            assert store.run(result.job_id).status == "failed"
        had = len((result.job_dir / "replies.jsonl").read_text().splitlines())
        assert had == 5  # the answers it had before the endpoint died are kept in the job folder

        front.revive()
        capsys.readouterr()
        assert main(["judge", "compare", "-p", root, "--judge", "tiny", "--json"]) == 0
        done = json.loads(capsys.readouterr().out)
        assert done["items"] == 6 and done["resumed"] == had  # asked only what the dead job had not
    finally:
        _stop(server)
        front.close()
    status = json.loads((project.runs_dir / done["job"] / "status.json").read_text())
    assert status["summary"]["asked"] == 12 - had
    with Store.open(project.store_path, read_only=True) as store:
        stood = store.judgements(store.task("compare").id)
    assert len(stood) == 6 and {j["annotator"] for j in stood} == {"judge:tiny"}
    assert {j["payload"]["template_hash"] for j in stood} == {template_hash(PAIRWISE_TEMPLATE)}
    assert all(set(j["payload"]["replies"]) == {"0|1", "1|0"} for j in stood if j["payload"]["as"] == "abstain")
    capsys.readouterr()
    assert main(["judge", "compare", "-p", root, "--judge", "tiny"]) == 0  # judged already: nothing asked
    assert "nothing left to judge" in capsys.readouterr().out


@pytest.mark.slow
def test_a_reward_model_and_the_prompted_base_model_judge_in_jobs(project, tmp_path, capsys):
    from trainers.models import load_reward_version, reward_scores

    root = _small_project(project, tmp_path, n=8)
    assert main(["train", "reward", root, "--max-steps", "4", "--batch-size", "4", "--max-length", "128"]) == 0
    assert main(["judges", "add", "rm", "-p", root, "--reward-model", "reward-1"]) == 0
    assert main(["judge", "compare", "-p", root, "--judge", "rm", "--all-items"]) == 0
    with Store.open(project.store_path) as store:
        task = store.task("compare")
        items = {i["id"]: i for i in store.items_to_judge(task.id, "judge:none", "", every=True)}
        stood = store.judgements(task.id, "judge:rm")
        version = store.model_version("reward-1")
        for item_id in list(items)[:2]:  # people answered two items: what the judge is measured against
            ids = items[item_id]["response_ids"]
            store.add_answer(task_id=task.id, item_id=item_id, annotator="ann", client_id=f"c-{item_id}",
                             kind="preference", chosen_id=ids[0], rejected_id=ids[1], outcome="chosen")
    model, tokenizer = load_reward_version(version.base_model, version.path)
    assert len(stood) == 8
    for j in stood:
        item = items[j["item_id"]]
        scores = reward_scores(model, tokenizer, [item["prompt"]] * 2, item["responses"])
        best = item["response_ids"][0 if scores[0] > scores[1] else 1]
        assert j["chosen_id"] == best and j["payload"]["scores"] == pytest.approx(scores, abs=1e-4)
    capsys.readouterr()
    assert main(["judges", "agreement", "compare", "-p", root, "--json"]) == 0
    (rm,) = json.loads(capsys.readouterr().out)["judges"]
    assert rm["judge"] == "judge:rm" and rm["units_with_humans"] == 2 and rm["position_bias_rate"] == 0

    assert main(["tasks", "add", "thumbs", "-p", root, "--kind", "feedback"]) == 0
    assert main(["judges", "add", "base", "-p", root, "--model-version", "base", "--max-tokens", "2"]) == 0
    assert main(["judge", "thumbs", "-p", root, "--judge", "base"]) == 0
    with Store.open(project.store_path, read_only=True) as store:
        task = store.task("thumbs")
        stood = store.judgements(task.id, "judge:base")
        assert len(stood) == store.task_progress(task.id)["items"]
    assert {j["payload"]["as"] for j in stood} <= {"feedback", "abstain"}


def test_a_judge_or_a_request_that_cannot_work_is_refused_in_one_line(project, tmp_path, capsys):
    root = _small_project(project, tmp_path, n=2)
    assert main(["tasks", "add", "write", "-p", root, "--kind", "demonstration"]) == 0
    template = tmp_path / "t.txt"
    template.write_text("Which is better? {prompt} A: {a}")
    with Store.open(project.store_path, read_only=True) as store:
        before = store.dump()
    cases = [
        (["judges", "add", "x", "--model-version", "base", "--pairwise-template", str(template)], "lacks {b}"),
        (["judges", "add", "x", "--endpoint", "http://127.0.0.1:9/v1", "--reward-model", "reward-1"], "one of"),
        (["judges", "add", "x", "--endpoint", "http://127.0.0.1:9/v1"], "needs --model"),
        (["judges", "add", "x", "--reward-model", "reward-9"], "no model version named reward-9"),
        (["judges", "add", "x", "--reward-model", "reward-9", "--pairwise-template", str(template)], "no template"),
        (["judges", "add", "a|b", "--model-version", "base"], "judge name 'a|b': use 1-64 letters"),
        (["judge", "compare", "--judge", "nobody"], "no judge named 'nobody'"),
        (["judge", "nope", "--judge", "nobody"], "no task named 'nope'"),
    ]
    for argv, message in cases:
        assert main([*argv, "-p", root]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
    with Store.open(project.store_path, read_only=True) as store:
        assert store.dump() == before  # nothing half-done
    assert main(["judges", "add", "base", "--model-version", "base", "-p", root]) == 0
    capsys.readouterr()
    assert main(["judge", "write", "--judge", "base", "-p", root]) == 2
    assert "judges answer pairwise, ranking, feedback tasks, not demonstration tasks" in capsys.readouterr().err
    with Store.open(project.store_path, read_only=True) as store:
        assert store.cursor().execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_a_training_snapshot_reads_judge_labels_only_when_asked(project, tmp_path):
    from workbench.runs import TrainRequest, prepare_run

    _small_project(project, tmp_path, n=3)
    with Store.open(project.store_path) as store:
        task = store.task("compare")
        items = store.items_to_judge(task.id, "judge:j", "h", every=True)
        replies = {}
        for item in items:  # the judge prefers the curt "No." that people rejected
            replies |= picks(item, item["responses"].index("No."))
        store.add_judgements(task.id, verdicts(HTTP, "pairwise", items, replies, name="j", hash_="h",
                                                  job_id="judge-1"), job_id="judge-1")

        def snapshot(mode: str) -> tuple[list[str], str]:
            _, run_dir, _ = prepare_run(project, store, TrainRequest(stage="reward",
                                                                     filters=ExportFilters(judges=mode)))
            import pyarrow.parquet as pq

            rows = pq.read_table(run_dir / "data" / "train.parquet").to_pylist()
            return sorted(r["chosen"][-1]["content"] for r in rows), (run_dir / "data" / "README.md").read_text()

        chosen, card = snapshot("exclude")  # the default: people's labels only
        assert all(c.startswith("Sorry!") for c in chosen) and len(chosen) == 3 and "none used" in card
        chosen, card = snapshot("only")
        assert chosen == ["No."] * 3 and "used: judge:j" in card
