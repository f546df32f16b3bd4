"""Judges and their verdicts: the judge settings, the items a judge still has to judge, storing a job's
verdicts in one transaction, and an admin's bulk accept.

A verdict is a label of kind 'judgement' by annotator 'judge:<name>'; payload.as says which answer kind it
stands for ('preference', 'ranking', 'feedback') or why it is none ('inconsistent': it flipped when the
responses swapped places; 'abstain': no verdict could be read from the reply). Every path that reads people's
answers asks for kinds in ANSWER_KINDS, so judgements stay out of queue counts, agreement and exports unless
`judge_labels_sql` lets them in.
"""

from __future__ import annotations

import json

from workbench.errors import excerpt
from workbench.store.core import StoreCore, StoreError
from workbench.store.rules import as_chat, content_id, standing

JUDGE_PREFIX = "judge:"
JUDGE_MODES = ("exclude", "include", "only", "accepted")  # --judges: which judge labels an export reads
VERDICT_KINDS = ("preference", "ranking", "feedback")  # what payload.as names when a judgement is a verdict
SUGGESTION_MODES = ("hidden", "after", "preselect")  # tasks.suggestions: annotation/suggestions.py says why


def judge_labels_sql(mode: str) -> str:
    """SQL for the labels an export or a training run reads, as a relation to put where `labels` stands.

    People's labels as they are; judge verdicts, when `mode` lets them in, as labels of the kind they stand
    for (a flipped or unread verdict never: it is no preference). `accepted` lets in only verdicts an admin
    accepted, `include` every verdict, `only` verdicts and nothing of people's."""
    if mode not in JUDGE_MODES:
        raise ValueError(f"unknown --judges {mode!r}; choose one of {', '.join(JUDGE_MODES)}")
    people = "SELECT * FROM labels WHERE kind <> 'judgement'"
    if mode == "exclude":
        return f"({people})"
    verdicts = (f"SELECT * REPLACE (payload->>'$.as' AS kind) FROM labels WHERE kind = 'judgement' "
                f"AND payload->>'$.as' IN {VERDICT_KINDS}")
    if mode == "accepted":
        verdicts += " AND payload->>'$.accepted_by' IS NOT NULL"
    return f"({verdicts})" if mode == "only" else f"({people} UNION ALL {verdicts})"


