"""Generation jobs: replies stored with their settings all or none, bad requests refused before anything
is written, a crashed job marked failed with nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEMO_DATA
from workbench.cli import main
from workbench.generate import GenerateRequest, GenerationError, generate, prepare_generation
from workbench.store import Store, StoreError


@pytest.fixture
def heldout_project(project):
    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "heldout_prompts.jsonl"), "--tag", "heldout"]) == 0
    return project


def test_bad_requests_are_refused_before_anything_is_written(heldout_project):
    with Store.open(heldout_project.store_path) as store:
        before = store.dump()
        for request, message in (
                (GenerateRequest(versions=[]), "at least one"),
                (GenerateRequest(versions=["base", "base"]), "twice"),
                (GenerateRequest(versions=["sft-3"]), "no model version 'sft-3'"),
                (GenerateRequest(versions=["base"], sampling={"temperature": -1}), "temperature"),
                (GenerateRequest(versions=["base"], sampling={"n": 0}), "n must be"),
                (GenerateRequest(versions=["base"], sampling={"nucleus": 1}), "sampling settings"),
                (GenerateRequest(versions=["base"], tags=["no-such-tag"]), "nothing to generate"),
                (GenerateRequest(versions=["base"], backend="tgi"), "--backend")):
            with pytest.raises(GenerationError, match=message):
                prepare_generation(heldout_project, store, request)
        assert store.dump() == before
        assert not (heldout_project.runs_dir).exists() or not any(heldout_project.runs_dir.iterdir())


def test_a_crashed_job_is_marked_failed_and_stores_nothing(heldout_project, monkeypatch):
    import workbench.generate as gen

    with Store.open(heldout_project.store_path) as store:
        responses = store.table_counts()["responses"]
        real_prepare = gen.prepare_generation

        def broken(project, store, request):  # the job's model folder vanishes before the process loads it
            job_id, job_dir, job = real_prepare(project, store, request)
            job["base_model"] = str(job_dir / "gone")
            (job_dir / "job.json").write_text(json.dumps(job))
            return job_id, job_dir, job

        monkeypatch.setattr(gen, "prepare_generation", broken)
        result = generate(heldout_project, store, GenerateRequest(versions=["base"], tags=["heldout"], limit=2))
        assert result.status == "failed" and "gone" in result.error
        assert store.run(result.job_id).status == "failed"
        assert store.table_counts()["responses"] == responses


def test_stored_replies_are_all_or_none_and_never_twice(heldout_project):
    with Store.open(heldout_project.store_path) as store:
        prompts = store.selected_prompts(tags=["heldout"], limit=2)
        rows = [{"prompt_id": p["prompt_id"], "version": v, "sample": 0, "text": "Sorry! Complete Box covers it.",
                 "tokens": 6} for p in prompts for v in ("base", "sft-1")]
        assert store.add_generated(rows, job_id="j1", sampling={"n": 1}, backend="hf") == 4  # same text, 2 versions
        assert store.add_generated(rows, job_id="j2", sampling={"n": 1}, backend="hf") == 0  # a rerun adds nothing
        before = store.dump()
        with pytest.raises(StoreError, match="not in the store"):
            store.add_generated(rows + [{"prompt_id": "nope", "version": "base", "sample": 0, "text": "x"}],
                                job_id="j3", sampling={}, backend="hf")
        assert store.dump() == before
        assert store.prompts_with_replies_of("sft-1", [p["prompt_id"] for p in prompts]) == \
            {p["prompt_id"] for p in prompts}


def test_the_ui_job_runs_one_at_a_time_with_progress(heldout_project):
    """What the Train tab's Generate button starts: a job in its own process, followed, then stored."""
    from workbench.generate import GENERATION
    from workbench.jobs import JobRunner
    from workbench.runs import RunError

    with Store.open(heldout_project.store_path) as store:
        runner = JobRunner(heldout_project, store)
        job = runner.start(GENERATION, GenerateRequest(versions=["base"], tags=["heldout"], limit=3,
                                                       sampling={"n": 2, "max_new_tokens": 8}))
        with pytest.raises(RunError, match="still running"):
            runner.start(GENERATION, GenerateRequest(versions=["base"], tags=["heldout"], limit=1))
        runner.wait(timeout=120)
        status = runner.status()
        assert (status["state"], status["progress"]) == ("succeeded", {"done": 6, "total": 6})
        assert status["added"] == store.table_counts()["responses"] == 6
        assert store.run(job.run_id).status == "succeeded"
