"""The CLI end to end on real project folders: init, import, export, stats."""

from __future__ import annotations

import json

from tests.conftest import DEMO_DATA
from workbench.cli import main
from workbench.config import load_project


def test_init_builds_a_tiny_model_and_an_empty_store(tmp_path, capsys):
    assert main(["init", str(tmp_path / "p")]) == 0
    project = load_project(tmp_path / "p")
    assert (project.root / "models/base/config.json").is_file()
    assert project.base_model_path() == str(project.root / "models/base")
    capsys.readouterr()
    assert main(["stats", str(project.root), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["prompts"] == 0 and stats["labels_by_kind"] == {}


def test_init_refuses_an_existing_project_and_a_missing_model_folder(tmp_path, tiny_model, capsys):
    assert main(["init", str(tmp_path / "p"), "--base-model", str(tiny_model)]) == 0
    assert main(["init", str(tmp_path / "p")]) == 2
    assert "already a workbench project" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "q"), "--base-model", "./no/such/model"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["init", str(tmp_path / "r"), "--base-model", "org/some-model"]) == 0  # a Hub id is kept as is
    assert load_project(tmp_path / "r").config.base_model == "org/some-model"


def test_import_export_stats_through_the_cli(project, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROJECT", str(project.root))
    assert main(["import", str(DEMO_DATA / "preferences.jsonl"), str(DEMO_DATA / "heldout_prompts.jsonl"),
                 "--tag", "batch1"]) == 0
    out = capsys.readouterr().out
    assert "500 rows (trl-preference, preferences) -> added 300 prompts" in out
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "prompts: 420, tagged batch1: 420" in out and "labels by kind: preference: 500" in out
    assert main(["export", "--kind", "preferences", "--out", str(tmp_path / "x"), "--split", "0.1"]) == 0
    assert "train: 4" in capsys.readouterr().out
    assert main(["export", "--kind", "sft", "--out", str(tmp_path / "y")]) == 2
    assert "no sft rows match" in capsys.readouterr().err


def test_project_is_found_from_a_subfolder(project, monkeypatch, capsys):
    sub = project.root / "runs"
    monkeypatch.chdir(sub)
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    assert main(["stats"]) == 0
    assert f"({project.root})" in capsys.readouterr().out


def test_no_project_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    assert main(["stats"]) == 2
    assert "no project here" in capsys.readouterr().err


def test_tasks_commands_report_and_refuse_with_one_line(project, capsys, tmp_path):
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    guidelines = tmp_path / "guide.md"
    guidelines.write_text("Prefer the **kind** reply.")
    assert main(["tasks", "add", "pick", "--kind", "pairwise", "--overlap", "2", "--guidelines", str(guidelines),
                 "-p", root]) == 0
    assert "created task pick (pairwise, 2 per item): 300 items" in capsys.readouterr().out
    assert main(["tasks", "list", "-p", root]) == 0
    assert "pick\tpairwise\toverlap 2\t300 items\t0 complete\t0/600 answers" in capsys.readouterr().out
    assert main(["tasks", "progress", "pick", "-p", root, "--json"]) == 0
    progress = json.loads(capsys.readouterr().out)
    assert (progress["items"], progress["needed"], progress["answers"]) == (300, 600, 0)
    assert main(["tasks", "agreement", "pick", "-p", root]) == 0
    assert "percent agreement** n/a" in capsys.readouterr().out
    for argv, message in ((["tasks", "add", "pick", "--kind", "pairwise"], "a task named 'pick' exists already"),
                          (["tasks", "add", "x"], "give the task's --kind"),
                          (["tasks", "progress", "nope"], "no task named 'nope'"),
                          (["tasks", "add", "y", "--kind", "ranking", "--tag", "none"], "no prompts with two or more")):
        assert main([*argv, "-p", root]) == 2
        err = capsys.readouterr().err
        assert err.startswith("workbench tasks: error:") and message in err and err.count("\n") == 1
    from workbench.store import Store

    with Store.open(project.store_path) as store:
        assert [t.name for t in store.tasks()] == ["pick"]
        assert store.task("pick").guidelines == "Prefer the **kind** reply."


def test_every_command_takes_the_project_the_same_way(project, tmp_path, capsys):
    """-p/--project on every command; the older positional form still works where the README showed it, and
    two different projects at once are refused instead of one silently winning."""
    from workbench.cli import make_parser

    sub = next(a for a in make_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    without = [name for name, p in sub.choices.items()
               if not any("--project" in a.option_strings for a in p._actions)]
    assert not without, f"commands without -p/--project: {without}"
    assert main(["stats", "-p", str(project.root), "--json"]) == 0
    assert main(["stats", str(project.root), "--json"]) == 0
    capsys.readouterr()
    assert main(["stats", str(project.root), "-p", str(tmp_path), "--json"]) == 2
    assert "two projects given" in capsys.readouterr().err
    assert main(["init", "-p", str(tmp_path / "by-option"), "--base-model", project.base_model_path()]) == 0
    assert load_project(tmp_path / "by-option").root == (tmp_path / "by-option").resolve()
