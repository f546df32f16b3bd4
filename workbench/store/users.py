"""Users and their password hashes (hashing lives in workbench.auth)."""

from __future__ import annotations

from workbench.store.core import StoreCore, StoreError


class Users(StoreCore):
    def add_user(self, name: str, role: str, password_hash: str, salt: str) -> None:
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                raise StoreError(f"user {name!r} exists already")
            con.execute("INSERT INTO users (name, role, password_hash, salt) VALUES (?, ?, ?, ?)",
                        [name, role, password_hash, salt])

    def user(self, name: str) -> dict | None:
        row = self.cursor().execute("SELECT name, role, password_hash, salt FROM users WHERE name = ?",
                                    [name]).fetchone()
        return dict(zip(("name", "role", "password_hash", "salt"), row, strict=True)) if row else None

    def users(self) -> list[dict]:
        rows = self.cursor().execute("SELECT name, role, created_at FROM users ORDER BY name").fetchall()
        return [{"name": r[0], "role": r[1], "created_at": str(r[2])} for r in rows]
