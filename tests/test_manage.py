"""What an admin changes after the fact, called directly and from the shell: a task's guidelines and overlap,
archiving (out of every annotator's list and queue, labels kept in exports), deleting an unanswered task; the
versions table's lineage and the jobs list's progress and logs, read from runs stored as a job stores them
(nothing is trained here)."""

from __future__ import annotations

import json
import re
import time

import pytest

from annotation.labeling import Labeling, LabelingError, User
from tests.conftest import DEMO_DATA
from workbench.cli import main
from workbench.exporters import export
from workbench.store import ExportFilters, ModelVersion, Store, StoreError

ROOT, ANN, BOB = User("root", "admin"), User("ann", "annotator"), User("bob", "annotator")


@pytest.fixture
def labeling(store, load):
    load(DEMO_DATA / "preferences.jsonl")
    return Labeling(store)


def answer(labeling: Labeling, user: User, task: str, choice: str = "A") -> str:
    view = labeling.open_next(user, task)
    labeling.submit_comparison(user, task, view.item_id, view.client_id, choice=choice)
    return view.item_id


def test_overlap_rises_to_reopen_items_and_never_drops_below_their_answers(labeling):
    """A served task's overlap is read again after an edit (the queue head and the caches included): raised to 2,
    the item ann answered goes to bob next; lowering it below an item's answers is refused, nothing changed."""
    store = labeling.store
    labeling.create_task(ROOT, name="pick", kind="pairwise", overlap=1)
    first = answer(labeling, ANN, "task-pick")
    assert labeling.open_next(BOB, "task-pick").item_id != first  # overlap 1: that item is done
    store.edit_task("pick", overlap=2, guidelines="Pick the **kinder** reply.")
    labeling.forget_task("task-pick")
    labeling.leases.release("task-pick", "bob")
    assert labeling.open_next(BOB, "task-pick").item_id == first
    assert labeling.open_next(BOB, "task-pick").guidelines == "Pick the **kinder** reply."
    answer(labeling, BOB, "task-pick")
    with pytest.raises(StoreError, match="an item already has 2 answers, so the overlap can go no lower than 2"):
        store.edit_task("pick", overlap=1, guidelines="changed")
    assert store.task("pick").overlap == 2 and store.task("pick").guidelines == "Pick the **kinder** reply."
    with pytest.raises(StoreError, match="whole number from 1 to 50"):
        store.edit_task("pick", overlap=0)


def test_an_archived_task_leaves_lists_and_queues_and_keeps_its_labels(labeling, tmp_path):
    store = labeling.store
    labeling.create_task(ROOT, name="pick", kind="pairwise", overlap=1)
    answer(labeling, ANN, "task-pick")
    anns = ExportFilters(annotators=["ann"])
    before = export(store, kind="preferences", out_dir=tmp_path / "before", filters=anns).counts
    assert sum(before.values()) == 1
    assert store.archive_task("pick") is True and store.archive_task("pick") is False
    labeling.forget_task("task-pick")
    assert labeling.task_choices(ANN) == [] and labeling.task_choices(ROOT) == []
    with pytest.raises(LabelingError, match="task pick is archived: choose another task"):
        labeling.open_next(BOB, "task-pick")
    assert labeling.progress(ROOT, "task-pick")["answers"] == 1  # the admin's reports still read it
    after = export(store, kind="preferences", out_dir=tmp_path / "after", filters=anns).counts
    assert after == before  # its labels still export
    assert store.archive_task("pick", archived=False) is True
    labeling.forget_task("task-pick")
    assert labeling.task_choices(BOB) == [("pick (pairwise)", "task-pick")]
    assert labeling.open_next(BOB, "task-pick").item_id is not None


def test_a_task_is_deleted_only_while_nobody_answered(labeling):
    store = labeling.store
    labeling.create_task(ROOT, name="pick", kind="pairwise", overlap=1)
    labeling.create_task(ROOT, name="spare", kind="pairwise", overlap=1)
    labeling.open_next(BOB, "task-spare")  # served, skipped, never answered: still deletable
    answer(labeling, ANN, "task-pick")
    with pytest.raises(StoreError, match="task pick has 1 answer .*: it cannot be deleted; archive it instead"):
        store.delete_task("pick")
    done = store.delete_task("spare")
    assert done["task"] == "spare" and done["items"] > 0
    assert store.task("spare") is None and [t.name for t in store.tasks()] == ["pick"]
    assert store.cursor().execute("SELECT count(*) FROM task_items WHERE task_id = 'task-spare'").fetchone()[0] == 0
    with pytest.raises(StoreError, match="no task 'spare'"):
        store.delete_task("spare")


