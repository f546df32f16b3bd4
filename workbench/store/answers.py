"""Answers to task items: storing one (an edit supersedes, a retry is stored once), undo, skips and flags,
drafts, and the answers that stand.

Every answer is checked where it is stored. Given the server's leases, the transaction that inserts an
answer or a draft, under the write lock, first checks that the item is leased to that person (or that they
edit their own standing answer) and that its standing answers are below the task's overlap; a client id
names one submit of one person on one item, and any other use of it is refused. The browser is a
convenience, never the guard.
"""

from __future__ import annotations

import json
from typing import Protocol

import duckdb

from workbench.store.core import StoreCore, StoreError, insert_person_response
from workbench.store.rules import ANSWER_KINDS, STANDING_ANSWERS, standing


class AnswerRefused(StoreError):
    """An answer, draft, undo, skip or flag the store will not take; the one-line message says why."""


class ItemComplete(AnswerRefused):
    """The item already has the answers its task's overlap asks for."""


class ItemLeasedToOther(AnswerRefused):
    """The item's open slots are leased to other annotators."""


class NoLease(AnswerRefused):
    """The annotator does not hold the item (their lease ran out and the slot went, or it was never theirs)."""


class ClientIdReused(AnswerRefused):
    """The client id already names another person's submit, or this person's submit on another item."""


class LeaseBook(Protocol):
    """The server's leases on items (annotation.queue.Leases), asked under the write lock."""

    def holds(self, task_id: str, item_id: str, annotator: str, free: int) -> bool: ...
    def others(self, task_id: str, item_id: str, annotator: str) -> int: ...
    def take(self, task_id: str, item_id: str, annotator: str) -> None: ...
    def release(self, task_id: str, annotator: str, item_id: str | None = None) -> None: ...


# the item, whether this annotator has a standing answer on it, and its answers
_SLOT_SQL = "SELECT prompt_id, list_contains(annotators, ?), answers FROM task_items WHERE task_id = ? AND id = ?"


def _check_slot(lease: LeaseBook, task_id: str, item_id: str, annotator: str, answers: int, overlap: int, *,
               what: str = "answer") -> None:
    """Refuse unless `annotator` may add a new answer (or a draft for one) to the item now; renews their lease."""
    free = overlap - answers
    if free <= 0:
        raise ItemComplete(f"item {item_id} already has its {overlap} answer{'s' * (overlap > 1)}, so this {what} "
                           "is not stored: reload the page for your next item")
    if lease.holds(task_id, item_id, annotator, free):
        return
    if lease.others(task_id, item_id, annotator) >= free:
        raise ItemLeasedToOther(f"item {item_id} is leased to someone else, so this {what} is not stored: reload "
                                "the page for your next item")
    raise NoLease(f"item {item_id} is not leased to you (your lease ran out, or the item was never yours), so this "
                  f"{what} is not stored: reload the page for your next item")


def _use(kind: str) -> str:
    """What a client id names: an answer (of any kind), an undo, a skip or a flag."""
    return {"retraction": "undo", "skip": "skip", "flag": "flag"}.get(kind, "answer")


def _check_repeat(existing: tuple | None, annotator: str, task_id: str, item_id: str | None, kind: str) -> bool:
    """Whether a client id already stored (`existing`: annotator, task, item, kind) names this same submit
    retried (True) or nothing yet (False). Any other use of it is refused. `item_id` None: an undo, which names
    no item (it takes the last answer)."""
    if existing is None:
        return False
    who, task, item, stored = existing
    if who != annotator:
        raise ClientIdReused("this client id was already used by another person: reload the page for a fresh one")
    if task != task_id or (item_id is not None and item != item_id) or _use(stored) != _use(kind):
        raise ClientIdReused(f"this client id was already used for your {_use(stored)} on item {item} of task "
                             f"{task}: reload the page for a fresh one")
    return True


