"""Users and passwords. Passwords are stored as salted scrypt hashes (stdlib, memory-hard), never in clear;
roles are annotator, reviewer and admin. `SignIn` is the server's throttled, off-the-event-loop check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass, field

from workbench.errors import WorkbenchError, excerpt
from workbench.store import Store, StoreError

ROLES = ("annotator", "reviewer", "admin")
MIN_PASSWORD = 8
# scrypt cost: n=2**14, r=8 takes ~50 ms here: cheap for a sign-in, slow for a guesser.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
log = logging.getLogger("workbench.signin")


class AuthError(WorkbenchError):
    """A user that cannot be created or changed as asked; the message says why."""


def hash_password(password: str, salt: bytes | None = None) -> tuple[str, str]:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **SCRYPT)
    return digest.hex(), salt.hex()


def _check_role(role: object) -> str:
    if role not in ROLES:
        raise AuthError(f"role {excerpt(role)}: choose one of {', '.join(ROLES)}")
    return role


def _check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def add_user(store: Store, name: str, role: str, password: str) -> None:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise AuthError(f"user name {excerpt(name)}: use 1-64 letters, digits, '.', '_' or '-'")
    _check_role(role)
    digest, salt = hash_password(_check_password(password))
    try:
        store.add_user(name, role, digest, salt)
    except StoreError as exc:
        raise AuthError(str(exc)) from None


# An admin managing people from the browser may not lock themselves out: another admin must demote or
# deactivate them. The shell (whoever can write the project's files) has no "self", only the last-admin rule.
def set_role(store: Store, name: str, role: str, *, by: str | None = None) -> str:
    """Give `name` another role; returns the role they had. `by`: the admin asking (None: the shell)."""
    _check_role(role)
    if by is not None and by == name and role != "admin":
        raise AuthError(f"you cannot take the admin role from yourself: another admin can make {name} {role}")
    try:
        return store.set_role(name, role)
    except StoreError as exc:
        raise AuthError(str(exc)) from None


def reset_password(store: Store, name: str, password: str) -> None:
    """A new password for `name`; their sessions signed in with the old one end."""
    digest, salt = hash_password(_check_password(password))
    try:
        store.set_password(name, digest, salt)
    except StoreError as exc:
        raise AuthError(str(exc)) from None


def set_active(store: Store, name: str, active: bool, *, by: str | None = None) -> bool:
    """Deactivate (`active=False`) or reactivate a user; False when they already were. A deactivated user
    cannot sign in and their sessions end; every label they made stays."""
    if not active and by is not None and by == name:
        raise AuthError("you cannot deactivate yourself: another admin can")
    try:
        return store.activate_user(name) if active else store.deactivate_user(name)
    except StoreError as exc:
        raise AuthError(str(exc)) from None


def check_password(store: Store, name: str, password: str) -> dict | None:
    """The user when the password is right and the account active, else None (same work either way: no
    user-name oracle by timing)."""
    user = store.user(name)
    salt = bytes.fromhex(user["salt"]) if user else bytes(16)
    digest, _ = hash_password(password, salt)
    if user and hmac.compare_digest(digest, user["password_hash"]):
        if user["deactivated_at"]:
            log.warning("sign-in refused for %r: deactivated on %s", name, user["deactivated_at"])
            return None
        return {"name": user["name"], "role": user["role"]}
    return None


class Sessions(dict):
    """A server's signed-in sessions (Gradio's token -> user name), which end when their user is deactivated
    or gets a new password: Gradio reads `tokens.get(token)` before every route it guards (the page's config,
    the queue, the API), so such a session's next request is refused (401) and its page asks to sign in.
    Each token remembers the store's `session_epoch` of its user when it was made."""

    def __init__(self, store: Store, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.store = store
        self.epochs = {token: store.session_epoch(name) for token, name in self.items()}

    def __setitem__(self, token: str, name: str) -> None:
        super().__setitem__(token, name)
        self.epochs[token] = self.store.session_epoch(name)

    def __delitem__(self, token: str) -> None:  # signing out
        super().__delitem__(token)
        self.epochs.pop(token, None)

    def get(self, token, default=None):
        name = super().get(token)
        if name is None:
            return default
        epoch = self.store.session_epoch(name)
        if epoch is None or epoch != self.epochs.get(token):
            self.pop(token, None)
            self.epochs.pop(token, None)
            log.info("session of %r ended: the account was deactivated or its password reset", name)
            return default
        return name


# ------------------------------------------------------------------ sign-in on a server


class SignInThrottled(WorkbenchError):
    """Too many failed sign-ins for this account or address: the caller waits `retry_after` seconds."""

    def __init__(self, retry_after: float):
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed sign-ins: try again in {self.retry_after} s")


@dataclass
class Backoff:
    """Failed sign-ins of one kind of key (an account, an address). The first `free` failures cost nothing
    (people mistype); after that the next try waits `base_s * 2 ** (failures - free)` seconds from the last
    failure, at most `ceiling_s`. A key is forgotten `forget_s` after its last failure."""

    free: int = 5
    base_s: float = 1.0
    ceiling_s: float = 300.0
    forget_s: float = 900.0
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (failures, last failure)

    def wait(self, key: str, now: float) -> float:
        count, last = self.failures.get(key, (0, now))
        if now - last > self.forget_s:
            self.failures.pop(key, None)
            return 0.0
        if count < self.free:
            return 0.0
        return max(0.0, min(self.ceiling_s, self.base_s * 2 ** (count - self.free)) - (now - last))

    def fail(self, key: str, now: float) -> int:
        count, last = self.failures.get(key, (0, now))
        count = 1 if now - last > self.forget_s else count + 1
        self.failures[key] = (count, now)
        if len(self.failures) > 10_000:  # a spray of made-up names must not grow this without bound
            for stale in [k for k, (_, t) in self.failures.items() if now - t > self.forget_s]:
                del self.failures[stale]
        return count

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


class SignIn:
    """The server's password check: throttled per account and per address, the scrypt hash run in a worker
    thread (never on the event loop, where it would stall every signed-in user's request) with at most
    `concurrent` hashes at once (one: on two cores, a second hashing thread leaves the event loop no core and
    tripled signed-in latency under an unthrottled flood, BENCHMARKS.md), and every failure logged with the
    user name and address (never the password).
    A throttled try is refused before any hashing, after a pause of up to `pause_s`, so a flood of refused
    tries costs the server almost nothing."""

    def __init__(self, store: Store, *, account: Backoff | None = None, address: Backoff | None = None,
                 concurrent: int = 1, pause_s: float = 1.0, clock=time.monotonic):
        self.store = store
        self.account = account or Backoff(free=5)
        # an address is shared by everyone behind one NAT or proxy: it gets more free failures than an account
        self.address = address or Backoff(free=20)
        self.pause_s, self.clock = pause_s, clock
        self._hashing = asyncio.Semaphore(concurrent)

    def wait(self, name: str, address: str) -> float:
        now = self.clock()
        return max(self.account.wait(name, now), self.address.wait(address, now))

    async def check(self, name: str, password: str, address: str) -> dict | None:
        """The user (name, role) when the password is right, None when it is wrong; raises SignInThrottled
        while this account or address must wait."""
        wait = self.wait(name, address)
        if wait <= 0:
            async with self._hashing:
                wait = self.wait(name, address)  # a failure may have come in while this try queued
                if wait <= 0:
                    user = await asyncio.to_thread(check_password, self.store, name, password)
        if wait > 0:  # refused without hashing, after a pause taken outside the hashing slots
            log.warning("sign-in refused for user %r from %s: too many failures, %.0f s to wait", name, address,
                        wait)
            await asyncio.sleep(min(wait, self.pause_s))
            raise SignInThrottled(wait)
        now = self.clock()
        if user is None:
            failures = self.account.fail(name, now)
            self.address.fail(address, now)
            log.warning("sign-in failed for user %r from %s (%d failed in a row)", name, address, failures)
            return None
        self.account.clear(name)
        log.info("signed in: %r from %s", name, address)
        return user