def test_cli_edits_archives_unarchives_and_deletes_tasks(project, capsys):
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    for name in ("pick", "spare"):
        assert main(["tasks", "add", name, "--kind", "pairwise", "-p", root]) == 0
    guide = project.root / "guide.md"
    guide.write_text("Prefer the reply that **cites the policy**.")
    assert main(["tasks", "edit", "pick", "--guidelines", str(guide), "--overlap", "3", "-p", root]) == 0
    assert "task pick: overlap 3" in capsys.readouterr().out
    with Store.open(project.store_path) as store:
        labeling = Labeling(store)
        answer(labeling, ANN, "task-pick")
        answer(labeling, BOB, "task-pick")
        assert store.task("pick").guidelines.startswith("Prefer the reply")
    assert main(["tasks", "edit", "pick", "--overlap", "1", "-p", root]) == 2
    assert "can go no lower than 2" in capsys.readouterr().err
    assert main(["tasks", "edit", "pick", "-p", root]) == 2
    assert "give one" in capsys.readouterr().err
    assert main(["tasks", "delete", "pick", "-p", root]) == 2
    assert "it cannot be deleted; archive it instead" in capsys.readouterr().err
    assert main(["tasks", "archive", "pick", "-p", root]) == 0
    assert main(["tasks", "list", "-p", root]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"^pick\tpairwise\toverlap 3\t.*\tarchived 20", listed, re.M), listed
    assert main(["tasks", "unarchive", "pick", "-p", root]) == 0
    assert main(["tasks", "delete", "spare", "-p", root]) == 0
    assert "deleted task spare" in capsys.readouterr().out
    assert main(["tasks", "list", "-p", root]) == 0
    listed = capsys.readouterr().out
    assert "spare" not in listed and "archived" not in listed


def test_a_deactivated_users_labels_stay(labeling):
    from workbench.auth import add_user, set_active

    store = labeling.store
    add_user(store, "root", "admin", "first-pass")
    add_user(store, "ann", "annotator", "first-pass")
    labeling.create_task(ROOT, name="pick", kind="pairwise", overlap=1)
    answer(labeling, ANN, "task-pick")
    set_active(store, "ann", False, by="root")
    assert store.labels_by_user() == {"ann": 1}
    assert [a["annotator"] for a in store.task_answers("task-pick")] == ["ann"]


# ------------------------------------------------------------------ versions and jobs, read from the store
def add_run(store, project, run_id: str, stage: str, *, status: str = "succeeded", parent: str | None = None,
            metrics: dict | None = None, config: dict | None = None):
    """A run (and for a finished training run its version) stored as the job runner stores one; no training."""
    run_dir = project.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    time.sleep(0.01)  # runs and versions list newest first: give each its own moment
    store.create_run(run_id=run_id, stage=stage, parent_version_id=parent, config=config or {}, dataset_hash="test",
                     run_dir=str(run_dir))
    if status == "running":
        return run_dir
    version = None
    if status == "succeeded" and stage not in ("generate", "score", "judge"):
        version = ModelVersion(id=run_id, run_id=run_id, stage=stage, base_model=str(project.base_model_path()),
                               parent_id=parent, dataset_hash="test", path=str(run_dir / "adapter"),
                               metrics=metrics or {})
    store.finish_run(run_id, status=status, version=version, error="the training process exited with code 1"
                     if status == "failed" else None)
    return run_dir


def running_training(store, project, run_id: str = "sft-2") -> None:
    """A training run at step 20 of 100, logging every 5 steps 2 s apart, with a log that quotes markup."""
    run_dir = add_run(store, project, run_id, "sft", status="running", config={"trl": {"max_steps": 100}})
    now = time.time()
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "loss": 2.0 - s / 20, "max_steps": 100, "time": now - 8 + 2 * (s // 5 - 1)}) + "\n"
        for s in (5, 10, 15, 20)) + '{"step": 25, "lo')  # a line still being written
    (run_dir / "stderr.log").write_text("loading <script>alert('x')</script> **bold**\n"
                                        "train  10%|#  | 10/100\r train  20%|## | 20/100\n\x1b[31mred\x1b[0m\n")


def test_versions_table_shows_lineage_figures_and_run(store, project):
    from workbench.ui.jobs import versions_markdown

    add_run(store, project, "sft-1", "sft", metrics={"steps": 50, "train_loss": 1.23456, "warnings": ["w"]})
    add_run(store, project, "dpo-1", "dpo", parent="sft-1",
            metrics={"eval_rewards/accuracies": 0.75, "forgetting_logp_delta": -0.02})
    table = versions_markdown(store)
    rows = table.splitlines()
    assert rows[2].startswith("| **dpo-1** | dpo | base → sft-1 → dpo-1 | model |"), table  # newest first
    assert "reward accuracy 0.75 · forgetting Δ log-p -0.02" in rows[2]
    assert "steps 50 · train loss 1.23 · 1 warning" in rows[3] and rows[3].endswith("| sft-1 |")


def test_jobs_list_says_step_and_eta_and_a_job_shows_its_log_escaped(store, project):
    from workbench.ui.jobs import job_details, jobs_markdown

    add_run(store, project, "sft-1", "sft")
    add_run(store, project, "dpo-1", "dpo", status="failed")
    running_training(store, project)
    gen_dir = add_run(store, project, "generate-1", "generate", status="running")
    (gen_dir / "progress.json").write_text(json.dumps({"done": 30, "total": 120}))
    table = jobs_markdown(store)
    assert re.search(r"\| \*\*sft-2\*\* \| training \(sft\) \| running \| .* \| step 20/100, ETA 32 s \|", table), table
    assert re.search(r"\| \*\*generate-1\*\* \| generation \| running \| .* \| 30/120 replies, ETA \d", table)
    assert "| **dpo-1** | training (dpo) | failed |" in table and "exited with code 1" in table
    detail, plot, log = job_details(store, "sft-2")
    assert "step 20/100" in detail and plot.count("<circle") == 4
    assert "<script" not in log and "&#60;script&#62;alert" in log and "**bold**" not in log
    assert "20&#47;100" in log and "10&#47;100" not in log and "\x1b" not in log  # a bar's last state, no colours
    assert "No job" in job_details(store, "../../etc")[0]
