"""The admin's Users tab: the people who sign in, and adding one, changing a role, resetting a password,
deactivating and reactivating. The rules live in workbench.auth and the store (an admin never demotes or
deactivates themselves, the project keeps an active admin); this tab shows their one-line refusals."""

from __future__ import annotations

import gradio as gr

from workbench.auth import ROLES, AuthError, add_user, reset_password, set_active, set_role
from workbench.store import Store
from workbench.ui.access import Access
from workbench.ui.render import inline, table_text


def users_markdown(store: Store) -> str:
    """Every user: role, whether they can sign in, since when, and how many labels carry their name."""
    labels = store.labels_by_user()
    rows = ["| user | role | state | added | labels |", "|---|---|---|---|---|"]
    for u in store.users():
        state = f"deactivated {u['deactivated_at'][:16]}" if u["deactivated_at"] else "active"
        rows.append(f"| {table_text(u['name'])} | {u['role']} | {state} | {u['created_at'][:16]} | "
                    f"{labels.get(u['name'], 0)} |")
    return "\n".join(rows)


def change_user(store: Store, admin: str, action: str, name: str, role: str | None, password: str | None) -> str:
    """One admin action on one user, as the line the tab shows (a refusal says why, and nothing changed)."""
    name = name.strip() if isinstance(name, str) else ""
    try:
        if not name:
            raise AuthError("give the user's name")
        if action == "add":
            add_user(store, name, role or "", password or "")
            return f"Added **{inline(name)}** ({role}). They sign in with the password you gave."
        if action == "role":
            old = set_role(store, name, role or "", by=admin)
            return f"**{inline(name)}**: {old} → {role}."
        if action == "password":
            reset_password(store, name, password or "")
            return f"New password for **{inline(name)}**; their open sessions are signed out."
        active = action == "activate"
        changed = set_active(store, name, active, by=admin)
        state = "can sign in again" if active else "is deactivated: signed out, and their labels stay"
        return f"**{inline(name)}** {state}." if changed else \
            f"**{inline(name)}** was already {'active' if active else 'deactivated'}."
    except AuthError as exc:
        return f"**Not done:** {inline(str(exc))}"


class UsersTab:
    """Layout first (inside the app's Blocks), then `wire`."""

    def __init__(self, store: Store, access: Access, tab: gr.Tab):
        self.store, self.access, self.tab = store, access, tab
        self.table = gr.Markdown(elem_id="users-table", latex_delimiters=[])
        with gr.Row():
            self.name = gr.Textbox(label="User name", elem_id="user-name")
            self.role = gr.Dropdown(list(ROLES), value="annotator", label="Role", elem_id="user-role")
            self.password = gr.Textbox(label="Password (a new user's, or a reset; 8 characters or more)",
                                       type="password", elem_id="user-password")
        with gr.Row():
            self.add = gr.Button("Add user", variant="primary", elem_id="user-add")
            self.set_role = gr.Button("Change role", elem_id="user-set-role")
            self.reset = gr.Button("Reset password", elem_id="user-reset-password")
            self.deactivate = gr.Button("Deactivate", variant="stop", elem_id="user-deactivate")
            self.activate = gr.Button("Reactivate", elem_id="user-activate")
        self.status = gr.Markdown(elem_id="user-status")

    def wire(self) -> None:
        store, access = self.store, self.access

        def show(request: gr.Request) -> str:
            access.admin(request)
            return users_markdown(store)

        self.tab.select(show, outputs=self.table, api_name="users")

        def action(kind: str):
            def handler(name, role, password, request: gr.Request):
                admin = access.admin(request)
                return change_user(store, admin.name, kind, name, role, password), users_markdown(store), ""
            handler.__name__ = f"user_{kind}"
            return handler

        for button, kind in ((self.add, "add"), (self.set_role, "role"), (self.reset, "password"),
                             (self.deactivate, "deactivate"), (self.activate, "activate")):
            button.click(action(kind), inputs=[self.name, self.role, self.password],
                         outputs=[self.status, self.table, self.password], api_name=f"user_{kind}",
                         show_progress="hidden")
