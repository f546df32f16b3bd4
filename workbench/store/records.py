"""Prompts, responses and labels as records: bulk import, single labels outside tasks, and reading them back.

Each import is one transaction over Arrow tables (an Arrow insert is ~30x faster than `executemany`), a
block of the file at a time so memory does not grow with the file; ids are content hashes (rules.py), so a
file imported twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from workbench.store.core import StoreCore, StoreError, insert_new, insert_person_response
from workbench.store.rules import PROMPT_ID_SQL, as_chat, hash_sql

# DuckDB's memory while an import runs: the transaction's new rows and staged blocks spill to disk past it,
# so an import's memory stays flat however long the file (BENCHMARKS.md), where the default (80% of RAM)
# let it grow with the file.
IMPORT_MEMORY_LIMIT = "512MB"


@dataclass
class ImportItem:
    """One file's normalized records, ready to insert: a table, or an iterable of tables (a stream, read one
    at a time; its `kind` and `fmt` are read after each table, so a stream may know them only once its first
    table is out)."""

    records: pa.Table | Iterable[pa.Table]
    kind: str
    path: str
    file_hash: str
    fmt: str


@dataclass
class ImportCounts:
    rows_read: int
    prompts_added: int
    responses_added: int
    labels_added: int
    import_id: str | None

    @property
    def added_anything(self) -> bool:
        return bool(self.prompts_added or self.responses_added or self.labels_added)


class Records(StoreCore):
    def import_records(self, items: list[ImportItem], *, tags: list[str] | None = None) -> list[ImportCounts]:
        """Insert normalized records (see workbench.importers.RECORD_SCHEMA) from one or more files in a
        single transaction: every file lands, or none does.

        Ids are content hashes, so rows already in the store (from this file or another) are skipped and
        re-importing a file adds nothing. Returns what each file added.
        """
        with self.transaction() as con:
            limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            con.execute(f"SET memory_limit = '{IMPORT_MEMORY_LIMIT}'")
            try:
                return [self._import_one(con, item, list(tags or [])) for item in items]
            finally:
                con.execute(f"SET memory_limit = '{limit}'")

    def _import_one(self, con: duckdb.DuckDBPyConnection, item: ImportItem, tag_list: list[str]) -> ImportCounts:
        import_id = f"imp-{item.file_hash[:16]}-{datetime.now():%Y%m%d%H%M%S%f}"
        before = self._table_counts(con)
        rows = 0
        tables = [item.records] if isinstance(item.records, pa.Table) else item.records
        # Blocks are hashed into one staged table as they come (it spills to disk past the memory limit), then
        # deduped and inserted in one pass: an insert per block would scan the growing tables once per block.
        for table in tables:
            self._stage_block(con, table, item.kind, first=rows == 0)
            rows += table.num_rows
        if rows:
            self._insert_staged(con, item.kind, import_id, tag_list)
        kind = item.kind
        after = self._table_counts(con)
        counts = ImportCounts(
            rows_read=rows,
            prompts_added=after["prompts"] - before["prompts"],
            responses_added=after["responses"] - before["responses"],
            labels_added=after["labels"] - before["labels"],
            import_id=import_id,
        )
        if counts.added_anything:
            con.execute(
                "INSERT INTO imports (id, path, file_hash, format, kind, rows_read, prompts_added, "
                "responses_added, labels_added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [import_id, item.path, item.file_hash, item.fmt, kind, rows, counts.prompts_added,
                 counts.responses_added, counts.labels_added],
            )
        else:
            counts.import_id = None
        return counts

    @staticmethod
    def _stage_block(con: duckdb.DuckDBPyConnection, records: pa.Table, kind: str, *, first: bool) -> None:
        if kind not in ("prompts", "sft", "preferences", "unpaired"):
            raise StoreError(f"unknown import kind {kind!r}")
        # Read by DuckDB's replacement scan of this local, not con.register(): a view dropped inside the
        # import's transaction keeps its Arrow table alive until the commit, so memory grew with the file.
        incoming = records  # noqa: F841 - named in the SQL below
        # An imported label's id is its kind and responses (rules.py: content ids).
        label_id = {
            "sft": hash_sql("'demonstration'", "completion_id", "'import'"),
            # A scored ranking (every UltraFeedback completion) is keyed by its order, a pair by its two sides.
            "preferences": f"""CASE WHEN ranked IS NULL THEN {hash_sql("'preference'", "chosen_id", "rejected_id", "'import'")}
                               ELSE {hash_sql("'ranking'", "array_to_string(ranked_ids, ',')", "'import'")} END""",
            "unpaired": hash_sql("'feedback'", "completion_id", "CASE WHEN thumb THEN 'up' ELSE 'down' END", "'import'"),
            "prompts": "NULL",
        }[kind]
        con.execute(
            f"""{"CREATE OR REPLACE TEMP TABLE staged AS" if first else "INSERT INTO staged"}
            WITH hashed AS (
                SELECT *, {PROMPT_ID_SQL} AS prompt_id FROM incoming),
            ids AS (
                SELECT *,
                    {hash_sql("prompt_id", "completion")} AS completion_id,
                    {hash_sql("prompt_id", "chosen")} AS chosen_id,
                    {hash_sql("prompt_id", "rejected")} AS rejected_id,
                    list_transform(ranked, lambda r: {hash_sql("prompt_id", "r.text")}) AS ranked_ids
                FROM hashed)
            SELECT *, {label_id} AS label_id FROM ids"""
        )

    @staticmethod
    def _insert_staged(con: duckdb.DuckDBPyConnection, kind: str, import_id: str, tag_list: list[str]) -> None:
        insert_new(con, "prompts", "id, system, messages, tags, source, source_line, import_id",
                    "s.prompt_id, s.system, s.prompt, ?::VARCHAR[], s.source, s.line, ?", "staged", "prompt_id",
                    [tag_list, import_id])
        if kind != "prompts":
            texts = ["chosen", "rejected"] if kind == "preferences" else ["completion"]
            union = " UNION ALL ".join(f"SELECT {t}_id AS id, prompt_id, {t} AS text, source, line FROM staged "
                                       "WHERE ranked IS NULL" for t in texts)
            if kind == "preferences":  # every completion of a ranking (its first and last are chosen and rejected)
                union += (" UNION ALL SELECT unnest(ranked_ids) AS id, prompt_id, unnest(ranked).text AS text, "
                          "source, line FROM staged WHERE ranked IS NOT NULL")
            insert_new(con, "responses", "id, prompt_id, text, origin, source, source_line, import_id",
                        "s.id, s.prompt_id, s.text, 'import', s.source, s.line, ?", f"({union})", "id", [import_id])
        if kind == "sft":
            insert_new(con, "labels", "id, kind, prompt_id, response_id, annotator, source, source_line, import_id",
                        "s.label_id, 'demonstration', s.prompt_id, s.completion_id, 'import', s.source, s.line, ?",
                        "staged", "label_id", [import_id])
        elif kind == "unpaired":  # a TRL unpaired row is one thumbs-up or thumbs-down vote, as a feedback task's
            insert_new(con, "labels",
                       "id, kind, prompt_id, response_id, payload, annotator, source, source_line, import_id",
                       """s.label_id, 'feedback', s.prompt_id, s.completion_id,
                          json_object('thumb', CASE WHEN s.thumb THEN 'up' ELSE 'down' END),
                          'import', s.source, s.line, ?""",
                       "staged", "label_id", [import_id])
        elif kind == "preferences":
            insert_new(
                con, "labels",
                "id, kind, prompt_id, chosen_id, rejected_id, outcome, payload, annotator, source, source_line, import_id",
                """s.label_id, 'preference', s.prompt_id, s.chosen_id, s.rejected_id, 'chosen',
                   CASE WHEN s.chosen_score IS NULL AND s.rejected_score IS NULL THEN NULL
                        ELSE json_object('chosen_score', s.chosen_score, 'rejected_score', s.rejected_score) END,
                   'import', s.source, s.line, ?""",
                "(SELECT * FROM staged WHERE ranked IS NULL)", "label_id", [import_id])
            # Ranks give equal scores an equal rank (a tie vote); default_pairs keeps best vs worst the pair an
            # export takes unless --pairs names a rule (exports.py).
            insert_new(
                con, "labels",
                "id, kind, prompt_id, ranking, payload, annotator, source, source_line, import_id",
                """s.label_id, 'ranking', s.prompt_id, s.ranked_ids,
                   json_object('scores', list_transform(s.ranked, lambda r: r.score),
                               'ranks', list_transform(s.ranked, lambda r: 1 + len(list_filter(s.ranked,
                                                                     lambda q: q.score > r.score))),
                               'default_pairs', 'best_vs_worst'),
                   'import', s.source, s.line, ?""",
                "(SELECT * FROM staged WHERE ranked IS NOT NULL)", "label_id", [import_id])
        con.execute("DROP TABLE staged")

    def add_demonstration(self, *, prompt_id: str, text: str, annotator: str, client_id: str,
                          supersedes: str | None = None) -> str:
        """Store a person's demonstration once per client id; returns the label id (the old one on a retry)."""
        with self._label_lock, self.transaction() as con:
            existing = con.execute("SELECT id FROM labels WHERE client_id = ?", [client_id]).fetchone()
            if existing:
                return existing[0]
            response_id = insert_person_response(con, prompt_id, text, annotator)
            label_id = f"lbl-{client_id}"
            con.execute(
                "INSERT INTO labels (id, kind, prompt_id, response_id, annotator, client_id, supersedes, source) "
                "VALUES (?, 'demonstration', ?, ?, ?, ?, ?, 'ui')",
                [label_id, prompt_id, response_id, annotator, client_id, supersedes],
            )
            return label_id

    def add_preference(self, *, prompt_id: str, chosen_id: str, rejected_id: str, annotator: str,
                       client_id: str, outcome: str = "chosen", supersedes: str | None = None,
                       created_at: datetime | None = None) -> str:
        """Store one person's vote on a pair once per client id; ties and 'both bad' stay what they are."""
        with self._label_lock, self.transaction() as con:
            existing = con.execute("SELECT id FROM labels WHERE client_id = ?", [client_id]).fetchone()
            if existing:
                return existing[0]
            label_id = f"lbl-{client_id}"
            con.execute(
                "INSERT INTO labels (id, kind, prompt_id, chosen_id, rejected_id, outcome, annotator, client_id, "
                "supersedes, source, created_at) VALUES (?, 'preference', ?, ?, ?, ?, ?, ?, ?, 'ui', "
                "coalesce(?, current_localtimestamp()))",
                [label_id, prompt_id, chosen_id, rejected_id, outcome, annotator, client_id, supersedes,
                 created_at],
            )
            return label_id

    def response_text(self, response_id: str) -> str:
        row = self.cursor().execute("SELECT text FROM responses WHERE id = ?", [response_id]).fetchone()
        return row[0] if row else ""

    def stats(self) -> dict:
        con = self.cursor()
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "schema_version": self.schema_version(),
            "prompts": one("SELECT count(*) FROM prompts"),
            "prompts_by_tag": dict(con.execute(
                "SELECT t, count(*) FROM (SELECT unnest(tags) AS t FROM prompts) GROUP BY t ORDER BY t").fetchall()),
            "responses_by_origin": dict(con.execute(
                "SELECT origin, count(*) FROM responses GROUP BY origin ORDER BY origin").fetchall()),
            "labels_by_kind": dict(con.execute(
                "SELECT kind, count(*) FROM labels GROUP BY kind ORDER BY kind").fetchall()),
            "labels_by_annotator": dict(con.execute(
                "SELECT annotator, count(*) FROM labels GROUP BY annotator ORDER BY 2 DESC, 1").fetchall()),
            "imports": one("SELECT count(*) FROM imports"),
            "users_by_role": dict(con.execute(
                "SELECT role, count(*) FROM users GROUP BY role ORDER BY role").fetchall()),
            "runs_by_status": dict(con.execute(
                "SELECT status, count(*) FROM runs GROUP BY status ORDER BY status").fetchall()),
            "model_versions": [
                {"id": r[0], "stage": r[1], "parent": r[2], "created_at": str(r[3])}
                for r in con.execute(
                    "SELECT id, stage, parent_id, created_at FROM model_versions ORDER BY created_at").fetchall()
            ],
        }

    def heldout_conversations(self, tag: str = "heldout", limit: int | None = None) -> list[list[dict]]:
        """Prompts with a tag as chat conversations (system prompt first), for trainers' sample checks."""
        return [as_chat(p["system"], p["messages"])
                for p in self.prompts_with_tag(tag)[:limit]]

    def prompts_with_tag(self, tag: str) -> list[dict]:
        rows = self.cursor().execute(
            "SELECT id, system, messages FROM prompts WHERE list_contains(tags, ?) ORDER BY source_line", [tag]
        ).fetchall()
        return [{"id": r[0], "system": r[1], "messages": r[2]} for r in rows]
