"""The queue: which open item an annotator gets next, the items' contents, and the queue order active
selection sets. The open head of each queue is kept in memory (open_items.py)."""

from __future__ import annotations

import json

from workbench.store.core import StoreCore
from workbench.store.open_items import Annotator, Window
from workbench.store.rules import OWN_ITEMS, as_chat


class Queue(StoreCore):
    QUEUE_BATCH = 512

    def queue_candidates(self, task_id: str, annotator: str, overlap: int, *, limit: int) -> list[tuple[str, int]]:
        """Items this annotator may take next, best first, with the answers each has: items they have a
        draft on, then never-skipped before skipped ones, then task order. Leaves out items with
        `overlap` answers and items this annotator answered or flagged. Served from the in-memory head of
        the queue (open_items.py); SQL reads the next batch of items when the head runs short."""
        with self._label_lock:
            window = self._windows.get(task_id)
            if window is None or window.overlap != overlap:
                window = self._windows[task_id] = Window(overlap)
            me = self._annotator(task_id, annotator)
            for _ in range(8):
                picked = window.candidates(annotator, me, limit)
                if picked is not None:
                    return picked
                rows = self.cursor().execute(
                    "SELECT id, position, answers, annotators FROM task_items WHERE task_id = ? AND position > ? "
                    "AND answers < ? ORDER BY position LIMIT ?",
                    [task_id, window.end, overlap, self.QUEUE_BATCH]).fetchall()
                window.extend(rows, self.QUEUE_BATCH)
        return self._queue_candidates_sql(task_id, annotator, overlap, limit=limit)  # skips far down the task

    def _annotator(self, task_id: str, annotator: str) -> Annotator:
        """This annotator's skips, flags and drafts in the task, read once, then kept by the writes."""
        me = self._annotators.get((task_id, annotator))
        if me is None:
            con = self.cursor()
            me = self._annotators[(task_id, annotator)] = Annotator()
            for item_id, skips, flagged in con.execute(
                    "SELECT item_id, count(*) FILTER (WHERE event = 'skip'), bool_or(event = 'flag') FROM item_events "
                    "WHERE task_id = ? AND annotator = ? GROUP BY item_id", [task_id, annotator]).fetchall():
                if skips:
                    me.skips[item_id] = skips
                if flagged:
                    me.flagged.add(item_id)
            me.own.update(r[0] for r in con.execute(OWN_ITEMS, [task_id, annotator]).fetchall())
            me.drafts.update(con.execute(
                "SELECT i.id, i.position FROM task_items i WHERE i.task_id = ? AND list_contains("
                "(SELECT list(item_id) FROM drafts WHERE task_id = ? AND annotator = ?), i.id)",
                [task_id, task_id, annotator]).fetchall())
        return me

    def _queue_candidates_sql(self, task_id: str, annotator: str, overlap: int, *,
                              limit: int) -> list[tuple[str, int]]:
        """queue_candidates in one query over the whole task (for an annotator who skipped thousands)."""
        rows = self.cursor().execute(
            f"""WITH ev AS (SELECT item_id, count(*) FILTER (WHERE event = 'skip') AS skips,
                                  bool_or(event = 'flag') AS flagged
                           FROM item_events WHERE task_id = ? AND annotator = ? GROUP BY item_id),
            dr AS (SELECT DISTINCT item_id FROM drafts WHERE task_id = ? AND annotator = ?)
            SELECT i.id, i.answers
            FROM task_items i LEFT JOIN ev ON ev.item_id = i.id LEFT JOIN dr ON dr.item_id = i.id
            WHERE i.task_id = ? AND i.answers < ? AND NOT list_contains(i.annotators, ?)
              AND NOT coalesce(ev.flagged, false) AND i.id NOT IN ({OWN_ITEMS})
            ORDER BY dr.item_id IS NOT NULL DESC,
                     coalesce(ev.skips, 0), i.position
            LIMIT ?""",
            [task_id, annotator, task_id, annotator, task_id, overlap, annotator, task_id, annotator, limit],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def task_item(self, task_id: str, item_id: str, annotator: str | None = None) -> dict | None:
        """One item with its prompt and responses, and the text to start from: the annotator's saved draft,
        else the item's draft response. (Point lookups, one table each: a join here costs 100 ms at 1M rows.)"""
        con = self.cursor()
        row = con.execute("SELECT prompt_id, response_ids, draft_response_id FROM task_items "
                          "WHERE task_id = ? AND id = ?", [task_id, item_id]).fetchone()
        if row is None:
            return None
        prompt_id, response_ids, draft_response_id = row
        system, messages = con.execute("SELECT system, messages FROM prompts WHERE id = ? LIMIT 1",
                                       [prompt_id]).fetchone()
        wanted = list(response_ids) + ([draft_response_id] if draft_response_id else [])
        texts = dict(con.execute("SELECT id, any_value(text) FROM responses WHERE prompt_id = ? AND "
                                 "list_contains(?, id) GROUP BY id", [prompt_id, wanted]).fetchall()) if wanted else {}
        saved = None
        if annotator is not None:
            found = con.execute("SELECT text FROM drafts WHERE task_id = ? AND item_id = ? AND annotator = ? "
                                "ORDER BY updated_at DESC LIMIT 1", [task_id, item_id, annotator]).fetchone()
            saved = found[0] if found else None
        return {"id": item_id, "task_id": task_id, "prompt_id": prompt_id, "system": system, "messages": messages,
                "responses": [{"id": rid, "text": texts[rid]} for rid in response_ids if rid in texts],
                "draft": saved if saved is not None else texts.get(draft_response_id, ""),
                "saved_draft": saved is not None}

    def open_items_for_scoring(self, task_id: str) -> list[dict]:
        """The task's items that still need answers, with their prompt (as chat messages) and responses in
        the item's order: what a reward model scores to decide which to label first."""
        rows = self.cursor().execute(
            """WITH open AS (SELECT i.id, i.position, i.prompt_id, i.response_ids FROM task_items i
                             WHERE i.task_id = ? AND i.answers < (SELECT overlap FROM tasks WHERE id = ?)),
            p AS (SELECT id, any_value(system) AS system, any_value(messages) AS messages FROM prompts
                  WHERE id IN (SELECT prompt_id FROM open) GROUP BY id),
            r AS (SELECT id, any_value(text) AS text FROM responses
                  WHERE prompt_id IN (SELECT prompt_id FROM open) GROUP BY id),
            texts AS (SELECT open.id, list(r.text ORDER BY list_position(open.response_ids, r.id)) AS texts
                      FROM open JOIN r ON list_contains(open.response_ids, r.id) GROUP BY open.id)
            SELECT open.id, open.prompt_id, p.system, p.messages, open.response_ids, coalesce(texts.texts, [])
            FROM open JOIN p ON p.id = open.prompt_id LEFT JOIN texts ON texts.id = open.id
            ORDER BY open.position""", [task_id, task_id]).fetchall()
        out = []
        for item_id, prompt_id, system, messages, response_ids, texts in rows:
            chat = as_chat(system, messages)
            out.append({"id": item_id, "prompt_id": prompt_id, "prompt": chat, "response_ids": list(response_ids),
                        "responses": [t for t in texts if t is not None]})
        return out

    def set_queue_order(self, task_id: str, priorities: dict[str, tuple[float, str]], how: dict) -> int:
        """Reorder a task's queue in one transaction: items with enough answers first (as they were), then
        open items by `priorities` (item id -> (priority, reason), highest first), then open items without one
        in their old order. Returns how many items got a priority. An empty `priorities` with how["by"] ==
        "task order" puts the task back in the order it was made with."""
        ids = list(priorities)
        with self._label_lock, self.transaction() as con:
            con.execute("UPDATE task_items SET first_position = coalesce(first_position, position), priority = NULL, "
                        "priority_reason = NULL WHERE task_id = ?", [task_id])
            if ids:
                con.execute(
                    """UPDATE task_items SET priority = s.p, priority_reason = s.reason
                       FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::DOUBLE[]) AS p,
                                    unnest(?::VARCHAR[]) AS reason) s
                       WHERE task_items.task_id = ? AND task_items.id = s.id""",
                    [ids, [priorities[i][0] for i in ids], [priorities[i][1] for i in ids], task_id])
            reset = how.get("by") == "task order"
            con.execute(
                f"""UPDATE task_items SET position = o.pos
                   FROM (SELECT id, row_number() OVER (ORDER BY
                             {"first_position" if reset else
                              "answers >= (SELECT overlap FROM tasks WHERE id = ?) DESC, priority IS NULL, "
                              "priority DESC, position"}) AS pos
                         FROM task_items WHERE task_id = ?) o
                   WHERE task_items.task_id = ? AND task_items.id = o.id""",
                ([] if reset else [task_id]) + [task_id, task_id])
            con.execute("UPDATE tasks SET queue_order = ? WHERE id = ?",
                        [None if reset else json.dumps(how | {"prioritized": len(ids)}), task_id])
            # the in-memory queue head and the annotators' draft positions follow the old order: read them again
            self._windows.pop(task_id, None)
            for key in [k for k in self._annotators if k[0] == task_id]:
                del self._annotators[key]
        return len(ids)

    def queue_order(self, task_id: str) -> dict | None:
        """How the task's queue was last ordered (None: in the order it was made)."""
        row = self.cursor().execute("SELECT queue_order FROM tasks WHERE id = ?", [task_id]).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def item_priority(self, task_id: str, item_id: str) -> tuple[int, float | None, str | None] | None:
        """(position in the queue, priority, reason) of one item, for admins."""
        return self.cursor().execute("SELECT position, priority, priority_reason FROM task_items "
                                     "WHERE task_id = ? AND id = ?", [task_id, item_id]).fetchone()

    def items_content(self, task_id: str, item_id: str, window: int) -> dict[str, dict]:
        """Prompt, responses and draft response of an item and the `window` items after it in task order.
        Prompts and responses never change (their ids hash their content), so callers may cache this."""
        con = self.cursor()
        items = con.execute(
            """SELECT i.id, i.prompt_id, i.response_ids, i.draft_response_id FROM task_items i
               WHERE i.task_id = ? AND i.position BETWEEN
                   (SELECT position FROM task_items WHERE task_id = ? AND id = ?) AND
                   (SELECT position FROM task_items WHERE task_id = ? AND id = ?) + ?""",
            [task_id, task_id, item_id, task_id, item_id, window]).fetchall()
        if not items:
            return {}
        prompt_ids = sorted({row[1] for row in items})
        prompts = {r[0]: (r[1], r[2]) for r in con.execute(
            "SELECT id, any_value(system), any_value(messages) FROM prompts "
            "WHERE id IN (SELECT unnest(?::VARCHAR[])) GROUP BY id", [prompt_ids]).fetchall()}
        texts = dict(con.execute(
            "SELECT id, any_value(text) FROM responses WHERE prompt_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY id",
            [prompt_ids]).fetchall())  # a semi join: 3x cheaper than list_contains on every row
        return {row[0]: {"id": row[0], "task_id": task_id, "prompt_id": row[1], "system": prompts[row[1]][0],
                         "messages": prompts[row[1]][1],
                         "responses": [{"id": rid, "text": texts[rid]} for rid in row[2] if rid in texts],
                         "draft_response": texts.get(row[3], "")}
                for row in items if row[1] in prompts}