class Judges(StoreCore):
    def save_judge(self, name: str, kind: str, config: dict, created_by: str | None) -> None:
        """Add a judge or replace its settings (a new template gives its later verdicts a new hash)."""
        with self.transaction() as con:
            con.execute("DELETE FROM judges WHERE name = ?", [name])
            con.execute("INSERT INTO judges (name, kind, config, created_by) VALUES (?, ?, ?, ?)",
                        [name, kind, json.dumps(config), created_by])

    def judge(self, name: str) -> dict | None:
        row = self.cursor().execute("SELECT name, kind, config, created_by, updated_at FROM judges WHERE name = ?",
                                    [name]).fetchone()
        return None if row is None else _judge_row(row)

    def judges(self) -> list[dict]:
        rows = self.cursor().execute(
            "SELECT name, kind, config, created_by, updated_at FROM judges ORDER BY name").fetchall()
        return [_judge_row(r) for r in rows]

    def items_to_judge(self, task_id: str, annotator: str, template_hash: str, *, every: bool) -> list[dict]:
        """The task's items (only those still needing people's answers unless `every`) that `annotator` has no
        standing judgement on with this template, in queue order, with prompt (as chat) and responses."""
        rows = self.cursor().execute(
            f"""WITH todo AS (
                SELECT i.id, i.position, i.prompt_id, i.response_ids FROM task_items i
                WHERE i.task_id = ? AND (? OR i.answers < (SELECT overlap FROM tasks WHERE id = ?))
                  AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.task_id = i.task_id AND l.item_id = i.id
                      AND l.kind = 'judgement' AND l.annotator = ? AND l.payload->>'$.template_hash' = ?
                      AND {standing()})),
            p AS (SELECT id, any_value(system) AS system, any_value(messages) AS messages FROM prompts
                  WHERE id IN (SELECT prompt_id FROM todo) GROUP BY id),
            r AS (SELECT id, any_value(text) AS text FROM responses
                  WHERE prompt_id IN (SELECT prompt_id FROM todo) GROUP BY id)
            SELECT todo.id, todo.prompt_id, p.system, p.messages, todo.response_ids,
                   list(r.text ORDER BY list_position(todo.response_ids, r.id)) AS texts
            FROM todo JOIN p ON p.id = todo.prompt_id JOIN r ON list_contains(todo.response_ids, r.id)
            GROUP BY ALL ORDER BY any_value(todo.position)""",
            [task_id, every, task_id, annotator, template_hash]).fetchall()
        return [{"id": item_id, "prompt_id": prompt_id, "prompt": as_chat(system, messages),
                 "response_ids": list(response_ids), "responses": list(texts)}
                for item_id, prompt_id, system, messages, response_ids, texts in rows]

    def item_response_ids(self, task_id: str) -> dict[str, list[str]]:
        """Each item's responses in the item's order: where a verdict's place among them is read from."""
        rows = self.cursor().execute("SELECT id, response_ids FROM task_items WHERE task_id = ?", [task_id]).fetchall()
        return {item_id: list(ids) for item_id, ids in rows}

    def add_judgements(self, task_id: str, rows: list[dict], *, job_id: str) -> int:
        """Store a judging job's verdicts, all in one transaction (a failure stores none). Each row: item_id,
        prompt_id, annotator, payload, and chosen_id/rejected_id/outcome, ranking or response_id as its
        payload.as needs. A second verdict by the same judge on an item supersedes the first."""
        with self._label_lock, self.transaction() as con:
            for row in rows:
                previous = con.execute(
                    f"SELECT id FROM labels l WHERE task_id = ? AND item_id = ? AND kind = 'judgement' "
                    f"AND annotator = ? AND {standing()}", [task_id, row["item_id"], row["annotator"]]).fetchone()
                con.execute(
                    "INSERT INTO labels (id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome, ranking, "
                    "payload, annotator, supersedes, source, task_id, item_id) "
                    "VALUES (?, 'judgement', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ["jdg-" + content_id(job_id, row["annotator"], row["item_id"]), row["prompt_id"],
                     row.get("response_id"), row.get("chosen_id"), row.get("rejected_id"), row.get("outcome"),
                     row.get("ranking"), json.dumps(row["payload"]), row["annotator"],
                     previous[0] if previous else None, f"judge job {job_id}", task_id, row["item_id"]])
        return len(rows)

    def judgements(self, task_id: str, annotator: str | None = None) -> list[dict]:
        """The standing judgements in a task (of one judge, when given), by item."""
        who = "AND l.annotator = ?" if annotator else ""
        return self.label_rows(
            f"SELECT * FROM labels l WHERE l.task_id = ? AND l.kind = 'judgement' {who} AND {standing()} "
            "ORDER BY l.item_id, l.annotator", [task_id, *([annotator] if annotator else [])])

    def item_judgements(self, task_id: str, item_id: str) -> list[dict]:
        """Every judge's standing judgement on one item (what the Label tab shows as suggestions)."""
        return self.label_rows(
            f"SELECT * FROM labels l WHERE l.task_id = ? AND l.item_id = ? AND l.kind = 'judgement' AND {standing()} "
            "ORDER BY l.annotator", [task_id, item_id])

    def task_suggestions(self, task_id: str) -> str:
        """Whether annotators see judges' verdicts on this task: 'hidden' (also when never set), 'after' their
        answer, or 'preselect' (annotation/suggestions.py says why each)."""
        row = self.cursor().execute("SELECT suggestions FROM tasks WHERE id = ?", [task_id]).fetchone()
        return (row[0] if row else None) or "hidden"

    def set_task_suggestions(self, task_id: str, mode: str) -> None:
        if mode not in SUGGESTION_MODES:
            raise StoreError(f"suggestions {excerpt(mode)}: choose one of {', '.join(SUGGESTION_MODES)}")
        with self.transaction() as con:
            if not con.execute("SELECT 1 FROM tasks WHERE id = ?", [task_id]).fetchone():
                raise StoreError(f"no task {excerpt(task_id)}")
            con.execute("UPDATE tasks SET suggestions = ? WHERE id = ?", [mode, task_id])

    def accept_judgements(self, label_ids: list[str], *, accepted_by: str) -> int:
        """Record an admin's acceptance of these verdicts: each becomes a new judgement label (same judge, same
        verdict, payload.accepted_by) superseding the old, in one transaction. The judge stays the annotator:
        an accepted verdict is never a person's vote."""
        with self._label_lock, self.transaction() as con:
            con.execute(
                f"""INSERT INTO labels (id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome, ranking,
                        payload, annotator, supersedes, source, task_id, item_id)
                    SELECT 'acc-' || l.id, 'judgement', l.prompt_id, l.response_id, l.chosen_id, l.rejected_id,
                        l.outcome, l.ranking, json_merge_patch(l.payload, json_object('accepted_by', ?::VARCHAR)),
                        l.annotator, l.id, 'accepted by ' || ?, l.task_id, l.item_id
                    FROM labels l WHERE l.id IN (SELECT unnest(?::VARCHAR[])) AND l.kind = 'judgement'
                      AND l.payload->>'$.accepted_by' IS NULL AND {standing()}""",
                [accepted_by, accepted_by, label_ids])
            return con.execute("SELECT count(*) FROM labels WHERE supersedes IN (SELECT unnest(?::VARCHAR[])) "
                               "AND kind = 'judgement' AND payload->>'$.accepted_by' = ?",
                               [label_ids, accepted_by]).fetchone()[0]

    def unfinished_judge_job(self, task_id: str, judge: dict, template_hash: str) -> str | None:
        """The newest judging job on this task that failed or was cancelled with the same judge settings (`judge`:
        the job's spec) and template: a new job picks up the replies it already had."""
        rows = self.cursor().execute(
            "SELECT dir, config FROM runs WHERE stage = 'judge' AND status IN ('failed', 'cancelled') "
            "AND config->>'$.task' = ? AND config->>'$.judge.name' = ? AND config->>'$.template_hash' = ? "
            "ORDER BY created_at DESC", [task_id, judge["name"], template_hash]).fetchall()
        return next((d for d, config in rows if json.loads(config)["judge"] == judge), None)


def _judge_row(row: tuple) -> dict:
    name, kind, config, created_by, updated_at = row
    return {"name": name, "kind": kind, "config": json.loads(config), "created_by": created_by,
            "updated_at": str(updated_at)}
