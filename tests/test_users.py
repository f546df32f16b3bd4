"""Users: hashed passwords, roles, clear refusals (sign-in arrives with the labeling UI)."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from workbench.auth import AuthError, add_user, check_password
from workbench.cli import main
from workbench.store import Store


def test_passwords_are_salted_hashes_and_check(store):
    add_user(store, "ana", "annotator", "correct horse")
    add_user(store, "bo", "admin", "correct horse")
    a, b = store.user("ana"), store.user("bo")
    assert "correct horse" not in str(a) and a["password_hash"] != b["password_hash"]  # salted
    assert check_password(store, "ana", "correct horse") == {"name": "ana", "role": "annotator"}
    assert check_password(store, "ana", "wrong horse!") is None
    assert check_password(store, "nobody", "correct horse") is None


@pytest.mark.parametrize("name,role,password,message", [
    ("ana", "annotator", "short", "at least 8"),
    ("ana", "boss", "long enough", "role 'boss'"),
    ("a b", "annotator", "long enough", "user name"),
])
def test_bad_users_are_refused(store, name, role, password, message):
    with pytest.raises(AuthError, match=message):
        add_user(store, name, role, password)
    assert store.users() == []


def test_cli_adds_from_stdin_and_refuses_a_duplicate(project, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-pass\n"))
    assert main(["users", "add", "ana", "--role", "reviewer", "-p", str(project.root), "--password-stdin"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("s3cret-pass\n"))
    assert main(["users", "add", "ana", "--role", "admin", "-p", str(project.root), "--password-stdin"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["users", "list", "-p", str(project.root)]) == 0
    assert capsys.readouterr().out.startswith("ana\treviewer\t")
    with Store.open(project.store_path) as store:
        assert check_password(store, "ana", "s3cret-pass")["role"] == "reviewer"


def test_cli_reads_a_piped_password(project):
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "users", "add", "cy", "--role", "admin",
                          "-p", str(project.root)], input="piped-password\n", text=True, capture_output=True)
    assert out.returncode == 0, out.stderr
    with Store.open(project.store_path) as store:
        assert check_password(store, "cy", "piped-password") is not None
