"""Users: hashed passwords, roles, clear refusals; what an admin changes later (role, password, deactivation)
and the rules that keep a project its admin; a deactivated user's sign-in and sessions."""

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


def cli_users(project, *args, password: str | None = None, monkeypatch=None) -> int:
    if password is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return main(["users", *args, "-p", str(project.root)])


def test_cli_changes_a_role_resets_a_password_and_deactivates(project, monkeypatch, capsys):
    """What an admin does to people, from the shell: role, new password, deactivate (no sign-in; labels stay),
    reactivate with the old password."""
    for name, role in (("root", "admin"), ("ana", "annotator")):
        assert cli_users(project, "add", name, "--role", role, password="first-pass", monkeypatch=monkeypatch) == 0
    assert cli_users(project, "role", "ana", "reviewer") == 0
    assert "ana: annotator -> reviewer" in capsys.readouterr().out
    assert cli_users(project, "reset-password", "ana", "--password-stdin", password="second-pass",
                     monkeypatch=monkeypatch) == 0
    with Store.open(project.store_path) as store:
        assert check_password(store, "ana", "first-pass") is None
        assert check_password(store, "ana", "second-pass") == {"name": "ana", "role": "reviewer"}
    assert cli_users(project, "deactivate", "ana") == 0
    assert cli_users(project, "list") == 0
    listed = capsys.readouterr().out
    assert "ana\treviewer\t" in listed and "\tdeactivated " in listed
    with Store.open(project.store_path) as store:
        assert check_password(store, "ana", "second-pass") is None  # the right password, a deactivated account
    assert cli_users(project, "activate", "ana") == 0
    with Store.open(project.store_path) as store:
        assert check_password(store, "ana", "second-pass") is not None
    assert cli_users(project, "role", "nobody", "admin") == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert cli_users(project, "reset-password", "ana", password="short", monkeypatch=monkeypatch) == 2
    assert "at least 8" in capsys.readouterr().err


def test_the_last_active_admin_is_kept(project, monkeypatch, capsys):
    """Demoting or deactivating the only active admin is refused with one line, and nothing changes."""
    assert cli_users(project, "add", "root", "--role", "admin", password="first-pass", monkeypatch=monkeypatch) == 0
    for args in (("role", "root", "annotator"), ("deactivate", "root")):
        assert cli_users(project, *args) == 2
        err = capsys.readouterr().err
        assert "root is the last active admin: make another user admin before" in err and len(err.splitlines()) == 1
    with Store.open(project.store_path) as store:
        assert store.user("root")["role"] == "admin" and store.user("root")["deactivated_at"] is None
        add_user(store, "second", "admin", "first-pass")
        store.deactivate_user("second")
    assert cli_users(project, "deactivate", "root") == 2  # a deactivated admin does not count
    assert cli_users(project, "activate", "second") == 0
    assert cli_users(project, "deactivate", "root") == 0


def test_an_admin_in_the_browser_cannot_lock_themselves_out(store):
    from workbench.auth import set_active, set_role

    add_user(store, "root", "admin", "first-pass")
    add_user(store, "boss", "admin", "first-pass")
    with pytest.raises(AuthError, match="cannot take the admin role from yourself"):
        set_role(store, "root", "annotator", by="root")
    with pytest.raises(AuthError, match="cannot deactivate yourself"):
        set_active(store, "root", False, by="root")
    assert set_role(store, "boss", "reviewer", by="root") == "admin"  # another admin: fine
    assert set_active(store, "boss", False, by="root") is True
    assert store.user("root")["role"] == "admin" and store.user("boss")["deactivated_at"]


def test_a_deactivated_user_is_refused_at_sign_in_and_their_session_ends(store):
    """SignIn refuses the right password of a deactivated account; a session signed in before ends on its next
    request (Gradio reads tokens.get before every route), also after a password reset, and stays ended when the
    user is reactivated: they sign in again."""
    import asyncio

    from workbench.auth import Sessions, SignIn, reset_password, set_active

    add_user(store, "root", "admin", "first-pass")
    add_user(store, "cy", "annotator", "first-pass")
    signin = SignIn(store, pause_s=0)
    assert asyncio.run(signin.check("cy", "first-pass", "10.0.0.1")) == {"name": "cy", "role": "annotator"}
    sessions = Sessions(store)
    sessions["tok-cy"], sessions["tok-root"] = "cy", "root"
    assert sessions.get("tok-cy") == "cy"
    set_active(store, "cy", False)
    assert sessions.get("tok-cy") is None and "tok-cy" not in sessions
    assert sessions.get("tok-root") == "root"  # others stay signed in
    assert asyncio.run(signin.check("cy", "first-pass", "10.0.0.1")) is None
    set_active(store, "cy", True)
    assert asyncio.run(signin.check("cy", "first-pass", "10.0.0.1")) is not None
    sessions["tok-cy-2"] = "cy"
    assert sessions.get("tok-cy-2") == "cy"
    reset_password(store, "cy", "second-pass")
    assert sessions.get("tok-cy-2") is None
    sessions["tok-cy-3"] = "cy"
    assert sessions.get("tok-cy-3") == "cy"
