"""Users and their password hashes (hashing lives in workbench.auth): adding, a role change, a new password,
deactivating and reactivating. A deactivated user keeps every label (exports and agreement still name them)
but cannot sign in; the store refuses what would leave the project without an active admin."""

from __future__ import annotations

import threading

from workbench.errors import excerpt
from workbench.store.core import StoreCore, StoreError

_USER_COLUMNS = ("name", "role", "password_hash", "salt", "deactivated_at")
_UNREAD = object()


class Users(StoreCore):
    def add_user(self, name: str, role: str, password_hash: str, salt: str) -> None:
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                raise StoreError(f"user {name!r} exists already")
            con.execute("INSERT INTO users (name, role, password_hash, salt) VALUES (?, ?, ?, ?)",
                        [name, role, password_hash, salt])
        self._sessions_changed(name)

    def user(self, name: str) -> dict | None:
        """The user, deactivated or not (`deactivated_at` says), with the password hash; None if unknown."""
        row = self.cursor().execute(f"SELECT {', '.join(_USER_COLUMNS)} FROM users WHERE name = ?",
                                    [name]).fetchone()
        if row is None:
            return None
        return dict(zip(_USER_COLUMNS, row, strict=True)) | {"deactivated_at": str(row[4]) if row[4] else None}

    def users(self) -> list[dict]:
        rows = self.cursor().execute(
            "SELECT name, role, created_at, deactivated_at FROM users ORDER BY name").fetchall()
        return [{"name": r[0], "role": r[1], "created_at": str(r[2]), "deactivated_at": str(r[3]) if r[3] else None}
                for r in rows]

    def labels_by_user(self) -> dict[str, int]:
        """How many labels carry each user's name (every event: edits and undos count), deactivated users' too."""
        return dict(self.cursor().execute(
            "SELECT annotator, count(*) FROM labels WHERE annotator IN (SELECT name FROM users) GROUP BY annotator"
        ).fetchall())

    def _existing_user(self, con, name: str) -> tuple[str, bool]:
        row = con.execute("SELECT role, deactivated_at IS NULL FROM users WHERE name = ?", [name]).fetchone()
        if row is None:
            raise StoreError(f"no user {excerpt(name)}: see `workbench users list`")
        return row[0], row[1]

    def _keep_an_admin(self, con, name: str, doing: str) -> None:
        """Refuse a change that leaves no active admin (the project would be run from the shell only)."""
        others = con.execute("SELECT count(*) FROM users WHERE role = 'admin' AND deactivated_at IS NULL "
                             "AND name <> ?", [name]).fetchone()[0]
        if others == 0:
            raise StoreError(f"{name} is the last active admin: make another user admin before {doing}")

    def set_role(self, name: str, role: str) -> str:
        """Give a user another role; returns the role they had."""
        with self.transaction() as con:
            old, active = self._existing_user(con, name)
            if old == "admin" and role != "admin" and active:
                self._keep_an_admin(con, name, f"making {name} {role}")
            con.execute("UPDATE users SET role = ? WHERE name = ?", [role, name])
        return old

    def set_password(self, name: str, password_hash: str, salt: str) -> None:
        """A new password (an admin's reset): the user's sessions signed in with the old one end."""
        with self.transaction() as con:
            self._existing_user(con, name)
            con.execute("UPDATE users SET password_hash = ?, salt = ? WHERE name = ?", [password_hash, salt, name])
        self._sessions_changed(name)

    def deactivate_user(self, name: str) -> bool:
        """Stop a user signing in (their sessions end too); their labels stay. False if they already were."""
        with self.transaction() as con:
            role, active = self._existing_user(con, name)
            if not active:
                return False
            if role == "admin":
                self._keep_an_admin(con, name, f"deactivating {name}")
            con.execute("UPDATE users SET deactivated_at = current_localtimestamp() WHERE name = ?", [name])
        self._sessions_changed(name)
        return True

    def activate_user(self, name: str) -> bool:
        """Let a deactivated user sign in again (with their old password). False if they were active."""
        with self.transaction() as con:
            _, active = self._existing_user(con, name)
            if active:
                return False
            con.execute("UPDATE users SET deactivated_at = NULL WHERE name = ?", [name])
        self._sessions_changed(name)
        return True

    # ------------------------------------------------------------ sessions of a server
    def session_epoch(self, name: str) -> int | None:
        """None for a user who cannot sign in (unknown or deactivated), else a number that changes whenever
        the user is deactivated or gets a new password: a server's session remembers the number it signed in
        with and ends when it changed. Kept in memory, read from the table once per user: the process that
        holds the store is its one writer, so every change goes through `_sessions_changed` here."""
        epochs = self.__dict__.setdefault("_session_epochs", {})
        known = epochs.get(name, _UNREAD)
        if known is not _UNREAD:
            return known
        with self._session_lock():  # read and cached under the lock a change takes after its commit: never stale
            row = self.cursor().execute("SELECT deactivated_at IS NULL FROM users WHERE name = ?", [name]).fetchone()
            epochs[name] = self.__dict__.setdefault("_session_bumps", {}).get(name, 0) if row and row[0] else None
            return epochs[name]

    def _session_lock(self) -> threading.Lock:
        return self.__dict__.setdefault("_session_lock_", threading.Lock())

    def _sessions_changed(self, name: str) -> None:
        with self._session_lock():
            bumps = self.__dict__.setdefault("_session_bumps", {})
            bumps[name] = bumps.get(name, 0) + 1
            self.__dict__.setdefault("_session_epochs", {}).pop(name, None)
