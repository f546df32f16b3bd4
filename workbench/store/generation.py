"""Generated replies and A/B review: the prompts a generation job snapshots, its replies, and review votes."""

from __future__ import annotations

import json

import pyarrow as pa

from workbench.store.core import StoreCore, StoreError, insert_new
from workbench.store.rules import as_chat, hash_sql, prompt_selection, standing


class Generation(StoreCore):
    def newest_replies(self, version: str, prompt_ids: list[str]) -> dict[str, str]:
        """The newest reply of a model version to each of these prompts that has one."""
        if self.model_version(version) is None:
            raise StoreError(f"no model version {version!r}")
        rows = self.cursor().execute(
            "SELECT prompt_id, arg_max(text, created_at) FROM responses WHERE origin = 'model' AND "
            "model_version_id = ? AND prompt_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1",
            [version, prompt_ids]).fetchall()
        return dict(rows)

    def selected_prompts(self, *, sources: list[str] | None = None, tags: list[str] | None = None,
                         query: str | None = None, limit: int | None = None) -> list[dict]:
        """Prompts chosen like a task's (file glob, tags, text), in import order, as conversations with the
        system prompt first: what a generation job snapshots."""
        where, params = prompt_selection(sources, tags, query)
        rows = self.cursor().execute(
            f"SELECT id, any_value(system), any_value(messages) FROM prompts p WHERE {where} GROUP BY id "
            f"ORDER BY min(source), min(source_line), id {'LIMIT ?' if limit else ''}",
            params + ([limit] if limit else [])).fetchall()
        return [{"prompt_id": r[0], "prompt": as_chat(r[1], r[2])}
                for r in rows]

    def add_generated(self, rows: list[dict], *, job_id: str, sampling: dict, backend: str) -> int:
        """Store generated replies (prompt_id, version, sample, text, tokens) as model responses, all or none;
        returns how many were new. A reply's id hashes its prompt, version and text, so two versions saying
        the same thing stay two responses (a review pairs them) and a rerun adds nothing twice."""
        if not rows:
            return 0
        table = pa.table({"prompt_id": [r["prompt_id"] for r in rows], "version": [r["version"] for r in rows],
                          "sample": [int(r["sample"]) for r in rows], "text": [r["text"] for r in rows],
                          "tokens": [int(r.get("tokens", 0)) for r in rows], "line": list(range(len(rows)))})
        with self._label_lock, self.transaction() as con:
            con.register("generated_rows", table)
            try:
                missing = con.execute("SELECT count(*) FROM generated_rows g WHERE g.prompt_id NOT IN "
                                      "(SELECT id FROM prompts)").fetchone()[0]
                if missing:
                    raise StoreError(f"{missing} generated replies name prompts that are not in the store")
                before = con.execute("SELECT count(*) FROM responses").fetchone()[0]
                con.execute(f"CREATE TEMP TABLE generated_ids AS SELECT {hash_sql('prompt_id', 'version', 'text')} "
                            "AS id, * FROM generated_rows")
                insert_new(con, "responses", "id, prompt_id, text, origin, model_version_id, generation, source",
                            "s.id, s.prompt_id, s.text, 'model', s.version, json_object('sample', s.sample, "
                            "'tokens', s.tokens, 'job', ?, 'backend', ?, 'sampling', ?::JSON), 'generate:' || ?",
                            "generated_ids", "id", [job_id, backend, json.dumps(sampling), job_id])
                added = con.execute("SELECT count(*) FROM responses").fetchone()[0] - before
            finally:
                con.execute("DROP TABLE IF EXISTS generated_ids")
                con.unregister("generated_rows")
        return added

    def prompts_with_replies_of(self, version: str, prompt_ids: list[str]) -> set[str]:
        """Which of these prompts already have a generated reply of this version."""
        return {r[0] for r in self.cursor().execute(
            "SELECT DISTINCT prompt_id FROM responses WHERE origin = 'model' AND model_version_id = ? AND "
            "prompt_id IN (SELECT unnest(?::VARCHAR[]))", [version, list(prompt_ids)]).fetchall()}

    def response_versions(self, response_ids: list[str]) -> dict[str, str | None]:
        """The model version behind each response (None for a person's or an imported one)."""
        return dict(self.cursor().execute(
            "SELECT id, any_value(model_version_id) FROM responses WHERE id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY id", [list(response_ids)]).fetchall())

    def review_votes(self, task_ids: list[str] | None = None) -> list[dict]:
        """Standing votes of review tasks (edits and undos applied): the two versions, which one won (None
        for a tie or 'both bad'), the outcome, who voted, in which review."""
        rows = self.cursor().execute(
            f"""SELECT l.task_id, l.item_id, l.annotator, l.outcome, c.model_version_id, r.model_version_id,
                      l.created_at
               FROM labels l JOIN tasks t ON t.id = l.task_id AND t.kind = 'review'
               JOIN responses c ON c.id = l.chosen_id JOIN responses r ON r.id = l.rejected_id
               WHERE l.kind = 'preference' AND NOT coalesce(l.final, false)
                 AND {standing()}
                 AND (? IS NULL OR list_contains(?::VARCHAR[], l.task_id))
               ORDER BY l.created_at, l.id""", [task_ids, task_ids]).fetchall()
        return [{"review": r[0], "item_id": r[1], "annotator": r[2], "outcome": r[3], "chosen": r[4],
                 "rejected": r[5], "winner": r[4] if r[3] == "chosen" else None, "created_at": str(r[6])}
                for r in rows]