class Answers(StoreCore):
    # Answers that stand: the latest label of each annotator on each item of a task (older ones superseded).

    def _overlap(self, con: duckdb.DuckDBPyConnection, task_id: str) -> int:
        """A task's overlap, read once: it is fixed when the task is made, and reading it in every submit's
        transaction cost 0.5 ms of a 6 ms submit at 1M labels. Called under the write lock."""
        known = self.__dict__.setdefault("_overlaps", {})
        if task_id not in known:
            known[task_id] = con.execute("SELECT overlap FROM tasks WHERE id = ?", [task_id]).fetchone()[0]
        return known[task_id]

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
                   final: bool = False, response_id: str | None = None,
                   lease: LeaseBook | None = None) -> tuple[str, bool, bool]:
        """Store an answer to a task item; returns (label id, stored now?, a new item for this annotator?).

        A retry with the same client id stores nothing and returns the first id; the same client id from
        another person, or for another item, is refused (`ClientIdReused`). A second answer by the same
        annotator on the same item supersedes their first (an edit, kept in the history), so an annotator
        counts once per item; answers by different annotators never touch each other. The draft goes once
        the answer is stored.

        With `lease` (every annotator's submit: the handlers pass the server's leases), a new answer is taken
        only on an item leased to this annotator that has fewer standing answers than the task's overlap,
        checked in the transaction that stores it; the lease is let go once it is stored. Without it (an
        admin's final answer, imports, tests of the queue) nothing but the client id is checked.
        """
        with self._label_lock:
            with self.transaction() as con:
                existing = con.execute("SELECT id FROM labels WHERE client_id = ?", [client_id]).fetchone()
                if existing and _check_repeat(  # what it names, read only on a hit: retries are rare
                        con.execute("SELECT annotator, task_id, item_id, kind FROM labels WHERE id = ?",
                                    existing).fetchone(), annotator, task_id, item_id, kind):
                    return existing[0], False, False
                item = con.execute(_SLOT_SQL, [annotator, task_id, item_id]).fetchone()
                if item is None:
                    raise StoreError(f"task {task_id} has no item {item_id}")
                prompt_id, answered, answers = item
                if lease is not None and not final and not answered:
                    _check_slot(lease, task_id, item_id, annotator, answers, self._overlap(con, task_id))
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
            if lease is not None and not final:
                lease.release(task_id, annotator, item_id)
            return label_id, True, counted

    def retract(self, *, label_id: str, annotator: str, client_id: str) -> bool:
        """Withdraw one answer (undo): a 'retraction' event supersedes it. Returns False on a retry."""
        with self._label_lock:
            with self.transaction() as con:
                row = con.execute(
                    f"SELECT prompt_id, task_id, item_id, kind IN ? AND NOT coalesce(final, false) AND {standing()} "
                    "FROM labels l WHERE id = ? AND annotator = ?",
                    [list(ANSWER_KINDS), label_id, annotator]).fetchone()
                if row is None:
                    raise StoreError(f"{annotator} has no label {label_id}")
                if self._repeated_undo(con, client_id, annotator, row[1]) is not None:
                    return False
                self._supersede(con, annotator, client_id, label_id, *row)
            if row[1] and row[3]:
                self._windows.pop(row[1], None)  # the item may lie before the window: read it again
            return True

    def undo_last(self, *, task_id: str, annotator: str, client_id: str,
                  lease: LeaseBook | None = None) -> tuple[str, str | None]:
        """Withdraw this annotator's last standing answer in the task, found and superseded in one transaction.

        Returns ("undone", its item), ("repeat", the item) when this undo's client id was stored already (a
        retry: nothing changes, nothing is leased), or ("nothing", None). With `lease`, the annotator takes the
        item's lease again to answer it anew, if the slot they freed is still free (it always is unless leases
        were handed out past the overlap); an undo never leases an item beyond its overlap."""
        with self._label_lock:
            with self.transaction() as con:
                repeated = self._repeated_undo(con, client_id, annotator, task_id)
                if repeated is not None:
                    return "repeat", repeated
                last = con.execute(
                    f"WITH active AS ({STANDING_ANSWERS}) SELECT id, prompt_id, item_id FROM active "
                    "WHERE annotator = ? ORDER BY created_at DESC, id DESC LIMIT 1", [task_id, annotator]).fetchone()
                if last is None:
                    return "nothing", None
                label_id, prompt_id, item_id = last
                self._supersede(con, annotator, client_id, label_id, prompt_id, task_id, item_id, True)
                answers = con.execute(_SLOT_SQL, [annotator, task_id, item_id]).fetchone()[2]
                overlap = self._overlap(con, task_id)
            self._windows.pop(task_id, None)  # the item may lie before the window: read it again
            if lease is not None and overlap - answers > lease.others(task_id, item_id, annotator):
                lease.take(task_id, item_id, annotator)
            return "undone", item_id

    @staticmethod
    def _repeated_undo(con: duckdb.DuckDBPyConnection, client_id: str, annotator: str, task_id: str) -> str | None:
        """The item of the undo this client id already names (a retry), or None; refuses any other use of it."""
        existing = con.execute("SELECT annotator, task_id, item_id, kind FROM labels WHERE client_id = ?",
                               [client_id]).fetchone()
        return existing[2] if _check_repeat(existing, annotator, task_id, None, "retraction") else None

    @staticmethod
    def _supersede(con: duckdb.DuckDBPyConnection, annotator: str, client_id: str, label_id: str, prompt_id: str,
                   task_id: str | None, item_id: str | None, counted: bool) -> None:
        """The retraction of `label_id`; a standing task answer leaves its item one answer short again."""
        if task_id and counted:
            con.execute("UPDATE task_items SET answers = answers - 1, annotators = list_filter(annotators, "
                        "lambda a: a <> ?) WHERE task_id = ? AND id = ?", [annotator, task_id, item_id])
        con.execute(
            "INSERT INTO labels (id, kind, prompt_id, annotator, client_id, supersedes, source, task_id, "
            "item_id) VALUES (?, 'retraction', ?, ?, ?, ?, 'ui', ?, ?)",
            [f"lbl-{client_id}", prompt_id, annotator, client_id, label_id, task_id, item_id])

    def add_item_event(self, *, task_id: str, item_id: str, annotator: str, event: str, client_id: str,
                       reason: str | None = None) -> bool:
        """Record a skip or a flag once per client id; returns False on a retry (the client id's other uses
        are refused)."""
        with self._label_lock:
            with self.transaction() as con:
                existing = con.execute("SELECT annotator, task_id, item_id, event FROM item_events WHERE client_id = ?",
                                       [client_id]).fetchone()
                if _check_repeat(existing, annotator, task_id, item_id, event):
                    return False
                con.execute("INSERT INTO item_events (task_id, item_id, annotator, event, reason, client_id) "
                            "VALUES (?, ?, ?, ?, ?, ?)", [task_id, item_id, annotator, event, reason, client_id])
            me = self._annotators.get((task_id, annotator))
            if me is not None and event == "skip":
                me.skips[item_id] = me.skips.get(item_id, 0) + 1
            elif me is not None and event == "flag":
                me.flagged.add(item_id)
            return True

    def save_draft(self, *, task_id: str, item_id: str, annotator: str, text: str,
                   lease: LeaseBook | None = None) -> None:
        """Keep a half-written answer. With `lease`, only on an item leased to this annotator (renewing the
        lease: typing keeps it alive) or one they answered already (an edit), checked as an answer is."""
        with self._label_lock:
            with self.transaction() as con:
                if lease is not None:
                    item = con.execute(_SLOT_SQL, [annotator, task_id, item_id]).fetchone()
                    if item is None:
                        raise StoreError(f"task {task_id} has no item {item_id}")
                    if not item[1]:
                        _check_slot(lease, task_id, item_id, annotator, item[2], self._overlap(con, task_id),
                                    what="draft")
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
