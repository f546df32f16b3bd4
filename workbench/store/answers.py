"""Answers to task items: storing one (an edit supersedes, a retry is stored once), undo, skips and flags,
drafts, and the answers that stand."""

from __future__ import annotations

import json

from workbench.store.core import StoreCore, StoreError, insert_person_response
from workbench.store.rules import ANSWER_KINDS, STANDING_ANSWERS, standing


class Answers(StoreCore):
    # Answers that stand: the latest label of each annotator on each item of a task (older ones superseded).

    def saved_draft(self, task_id: str, item_id: str, annotator: str) -> str | None:
        row = self.cursor().execute("SELECT text FROM drafts WHERE task_id = ? AND item_id = ? AND annotator = ? "
                                    "ORDER BY updated_at DESC LIMIT 1", [task_id, item_id, annotator]).fetchone()
        return row[0] if row else None

    def answer(self, task_id: str, item_id: str, annotator: str) -> dict | None:
        """The annotator's standing answer on an item, or None."""
        rows = self.label_rows(
            f"WITH active AS ({STANDING_ANSWERS}) SELECT * FROM active WHERE item_id = ? AND annotator = ? "
            "ORDER BY created_at DESC LIMIT 1", [task_id, item_id, annotator])
        return rows[0] if rows else None

    def last_answer(self, task_id: str, annotator: str) -> dict | None:
        """The annotator's most recent standing answer in a task (what 'undo' and 'edit' act on)."""
        rows = self.label_rows(
            f"WITH active AS ({STANDING_ANSWERS}) SELECT * FROM active WHERE annotator = ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1", [task_id, annotator])
        return rows[0] if rows else None

    def task_answers(self, task_id: str) -> list[dict]:
        """Every standing (non-final) answer in a task, for agreement."""
        return self.label_rows(f"WITH active AS ({STANDING_ANSWERS}) SELECT * FROM active "
                                "ORDER BY item_id, annotator", [task_id])

    def final_answers(self, task_id: str) -> list[dict]:
        return self.label_rows(
            f"SELECT * FROM labels l WHERE task_id = ? AND final AND {standing()} ORDER BY created_at",
            [task_id])

    def add_answer(self, *, task_id: str, item_id: str, annotator: str, client_id: str, kind: str,
                   text: str | None = None, chosen_id: str | None = None, rejected_id: str | None = None,
                   outcome: str | None = None, ranking: list[str] | None = None, payload: dict | None = None,
                   final: bool = False, response_id: str | None = None) -> tuple[str, bool]:
        """Store an answer to a task item; returns (label id, stored now?).

        A retry with the same client id stores nothing and returns the first id. A second answer by the same
        annotator on the same item supersedes their first (an edit, kept in the history), so an annotator
        counts once per item; answers by different annotators never touch each other. The draft goes
        once the answer is stored.
        """
        with self._label_lock:
            with self.transaction() as con:
                existing = con.execute("SELECT id FROM labels WHERE client_id = ?", [client_id]).fetchone()
                if existing:
                    return existing[0], False
                item = con.execute("SELECT prompt_id, list_contains(annotators, ?) FROM task_items "
                                   "WHERE task_id = ? AND id = ?", [annotator, task_id, item_id]).fetchone()
                if item is None:
                    raise StoreError(f"task {task_id} has no item {item_id}")
                prompt_id, answered = item
                previous = None
                if not final and answered:
                    previous = con.execute(
                        f"WITH active AS ({STANDING_ANSWERS}) SELECT id FROM active WHERE item_id = ? "
                        "AND annotator = ? ORDER BY created_at DESC LIMIT 1", [task_id, item_id, annotator]
                    ).fetchone()
                counted = not final and previous is None
                if counted:
                    con.execute("UPDATE task_items SET answers = answers + 1, "
                                "annotators = list_append(annotators, ?) WHERE task_id = ? AND id = ?",
                                [annotator, task_id, item_id])
                if kind == "demonstration":
                    response_id = insert_person_response(con, prompt_id, text, annotator)
                label_id = f"lbl-{client_id}"
                con.execute(
                    "INSERT INTO labels (id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome, ranking, "
                    "payload, annotator, client_id, supersedes, source, task_id, item_id, final) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [label_id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome, ranking,
                     json.dumps(payload or {}), annotator, client_id, previous[0] if previous else None,
                     "adjudication" if final else "ui", task_id, item_id, final])
                me = self._annotators.get((task_id, annotator))
                if me is None or item_id in me.drafts:  # known to have no draft: no statement
                    con.execute("DELETE FROM drafts WHERE task_id = ? AND item_id = ? AND annotator = ?",
                                [task_id, item_id, annotator])
            if counted and task_id in self._windows:
                self._windows[task_id].answered(item_id, annotator)
            if me is not None:
                me.drafts.pop(item_id, None)
            return label_id, True

    def retract(self, *, label_id: str, annotator: str, client_id: str) -> bool:
        """Withdraw an answer (undo): a 'retraction' event supersedes it. Returns False on a retry."""
        with self._label_lock:
            with self.transaction() as con:
                if con.execute("SELECT 1 FROM labels WHERE client_id = ?", [client_id]).fetchone():
                    return False
                row = con.execute(
                    f"SELECT prompt_id, task_id, item_id, kind IN ? AND NOT coalesce(final, false) AND {standing()} "
                    "FROM labels l WHERE id = ? AND annotator = ?",
                    [list(ANSWER_KINDS), label_id, annotator]).fetchone()
                if row is None:
                    raise StoreError(f"{annotator} has no label {label_id}")
                if row[1] and row[3]:  # a standing task answer: the item needs one more answer again
                    con.execute("UPDATE task_items SET answers = answers - 1, annotators = list_filter(annotators, "
                                "lambda a: a <> ?) WHERE task_id = ? AND id = ?", [annotator, row[1], row[2]])
                con.execute(
                    "INSERT INTO labels (id, kind, prompt_id, annotator, client_id, supersedes, source, task_id, "
                    "item_id) VALUES (?, 'retraction', ?, ?, ?, ?, 'ui', ?, ?)",
                    [f"lbl-{client_id}", row[0], annotator, client_id, label_id, row[1], row[2]])
            if row[1] and row[3]:
                self._windows.pop(row[1], None)  # the item may lie before the window: read it again
            return True

    def add_item_event(self, *, task_id: str, item_id: str, annotator: str, event: str, client_id: str,
                       reason: str | None = None) -> bool:
        """Record a skip or a flag once per client id; returns False on a retry."""
        with self._label_lock:
            with self.transaction() as con:
                if con.execute("SELECT 1 FROM item_events WHERE client_id = ?", [client_id]).fetchone():
                    return False
                con.execute("INSERT INTO item_events (task_id, item_id, annotator, event, reason, client_id) "
                            "VALUES (?, ?, ?, ?, ?, ?)", [task_id, item_id, annotator, event, reason, client_id])
            me = self._annotators.get((task_id, annotator))
            if me is not None and event == "skip":
                me.skips[item_id] = me.skips.get(item_id, 0) + 1
            elif me is not None and event == "flag":
                me.flagged.add(item_id)
            return True

    def save_draft(self, *, task_id: str, item_id: str, annotator: str, text: str) -> None:
        with self._label_lock:
            with self.transaction() as con:
                con.execute("DELETE FROM drafts WHERE task_id = ? AND item_id = ? AND annotator = ?",
                            [task_id, item_id, annotator])
                con.execute("INSERT INTO drafts (task_id, item_id, annotator, text) VALUES (?, ?, ?, ?)",
                            [task_id, item_id, annotator, text])
            me = self._annotators.get((task_id, annotator))
            if me is not None and item_id not in me.drafts:
                known = self._windows.get(task_id)
                if known is not None and item_id in known.items:
                    me.drafts[item_id] = known.items[item_id][0]
                else:
                    row = self.cursor().execute("SELECT position FROM task_items WHERE task_id = ? AND id = ?",
                                                [task_id, item_id]).fetchone()
                    me.drafts[item_id] = row[0] if row else -1
