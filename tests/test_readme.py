"""The README is the user's manual: every `workbench` command it shows runs as written, and every
subcommand and option the CLI has is documented there."""

from __future__ import annotations

import io
import re
import shlex

import pytest

from tests.conftest import REPO
from workbench.cli import main, make_parser

README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith(".venv/bin/workbench "):
                commands.append(line)
    return commands


def test_readme_shows_commands():
    assert len(readme_commands()) >= 12


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").symlink_to(REPO / "data")
    (tmp_path / "README.md").write_text(README)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WORKBENCH_PROJECT", raising=False)
    for command in readme_commands():
        argv = shlex.split(command)[1:]
        if argv[0] == "serve":  # blocks; tests/test_app.py starts the real server
            continue
        if argv[0] == "demo-loop":  # 5 minutes; tests/test_train.py runs it with tiny settings
            continue
        if "smollm2" in argv or any(a.endswith(".gguf") for a in argv):
            continue  # converts a real model (20 s, 0.5 GB; the .gguf is the reader's own): test_real_model.py does
        if "unpaired" in argv:  # the README exports thumbs "once given in the Label tab": give some, as ann
            _give_thumbs(tmp_path / "demo-project", "thumbs", 12)
        monkeypatch.setattr("sys.stdin", io.StringIO("readme-password\n"))  # for `users add`
        code = main(argv)
        assert code == 0, (command, capsys.readouterr().err)


def _give_thumbs(root, task: str, n: int) -> None:
    """What an annotator does in the Label tab, through the same handlers: n votes, one up for two down."""
    from annotation.labeling import Labeling, User
    from workbench.config import load_project
    from workbench.store import Store

    ann = User("ann", "annotator")
    with Store.open(load_project(root).store_path) as store:
        labeling = Labeling(store)
        for i in range(n):
            view = labeling.open_next(ann, f"task-{task}")
            labeling.submit(ann, view.task_id, view.item_id, view.client_id, thumb="up" if i % 3 == 0 else "down")


def _options(parser) -> dict[str, set[str]]:
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return {name: {opt for a in p._actions for opt in a.option_strings if opt.startswith("--") and opt != "--help"}
            for name, p in sub.choices.items()}


def test_every_subcommand_and_option_is_in_the_readme():
    for name, options in _options(make_parser()).items():
        assert f"workbench {name}" in README, f"subcommand {name} missing from README"
        for opt in options:
            assert opt in README, f"{name} {opt} missing from README"
