"""Users and passwords. Passwords are stored as salted scrypt hashes (stdlib, memory-hard), never in clear;
roles are annotator, reviewer and admin."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from workbench.errors import WorkbenchError
from workbench.store import Store, StoreError

ROLES = ("annotator", "reviewer", "admin")
MIN_PASSWORD = 8
# scrypt cost: n=2**14, r=8 takes ~50 ms here: cheap for a sign-in, slow for a guesser.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}


class AuthError(WorkbenchError):
    """A user that cannot be created as asked; the message says why."""


def hash_password(password: str, salt: bytes | None = None) -> tuple[str, str]:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **SCRYPT)
    return digest.hex(), salt.hex()


def add_user(store: Store, name: str, role: str, password: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise AuthError(f"user name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AuthError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    digest, salt = hash_password(password)
    try:
        store.add_user(name, role, digest, salt)
    except StoreError as exc:
        raise AuthError(str(exc)) from None


def check_password(store: Store, name: str, password: str) -> dict | None:
    """The user when the password is right, else None (same work either way: no user-name oracle by timing)."""
    user = store.user(name)
    salt = bytes.fromhex(user["salt"]) if user else bytes(16)
    digest, _ = hash_password(password, salt)
    if user and hmac.compare_digest(digest, user["password_hash"]):
        return {"name": user["name"], "role": user["role"]}
    return None
