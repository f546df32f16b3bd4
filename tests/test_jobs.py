"""The one job runner and the model worker: a scoring job orders a queue by the model's own scores, a cancelled or
failed one leaves the order as it was, the Tasks tab's handlers follow it; the Playground's worker answers as
generation in this process would, and a bad version or a dead worker costs one chat, not the server."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_DATA
from workbench.cli import main
from workbench.store import ModelVersion, Store


def register_version(project, store, name: str, path: str) -> None:
    """A --full policy version whose model folder is `path` (the tiny base model: a real version to score and chat
    with, without training one)."""
    base = project.base_model_path()
    store.create_run(run_id=name, stage="sft", parent_version_id=None, config={}, dataset_hash="", run_dir=path)
    store.finish_run(name, status="succeeded", version=ModelVersion(
        id=name, run_id=name, stage="sft", base_model=path, parent_id=None, dataset_hash="", path=path, metrics={},
        config={"adapter": {"full": True}, "project_base_model": base}))


@pytest.fixture
def scored_project(project, tmp_path):
    """Pairs about one product, the base model as version sft-1, and gone-1 whose folder does not exist."""
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    assert main(["tasks", "add", "compare", "-p", root, "--kind", "pairwise", "--query", "Loki Watch"]) == 0
    with Store.open(project.store_path) as store:
        register_version(project, store, "sft-1", project.base_model_path())
        register_version(project, store, "gone-1", str(tmp_path / "gone"))
    return project


def test_a_scoring_job_orders_the_queue_by_the_models_own_scores(scored_project, capsys):
    from trainers.evaluation import sequence_logps
    from trainers.generation import load_for_generation

    root = str(scored_project.root)
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "margin", "--model", "sft-1", "--json"]) == 0
    out = capsys.readouterr()
    done = json.loads(out.out)
    assert "responses scored" in out.err  # progress, on stderr
    with Store.open(scored_project.store_path) as store:
        task = store.task("compare")
        items = store.open_items_for_scoring(task.id)  # in queue order now
        assert store.run("score-1").status == "succeeded"
        assert store.queue_order(task.id)["reward_models"] == ["sft-1"]
    model, tokenizer = load_for_generation(scored_project.base_model_path(), None)
    margins = [abs(a - b) for a, b in (sequence_logps(model, tokenizer, [item["prompt"]] * 2, item["responses"],
                                                      per_token=True) for item in items)]
    assert done["prioritized"] == len(items) > 5 and margins == sorted(margins)
    assert done["head"][0]["priority"] == pytest.approx(-margins[0], abs=1e-6)


def test_a_cancelled_or_failed_scoring_job_leaves_the_order_alone(scored_project, capsys):
    from workbench.jobs import JobRunner, RunError
    from workbench.scoring import SCORING, ScoreRequest
    from workbench.ui.tasks import cancel_scoring_job, scoring_markdown, start_scoring_job

    root = str(scored_project.root)
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "margin", "--model", "gone-1"]) == 1
    assert "score-1 failed" in capsys.readouterr().err
    with Store.open(scored_project.store_path) as store:
        task = store.task("compare")
        assert store.run("score-1").status == "failed" and store.queue_order(task.id) is None
        runner = JobRunner(scored_project, store)
        assert "Started **score-2**" in start_scoring_job(runner, "compare", "margin", ["sft-1"])
        assert "score-2** (scoring): running" in scoring_markdown(runner.status())
        with pytest.raises(RunError, match="still running"):  # one job at a time, whatever its kind
            runner.start(SCORING, ScoreRequest("compare", "variance", ["sft-1"]))
        assert "score-2**: cancelled" in cancel_scoring_job(runner)
        assert store.run("score-2").status == "cancelled" and store.queue_order(task.id) is None
        assert "score-2** (scoring): cancelled" in scoring_markdown(runner.status())
        # and one left to finish: the Tasks tab shows the new order
        assert "Started **score-3**" in start_scoring_job(runner, "compare", "variance", ["sft-1"])
        assert runner.wait(timeout=300).state == "succeeded"
        assert "open items ordered by variance" in scoring_markdown(runner.status())
        assert store.queue_order(task.id)["by"] == "variance"


def test_the_playground_worker_answers_as_generation_here_would(scored_project):
    from trainers.generation import Sampling, generate_hf, load_for_generation
    from workbench.playground import Playground, PlaygroundError

    messages = [{"role": "user", "content": "My Loki Watch strap broke."}]
    model, tokenizer = load_for_generation(scored_project.base_model_path(), None)
    here = generate_hf(model, tokenizer, [messages], Sampling(n=1, temperature=0.0, max_new_tokens=12), batch_size=1)
    with Store.open(scored_project.store_path) as store:
        playground = Playground(scored_project, store)
        try:
            assert playground.reply("base", messages, temperature=0.0, max_new_tokens=12) == here[0][0][0]
            with pytest.raises(PlaygroundError, match="gone-1: .*gone"):
                playground.reply("gone-1", messages)  # the version's folder is missing: an error on this chat only
            with pytest.raises(PlaygroundError, match="no model version 'nope'"):
                playground.reply("nope", messages)
            assert playground.reply("sft-1", messages, temperature=0.0, max_new_tokens=12) == here[0][0][0]
            playground._proc.kill()  # the worker dies between chats: the next chat starts a fresh one
            assert playground.reply("base", messages, temperature=0.0, max_new_tokens=12) == here[0][0][0]
        finally:
            playground.close()
