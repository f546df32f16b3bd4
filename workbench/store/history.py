"""An annotator's own work across tasks: what they submitted (and edited), skipped, flagged or left as a draft,
one line per item in its latest state, newest first, searchable. Only ever their own rows: the caller passes
the signed-in name, and nothing here reads another person's labels."""

from __future__ import annotations

from workbench.store.core import StoreCore
from workbench.store.rules import ANSWER_KINDS, standing

HISTORY_STATES = ("submitted", "edited", "skipped", "flagged", "draft")


class History(StoreCore):
    def annotator_history(self, annotator: str, *, task_id: str | None = None, search: str | None = None,
                          state: str | None = None, limit: int = 200) -> list[dict]:
        """Each item this annotator touched, in its latest state: an answer that stands wins over an earlier
        skip or draft of the same item (an edit reads 'edited'); an undone answer is gone, as in the Label tab.
        `search`: words in the prompt or in their own reply (any case)."""
        where, params = ["k = 1"], [annotator, annotator, annotator]
        if task_id:
            where.append("h.task_id = ?")
            params.append(task_id)
        if state:
            where.append("h.state = ?")
            params.append(state)
        if search:
            where.append("(coalesce(p.system, '') || ' ' || array_to_string(list_transform(p.messages, lambda m: "
                         "m.content), ' ') || ' ' || coalesce(r.text, h.own_text, '') || ' ' || coalesce(h.reason, '')) "
                         "ILIKE ('%' || ? || '%')")
            params.append(search)
        rows = self.cursor().execute(
            f"""WITH mine AS (
                SELECT l.task_id, l.item_id, l.created_at AS happened, NULL AS reason, l.kind, l.response_id,
                       NULL AS own_text, CASE WHEN l.supersedes IS NOT NULL THEN 'edited' ELSE 'submitted' END AS state
                FROM labels l WHERE l.annotator = ? AND l.task_id IS NOT NULL AND l.kind IN {ANSWER_KINDS}
                  AND NOT coalesce(l.final, false) AND {standing()}
                UNION ALL
                SELECT task_id, item_id, created_at, reason, NULL, NULL, NULL,
                       CASE event WHEN 'flag' THEN 'flagged' ELSE 'skipped' END
                FROM item_events WHERE annotator = ?
                UNION ALL
                SELECT task_id, item_id, updated_at, NULL, NULL, NULL, text, 'draft' FROM drafts WHERE annotator = ?),
            h AS (SELECT *, row_number() OVER (PARTITION BY task_id, item_id
                                               ORDER BY state IN ('submitted', 'edited') DESC, happened DESC) AS k
                  FROM mine)
            SELECT h.task_id, t.name, t.kind AS task_kind, h.item_id, h.state, h.reason, h.happened, h.kind,
                   p.system, p.messages, coalesce(r.text, h.own_text)
            FROM h JOIN tasks t ON t.id = h.task_id
            JOIN task_items i ON i.task_id = h.task_id AND i.id = h.item_id
            JOIN (SELECT id, any_value(system) AS system, any_value(messages) AS messages FROM prompts
                  WHERE id IN (SELECT prompt_id FROM task_items WHERE (task_id, id) IN
                               (SELECT (task_id, item_id) FROM mine)) GROUP BY id) p ON p.id = i.prompt_id
            LEFT JOIN (SELECT id, any_value(text) AS text FROM responses
                       WHERE id IN (SELECT response_id FROM mine) GROUP BY id) r ON r.id = h.response_id
            WHERE {" AND ".join(where)}
            ORDER BY h.happened DESC, h.item_id LIMIT ?""", [*params, int(limit)]).fetchall()
        names = ("task_id", "task", "task_kind", "item_id", "state", "reason", "at", "answer_kind", "system",
                 "messages", "reply")
        return [dict(zip(names, r, strict=True)) | {"at": str(r[6])} for r in rows]
