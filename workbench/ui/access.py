"""Who is asking: the signed-in user of a request, and the role checks every admin or reviewer event makes
before it does anything (the page hiding a tab is a convenience, never the guard)."""

from __future__ import annotations

import gradio as gr

from annotation.labeling import REVIEWERS, AccessDenied, User, require
from workbench.store import Store


class Access:
    def __init__(self, store: Store):
        self.store = store

    def user_of(self, request: gr.Request) -> User | None:
        """The signed-in user, or None: not signed in, removed, or deactivated since (then every handler
        refuses, whatever the page still shows)."""
        record = self.store.user(request.username) if request is not None and request.username else None
        return User(record["name"], record["role"]) if record and not record["deactivated_at"] else None

    def admin(self, request: gr.Request) -> User:
        return self._require(request, "admin")

    def reviewer(self, request: gr.Request) -> User:
        return self._require(request, *REVIEWERS)

    def _require(self, request: gr.Request, *roles: str) -> User:
        try:
            return require(self.user_of(request), *roles)
        except AccessDenied as exc:
            raise gr.Error(str(exc)) from None
