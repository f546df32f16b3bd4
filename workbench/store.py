"""The project's DuckDB store: the schema, its migrations, and every SQL statement the workbench runs.

Labels are append-only events: an edit is a new row whose `supersedes` names the old one, and a submit
carries a client id so a retry is stored once. Bulk paths hand DuckDB whole Arrow tables (an Arrow insert
is ~30x faster than `executemany`), and each import is a single transaction: all rows or none.
DuckDB lets one read-write process hold a file; a second gets a `StoreLocked` error that says who holds it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from workbench.open_items import Annotator, Window

MESSAGES_TYPE = "STRUCT(role VARCHAR, content VARCHAR)[]"

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry: append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE imports (
            id VARCHAR PRIMARY KEY,
            path VARCHAR NOT NULL,
            file_hash VARCHAR NOT NULL,
            format VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            rows_read BIGINT NOT NULL,
            prompts_added BIGINT NOT NULL,
            responses_added BIGINT NOT NULL,
            labels_added BIGINT NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        f"""CREATE TABLE prompts (
            id VARCHAR NOT NULL,
            system VARCHAR,
            messages {MESSAGES_TYPE} NOT NULL,
            tags VARCHAR[] NOT NULL DEFAULT [],
            source VARCHAR NOT NULL,
            source_line BIGINT,
            import_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE responses (
            id VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            origin VARCHAR NOT NULL CHECK (origin IN ('person', 'import', 'model')),
            model_version_id VARCHAR,
            author VARCHAR,
            generation JSON,
            source VARCHAR NOT NULL,
            source_line BIGINT,
            import_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        # kind: demonstration (response_id), preference (chosen_id, rejected_id, outcome); later kinds keep
        # their details in payload. outcome is 'chosen' (chosen beat rejected), 'tie' or 'both_bad'.
        """CREATE TABLE labels (
            id VARCHAR NOT NULL,
            kind VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            response_id VARCHAR,
            chosen_id VARCHAR,
            rejected_id VARCHAR,
            outcome VARCHAR CHECK (outcome IS NULL OR outcome IN ('chosen', 'tie', 'both_bad')),
            payload JSON,
            annotator VARCHAR NOT NULL,
            client_id VARCHAR,
            supersedes VARCHAR,
            source VARCHAR NOT NULL,
            source_line BIGINT,
            import_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE users (
            name VARCHAR PRIMARY KEY,
            role VARCHAR NOT NULL CHECK (role IN ('annotator', 'reviewer', 'admin')),
            password_hash VARCHAR NOT NULL,
            salt VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE runs (
            id VARCHAR PRIMARY KEY,
            stage VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            parent_version_id VARCHAR,
            config JSON,
            dataset_hash VARCHAR,
            dir VARCHAR NOT NULL,
            error VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            finished_at TIMESTAMP)""",
        """CREATE TABLE model_versions (
            id VARCHAR PRIMARY KEY,
            run_id VARCHAR,
            stage VARCHAR NOT NULL,
            base_model VARCHAR NOT NULL,
            parent_id VARCHAR,
            dataset_hash VARCHAR,
            path VARCHAR NOT NULL,
            config JSON,
            metrics JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
    ],
    # 2: labeling tasks. A task's items are fixed when it is created (which prompt, which responses, which
    # draft). `answers`/`annotators` on an item summarise its standing answers; they change in the same
    # transaction as the label that changes them, so the queue reads one row per item instead of
    # aggregating a million labels on every request. Labels from the UI name their task and item, `ranking` holds an N-way order (best first) and
    # `final` marks an admin's adjudication, which wins in exports. Skips and flags are events, not labels;
    # a draft is the one mutable row: the text an annotator has typed but not submitted.
    [
        """CREATE TABLE tasks (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            kind VARCHAR NOT NULL CHECK (kind IN ('demonstration', 'pairwise', 'ranking')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            guidelines VARCHAR NOT NULL DEFAULT '',
            selection JSON,
            created_by VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE task_items (
            task_id VARCHAR NOT NULL,
            id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            prompt_id VARCHAR NOT NULL,
            response_ids VARCHAR[] NOT NULL DEFAULT [],
            draft_response_id VARCHAR,
            answers INTEGER NOT NULL DEFAULT 0,
            annotators VARCHAR[] NOT NULL DEFAULT [])""",
        # every request looks items up by id: an index turns a 400k-row scan (4 ms) into a point lookup
        "CREATE INDEX task_items_id ON task_items (id)",
        "ALTER TABLE labels ADD COLUMN task_id VARCHAR",
        "ALTER TABLE labels ADD COLUMN item_id VARCHAR",
        "ALTER TABLE labels ADD COLUMN ranking VARCHAR[]",
        "ALTER TABLE labels ADD COLUMN final BOOLEAN DEFAULT false",
        """CREATE TABLE item_events (
            task_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            event VARCHAR NOT NULL CHECK (event IN ('skip', 'flag')),
            reason VARCHAR,
            client_id VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
        """CREATE TABLE drafts (
            task_id VARCHAR NOT NULL,
            item_id VARCHAR NOT NULL,
            annotator VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            updated_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())""",
    ],
    # 3: A/B reviews are tasks of kind 'review': each item pairs one reply of each of two model versions
    # (`versions`) to one prompt, and a vote is a preference label like any other. DuckDB cannot change a
    # CHECK constraint in place, so the tasks table is rebuilt.
    [
        """CREATE TABLE tasks_v3 (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            kind VARCHAR NOT NULL CHECK (kind IN ('demonstration', 'pairwise', 'ranking', 'review')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            guidelines VARCHAR NOT NULL DEFAULT '',
            selection JSON,
            created_by VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            versions VARCHAR[])""",
        """INSERT INTO tasks_v3 (id, name, kind, overlap, guidelines, selection, created_by, created_at)
           SELECT id, name, kind, overlap, guidelines, selection, created_by, created_at FROM tasks""",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v3 RENAME TO tasks",
    ],
    # 4: items imported from another tool (an Argilla record) keep that tool's id, so an export hands the
    # same record back and a second pull updates it instead of adding a copy.
    [
        "ALTER TABLE task_items ADD COLUMN external_id VARCHAR",
    ],
    # 5: 'feedback' tasks: thumbs up or down on one response at a time (KTO's unpaired data); a vote is a label
    # of kind 'feedback' on its response_id with payload.thumb 'up' or 'down'. The CHECK needs a rebuild again.
    [
        """CREATE TABLE tasks_v5 (
            id VARCHAR PRIMARY KEY,
            name VARCHAR NOT NULL UNIQUE,
            kind VARCHAR NOT NULL CHECK (kind IN ('demonstration', 'pairwise', 'ranking', 'review', 'feedback')),
            overlap INTEGER NOT NULL CHECK (overlap >= 1),
            guidelines VARCHAR NOT NULL DEFAULT '',
            selection JSON,
            created_by VARCHAR,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            versions VARCHAR[])""",
        """INSERT INTO tasks_v5 SELECT id, name, kind, overlap, guidelines, selection, created_by, created_at, versions
           FROM tasks""",
        "DROP TABLE tasks",
        "ALTER TABLE tasks_v5 RENAME TO tasks",
    ],
    # 6: active selection. An admin may reorder a task's open items by where a label is worth most (a small
    # margin, two model versions disagreeing, responses that vary); `priority` and `priority_reason`
    # say why an item sits where it does, `first_position` keeps the order the task was made with (to go
    # back to), and tasks.queue_order records how the queue was last ordered.
    [
        "ALTER TABLE task_items ADD COLUMN priority DOUBLE",
        "ALTER TABLE task_items ADD COLUMN priority_reason VARCHAR",
        "ALTER TABLE task_items ADD COLUMN first_position INTEGER",
        "ALTER TABLE tasks ADD COLUMN queue_order JSON",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
# Label kinds that count as an annotator's answer to an item (a 'retraction' only hides what it supersedes).
ANSWER_KINDS = ("demonstration", "preference", "ranking", "feedback")


class StoreError(Exception):
    """A store operation that cannot go ahead; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process holds the DuckDB file for writing (DuckDB allows one writer per file)."""


@dataclass
class ImportItem:
    """One file's normalized records, ready to insert."""

    records: pa.Table
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


@dataclass
class ExportFilters:
    """Which labels an export keeps. Vote and agreement filters apply to preference pairs only."""

    min_votes: int = 1
    min_agreement: float = 0.0
    exclude_ties: bool = False
    annotators: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    review_votes: bool = True  # votes from A/B reviews of model versions count as preference pairs
    # How rankings (and rated pairs) become pairs, and what happens to ties: see PAIR_RULES and TIE_RULES.
    pairs: str = "all"
    min_margin: float = 1.0  # pairs="margin": keep pairs whose score margin (or, unscored, rank gap) is this or more
    ties: str = "drop"
    smoothing: bool = False  # write each pair's label_smoothing: the share of its votes against the winner

    def check(self) -> None:
        if self.pairs not in PAIR_RULES:
            raise ValueError(f"unknown pair rule {self.pairs!r}; choose one of {', '.join(PAIR_RULES)}")
        if self.ties not in TIE_RULES:
            raise ValueError(f"unknown tie rule {self.ties!r}; choose one of {', '.join(TIE_RULES)}")
        if self.ties == "keep" and self.exclude_ties:
            raise ValueError("--ties keep and --exclude-ties contradict each other: choose one")
        if self.pairs == "margin" and self.min_margin <= 0:
            raise ValueError(f"--min-margin must be above 0, got {self.min_margin}")

    @property
    def pair_options(self) -> bool:
        """True where a preference-only option was changed from its default."""
        return (self.min_votes > 1 or self.min_agreement > 0 or self.exclude_ties or self.pairs != "all"
                or self.ties != "drop" or self.smoothing)


# An N-way ranking (best first) holds N*(N-1)/2 pairs; which of them become training pairs:
PAIR_RULES = {
    "all": "every ordered pair of the ranking",
    "best_vs_rest": "the best response against each of the others",
    "best_vs_worst": "the best response against the worst only",
    "margin": "pairs whose score margin (scored pairs and rankings) or rank gap is at least --min-margin",
}
# A pair whose votes (or adjudication) say tie or 'both bad' is dropped, or kept as a row with tie=true and
# label_smoothing 0.5 for losses that read per-pair smoothing (DPO's exo_pair drives such a pair to even odds).
TIE_RULES = ("drop", "keep")


def _lock_message(path: Path, exc: Exception) -> str:
    pid = re.search(r"PID (\d+)", str(exc))
    holder = f" (process {pid.group(1)})" if pid else ""
    return (
        f"the project store {path} is in use by another process{holder}: DuckDB allows one writer per file. "
        "Stop the workbench server (or the other command) first, or do this from the running server."
    )


class Store:
    """One open DuckDB file. Threads call `cursor()` and use their own cursor, never a shared one."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self._con = con
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        # Label writes check the client id and insert under one lock: with no unique index (see
        # _insert_new), this is what makes a double click or a retry from another thread store one row.
        self._label_lock = threading.Lock()
        # The open head of each task's queue and each annotator's skips, flags and drafts (open_items.py),
        # read and changed under _label_lock, after the commit of the write that changes them.
        self._windows: dict[str, Window] = {}
        self._annotators: dict[tuple[str, str], Annotator] = {}

    # ---------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False, create: bool = False) -> Store:
        path = Path(path)
        if not create and not path.exists():
            raise StoreError(f"no store at {path}: create the project with `workbench init`")
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
                raise StoreLocked(_lock_message(path, exc)) from exc
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        store = cls(con, path, read_only)
        try:
            if not read_only:
                store.migrate()
            elif (version := store.schema_version()) != SCHEMA_VERSION:
                raise StoreError(f"the store {path} is at schema version {version}, this workbench needs "
                                 f"{SCHEMA_VERSION}: open it once read-write to migrate")
        except BaseException:
            con.close()  # let go of the file lock before reporting
            raise
        return store

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._con.cursor()
        return cur

    # ---------------------------------------------------------------- schema
    def schema_version(self) -> int:
        con = self.cursor()
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()[0]
        if not exists:
            return 0
        return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def migrate(self) -> int:
        """Bring the file up to SCHEMA_VERSION, one transaction per step; returns the steps applied."""
        con = self.cursor()
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                    "applied_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store {self.path} has schema version {current}, newer than this "
                             f"workbench ({SCHEMA_VERSION}): upgrade alignment-workbench")
        for version in range(current, SCHEMA_VERSION):
            with self.transaction() as tx:
                for statement in MIGRATIONS[version]:
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", [version + 1])
        return SCHEMA_VERSION - current

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self.cursor()
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # ---------------------------------------------------------------- import
    def import_records(self, items: list[ImportItem], *, tags: list[str] | None = None) -> list[ImportCounts]:
        """Insert normalized records (see workbench.importers.RECORD_SCHEMA) from one or more files in a
        single transaction: every file lands, or none does.

        Ids are content hashes, so rows already in the store (from this file or another) are skipped and
        re-importing a file adds nothing. Returns what each file added.
        """
        with self.transaction() as con:
            return [self._import_one(con, item, list(tags or [])) for item in items]

    def _import_one(self, con: duckdb.DuckDBPyConnection, item: ImportItem, tag_list: list[str]) -> ImportCounts:
        kind = item.kind
        if kind not in ("prompts", "sft", "preferences"):
            raise StoreError(f"unknown import kind {kind!r}")
        rows = item.records.num_rows
        import_id = f"imp-{item.file_hash[:16]}-{datetime.now():%Y%m%d%H%M%S%f}"
        con.register("incoming", item.records)
        # Ids are md5 content hashes (stable across DuckDB versions, unlike hash()): a prompt is its system
        # prompt plus its turns, a response its prompt plus its text, an imported label its kind and responses.
        label_id = {
            "sft": "md5('demonstration' || chr(0) || completion_id || chr(0) || 'import')",
            "preferences": "md5('preference' || chr(0) || chosen_id || chr(0) || rejected_id || chr(0) || 'import')",
            "prompts": "NULL",
        }[kind]
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE staged AS
            WITH hashed AS (
                SELECT *, md5(coalesce(system, '') || chr(0) || to_json(prompt)::VARCHAR) AS prompt_id FROM incoming),
            ids AS (
                SELECT *,
                    md5(prompt_id || chr(0) || completion) AS completion_id,
                    md5(prompt_id || chr(0) || chosen) AS chosen_id,
                    md5(prompt_id || chr(0) || rejected) AS rejected_id
                FROM hashed)
            SELECT *, {label_id} AS label_id FROM ids"""
        )
        con.unregister("incoming")
        before = self._table_counts(con)
        _insert_new(con, "prompts", "id, system, messages, tags, source, source_line, import_id",
                    "s.prompt_id, s.system, s.prompt, ?::VARCHAR[], s.source, s.line, ?", "staged", "prompt_id",
                    [tag_list, import_id])
        if kind != "prompts":
            texts = ["completion"] if kind == "sft" else ["chosen", "rejected"]
            union = " UNION ALL ".join(f"SELECT {t}_id AS id, prompt_id, {t} AS text, source, line FROM staged"
                                       for t in texts)
            _insert_new(con, "responses", "id, prompt_id, text, origin, source, source_line, import_id",
                        "s.id, s.prompt_id, s.text, 'import', s.source, s.line, ?", f"({union})", "id", [import_id])
        if kind == "sft":
            _insert_new(con, "labels", "id, kind, prompt_id, response_id, annotator, source, source_line, import_id",
                        "s.label_id, 'demonstration', s.prompt_id, s.completion_id, 'import', s.source, s.line, ?",
                        "staged", "label_id", [import_id])
        elif kind == "preferences":
            _insert_new(
                con, "labels",
                "id, kind, prompt_id, chosen_id, rejected_id, outcome, payload, annotator, source, source_line, import_id",
                """s.label_id, 'preference', s.prompt_id, s.chosen_id, s.rejected_id, 'chosen',
                   CASE WHEN s.chosen_score IS NULL AND s.rejected_score IS NULL THEN NULL
                        ELSE json_object('chosen_score', s.chosen_score, 'rejected_score', s.rejected_score) END,
                   'import', s.source, s.line, ?""",
                "staged", "label_id", [import_id])
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
        con.execute("DROP TABLE staged")
        return counts

    @staticmethod
    def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        row = con.execute(
            "SELECT (SELECT count(*) FROM prompts), (SELECT count(*) FROM responses), (SELECT count(*) FROM labels)"
        ).fetchone()
        return {"prompts": row[0], "responses": row[1], "labels": row[2]}

    # ---------------------------------------------------------------- labels
    def add_demonstration(self, *, prompt_id: str, text: str, annotator: str, client_id: str,
                          supersedes: str | None = None) -> str:
        """Store a person's demonstration once per client id; returns the label id (the old one on a retry)."""
        with self._label_lock, self.transaction() as con:
            existing = con.execute("SELECT id FROM labels WHERE client_id = ?", [client_id]).fetchone()
            if existing:
                return existing[0]
            response_id = _insert_person_response(con, prompt_id, text, annotator)
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

    # ---------------------------------------------------------------- labeling tasks
    def create_task(self, *, name: str, kind: str, overlap: int, guidelines: str, created_by: str,
                    sources: list[str] | None = None, tags: list[str] | None = None, query: str | None = None,
                    max_responses: int | None = None, versions: list[str] | None = None) -> dict:
        """Create a task and fix its items in one transaction; returns the task with its item count.

        Demonstration items are prompts, with the newest model reply (else an imported one) as the draft.
        Pairwise items are the pairs among up to `max_responses` (default 2) responses of a prompt, ranking
        items up to `max_responses` (default 4) responses; prompts with fewer than two responses are left out.
        Review items pair the k-th generated reply of `versions[0]` with the k-th of `versions[1]` for each
        prompt that has both, k up to `max_responses` (default 1).
        """
        max_responses = max_responses or {"ranking": 4, "review": 1, "feedback": 1}.get(kind, 2)
        where, params = _prompt_selection(sources, tags, query)
        task_id = f"task-{name}"
        selected = f"SELECT p.id, p.source, p.source_line FROM prompts p WHERE {where}"
        if kind == "demonstration":
            items = f"""
                WITH sel AS ({selected}),
                drafts AS (SELECT prompt_id, first(id ORDER BY origin = 'model' DESC, created_at DESC, id) AS id
                           FROM responses WHERE origin IN ('model', 'import') GROUP BY prompt_id)
                SELECT sel.id AS prompt_id, []::VARCHAR[] AS response_ids, drafts.id AS draft_response_id,
                       sel.source, sel.source_line
                FROM sel LEFT JOIN drafts ON drafts.prompt_id = sel.id"""
        elif kind == "feedback":  # one item per response: model replies first (newest), then the others
            items = f"""
                WITH sel AS ({selected}),
                picked AS (SELECT r.prompt_id, r.id, row_number() OVER (PARTITION BY r.prompt_id
                               ORDER BY r.origin = 'model' DESC, r.created_at DESC, r.id) AS k
                           FROM responses r JOIN sel ON sel.id = r.prompt_id)
                SELECT picked.prompt_id, [picked.id] AS response_ids, NULL AS draft_response_id, sel.source,
                       sel.source_line
                FROM picked JOIN sel ON sel.id = picked.prompt_id WHERE picked.k <= ?"""
            params += [max_responses]
        elif kind == "review":
            if not versions or len(versions) != 2 or versions[0] == versions[1]:
                raise StoreError("a review compares two different model versions: give exactly two")
            items = f"""
                WITH sel AS ({selected}),
                replies AS (
                    SELECT r.prompt_id, r.model_version_id AS v, r.id, row_number() OVER (
                        PARTITION BY r.prompt_id, r.model_version_id
                        ORDER BY TRY_CAST(json_extract_string(r.generation, '$.sample') AS INTEGER) NULLS LAST,
                                 r.created_at, r.id) AS k
                    FROM responses r JOIN sel ON sel.id = r.prompt_id
                    WHERE r.origin = 'model' AND r.model_version_id IN (?, ?))
                SELECT a.prompt_id, [a.id, b.id] AS response_ids, NULL AS draft_response_id, sel.source,
                       sel.source_line
                FROM replies a JOIN replies b ON b.prompt_id = a.prompt_id AND b.k = a.k
                JOIN sel ON sel.id = a.prompt_id
                WHERE a.v = ? AND b.v = ? AND a.k <= ?"""
            params += [versions[0], versions[1], versions[0], versions[1], max_responses]
        else:
            pick = f"""
                WITH sel AS ({selected}),
                picked AS (SELECT r.prompt_id, list(r.id ORDER BY md5(? || r.id))[1:?] AS ids
                           FROM responses r JOIN sel ON sel.id = r.prompt_id GROUP BY r.prompt_id
                           HAVING count(*) >= 2)"""
            params += [task_id, max_responses]
            if kind == "pairwise":
                items = pick + """
                    SELECT picked.prompt_id, [ids[i], ids[j]] AS response_ids, NULL AS draft_response_id,
                           sel.source, sel.source_line
                    FROM picked JOIN sel ON sel.id = picked.prompt_id,
                         range(1, len(ids) + 1) t(i), range(i + 1, len(ids) + 1) u(j)"""
            else:
                items = pick + """
                    SELECT picked.prompt_id, ids AS response_ids, NULL AS draft_response_id, sel.source, sel.source_line
                    FROM picked JOIN sel ON sel.id = picked.prompt_id"""
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM tasks WHERE name = ?", [name]).fetchone():
                raise StoreError(f"a task named {name!r} exists already")
            con.execute(
                "INSERT INTO tasks (id, name, kind, overlap, guidelines, selection, created_by, versions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [task_id, name, kind, overlap, guidelines,
                 json.dumps({"sources": sources or [], "tags": tags or [], "query": query,
                             "max_responses": max_responses}), created_by,
                 list(versions) if kind == "review" else None])
            con.execute(
                f"""INSERT INTO task_items (task_id, id, position, prompt_id, response_ids, draft_response_id)
                SELECT ?, substr(md5(? || prompt_id || array_to_string(response_ids, ',')), 1, 16),
                       row_number() OVER (ORDER BY source, source_line, prompt_id, response_ids),
                       prompt_id, response_ids, draft_response_id
                FROM ({items}) ORDER BY 3""",
                [task_id, task_id, *params])
            count = con.execute("SELECT count(*) FROM task_items WHERE task_id = ?", [task_id]).fetchone()[0]
            if count == 0 and kind == "review":
                raise StoreError(f"no prompts with generated replies of both {versions[0]} and {versions[1]} match "
                                 f"this selection: generate them first (workbench generate --versions "
                                 f"{versions[0]},{versions[1]})")
            if count == 0:
                need = {"demonstration": "", "feedback": " with a response"}.get(kind, " with two or more responses")
                raise StoreError(f"no prompts{need} match this selection: the task would be empty")
        return self.task(task_id) | {"items": count}

    _TASK_COLUMNS = ("id", "name", "kind", "overlap", "guidelines", "selection", "created_by", "created_at",
                     "versions")

    def task(self, task_id_or_name: str) -> dict | None:
        row = self.cursor().execute(
            f"SELECT {', '.join(self._TASK_COLUMNS)} FROM tasks WHERE id = ? OR name = ?",
            [task_id_or_name, task_id_or_name]).fetchone()
        if row is None:
            return None
        return dict(zip(self._TASK_COLUMNS, row, strict=True)) | {"selection": json.loads(row[5] or "{}"),
                                                                  "created_at": str(row[7]),
                                                                  "versions": list(row[8] or [])}

    def tasks(self) -> list[dict]:
        rows = self.cursor().execute(
            f"SELECT {', '.join(self._TASK_COLUMNS)}, (SELECT count(*) FROM task_items i WHERE i.task_id = t.id) "
            "FROM tasks t ORDER BY created_at, name").fetchall()
        return [dict(zip(self._TASK_COLUMNS, r[:9], strict=True)) | {"selection": json.loads(r[5] or "{}"),
                                                                      "created_at": str(r[7]),
                                                                      "versions": list(r[8] or []), "items": r[9]}
                for r in rows]

    # Answers that stand: the latest label of each annotator on each item of a task (older ones superseded).
    _ACTIVE_ANSWERS = f"""
        SELECT l.* FROM labels l
        WHERE l.task_id = ? AND l.kind IN {ANSWER_KINDS} AND NOT coalesce(l.final, false)
          AND NOT EXISTS (SELECT 1 FROM labels s WHERE s.task_id = l.task_id AND s.supersedes = l.id)"""

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
            me.drafts.update(con.execute(
                "SELECT i.id, i.position FROM task_items i WHERE i.task_id = ? AND list_contains("
                "(SELECT list(item_id) FROM drafts WHERE task_id = ? AND annotator = ?), i.id)",
                [task_id, task_id, annotator]).fetchall())
        return me

    def _queue_candidates_sql(self, task_id: str, annotator: str, overlap: int, *,
                              limit: int) -> list[tuple[str, int]]:
        """queue_candidates in one query over the whole task (for an annotator who skipped thousands)."""
        rows = self.cursor().execute(
            """WITH ev AS (SELECT item_id, count(*) FILTER (WHERE event = 'skip') AS skips,
                                  bool_or(event = 'flag') AS flagged
                           FROM item_events WHERE task_id = ? AND annotator = ? GROUP BY item_id),
            dr AS (SELECT DISTINCT item_id FROM drafts WHERE task_id = ? AND annotator = ?)
            SELECT i.id, i.answers
            FROM task_items i LEFT JOIN ev ON ev.item_id = i.id LEFT JOIN dr ON dr.item_id = i.id
            WHERE i.task_id = ? AND i.answers < ? AND NOT list_contains(i.annotators, ?)
              AND NOT coalesce(ev.flagged, false)
            ORDER BY dr.item_id IS NOT NULL DESC,
                     coalesce(ev.skips, 0), i.position
            LIMIT ?""",
            [task_id, annotator, task_id, annotator, task_id, overlap, annotator, limit],
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

    # ---------------------------------------------------------------- queue order (active selection)
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
            chat = ([{"role": "system", "content": system}] if system else []) + [
                {"role": m["role"], "content": m["content"]} for m in messages]
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

    def saved_draft(self, task_id: str, item_id: str, annotator: str) -> str | None:
        row = self.cursor().execute("SELECT text FROM drafts WHERE task_id = ? AND item_id = ? AND annotator = ? "
                                    "ORDER BY updated_at DESC LIMIT 1", [task_id, item_id, annotator]).fetchone()
        return row[0] if row else None

    def answer(self, task_id: str, item_id: str, annotator: str) -> dict | None:
        """The annotator's standing answer on an item, or None."""
        rows = self._label_rows(
            f"WITH active AS ({self._ACTIVE_ANSWERS}) SELECT * FROM active WHERE item_id = ? AND annotator = ? "
            "ORDER BY created_at DESC LIMIT 1", [task_id, item_id, annotator])
        return rows[0] if rows else None

    def last_answer(self, task_id: str, annotator: str) -> dict | None:
        """The annotator's most recent standing answer in a task (what 'undo' and 'edit' act on)."""
        rows = self._label_rows(
            f"WITH active AS ({self._ACTIVE_ANSWERS}) SELECT * FROM active WHERE annotator = ? "
            "ORDER BY created_at DESC, id DESC LIMIT 1", [task_id, annotator])
        return rows[0] if rows else None

    def task_answers(self, task_id: str) -> list[dict]:
        """Every standing (non-final) answer in a task, for agreement."""
        return self._label_rows(f"WITH active AS ({self._ACTIVE_ANSWERS}) SELECT * FROM active "
                                "ORDER BY item_id, annotator", [task_id])

    def final_answers(self, task_id: str) -> list[dict]:
        return self._label_rows(
            "SELECT * FROM labels l WHERE task_id = ? AND final AND NOT EXISTS "
            "(SELECT 1 FROM labels s WHERE s.task_id = l.task_id AND s.supersedes = l.id) ORDER BY created_at",
            [task_id])

    def _label_rows(self, sql: str, params: list) -> list[dict]:
        cur = self.cursor().execute(sql, params)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            label = dict(zip(names, row, strict=True))
            label["payload"] = json.loads(label["payload"] or "{}")
            label["created_at"] = str(label["created_at"])
            out.append(label)
        return out

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
                        f"WITH active AS ({self._ACTIVE_ANSWERS}) SELECT id FROM active WHERE item_id = ? "
                        "AND annotator = ? ORDER BY created_at DESC LIMIT 1", [task_id, item_id, annotator]
                    ).fetchone()
                counted = not final and previous is None
                if counted:
                    con.execute("UPDATE task_items SET answers = answers + 1, "
                                "annotators = list_append(annotators, ?) WHERE task_id = ? AND id = ?",
                                [annotator, task_id, item_id])
                if kind == "demonstration":
                    response_id = _insert_person_response(con, prompt_id, text, annotator)
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
                    "SELECT prompt_id, task_id, item_id, kind IN ? AND NOT coalesce(final, false) AND NOT EXISTS "
                    "(SELECT 1 FROM labels s WHERE s.supersedes = l.id) FROM labels l WHERE id = ? AND annotator = ?",
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

    def task_progress(self, task_id: str) -> dict:
        """Items done (with `overlap` answers) and remaining, and per annotator: answers, skips, flags."""
        con = self.cursor()
        overlap = con.execute("SELECT overlap FROM tasks WHERE id = ?", [task_id]).fetchone()[0]
        total, complete, answers = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE answers >= ?), coalesce(sum(answers), 0) FROM task_items "
            "WHERE task_id = ?", [overlap, task_id]).fetchone()
        per_annotator = con.execute(
            f"""WITH active AS ({self._ACTIVE_ANSWERS}),
            a AS (SELECT annotator, count(*) AS answers FROM active GROUP BY annotator),
            e AS (SELECT annotator, count(*) FILTER (WHERE event = 'skip') AS skips,
                         count(DISTINCT item_id) FILTER (WHERE event = 'flag') AS flags
                  FROM item_events WHERE task_id = ? GROUP BY annotator)
            SELECT coalesce(a.annotator, e.annotator), coalesce(answers, 0), coalesce(skips, 0), coalesce(flags, 0)
            FROM a FULL JOIN e ON a.annotator = e.annotator ORDER BY 1""", [task_id, task_id]).fetchall()
        return {"items": total, "complete": complete, "answers": int(answers), "overlap": overlap,
                "needed": total * overlap,
                "annotators": [{"annotator": r[0], "answers": r[1], "skips": r[2], "flags": r[3]}
                               for r in per_annotator]}

    def annotator_progress(self, task_id: str, annotator: str) -> tuple[int, int]:
        """(items this annotator answered, items still open to them) in a task."""
        con = self.cursor()
        overlap = con.execute("SELECT overlap FROM tasks WHERE id = ?", [task_id]).fetchone()[0]
        return con.execute(
            """WITH flagged AS (SELECT DISTINCT item_id FROM item_events WHERE task_id = ? AND annotator = ?
                                AND event = 'flag'),
            items AS (SELECT list_contains(annotators, ?) AS mine, answers, id FROM task_items WHERE task_id = ?)
            SELECT count(*) FILTER (WHERE mine),
                   count(*) FILTER (WHERE NOT mine AND answers < ? AND flagged.item_id IS NULL)
            FROM items LEFT JOIN flagged ON flagged.item_id = items.id""",
            [task_id, annotator, annotator, task_id, overlap]).fetchone()

    def response_text(self, response_id: str) -> str:
        row = self.cursor().execute("SELECT text FROM responses WHERE id = ?", [response_id]).fetchone()
        return row[0] if row else ""

    def flagged_items(self, task_id: str) -> list[dict]:
        rows = self.cursor().execute(
            "SELECT item_id, list(DISTINCT annotator ORDER BY annotator), list(DISTINCT reason ORDER BY reason) "
            "FROM item_events WHERE task_id = ? AND event = 'flag' GROUP BY item_id ORDER BY item_id",
            [task_id]).fetchall()
        return [{"item_id": r[0], "annotators": r[1], "reasons": r[2]} for r in rows]

    # ---------------------------------------------------------------- Argilla interop
    def import_task_labels(self, *, task: dict, items: list[dict], labels: list[dict], path: str,
                           file_hash: str, fmt: str, tags: list[str] | None = None) -> dict:
        """Store a labeled dataset from another tool (workbench.argilla_io) as a task, in one transaction.

        `task`: name, kind, overlap, guidelines, selection (with an `origin` key naming the dataset).
        `items`: external_id, system, messages, responses (texts, in the item's order), draft (text or None).
        `labels`: item (index into items), kind, question, annotator, status, payload, and by kind: chosen /
        rejected / outcome (indexes into the item's responses), ranking (indexes, best first), response
        (index), text (a written answer). Ids are content hashes, so importing the same dataset twice adds
        nothing; a changed answer (same item, question and annotator) supersedes the one stored before.
        A task of that name must be new or come from the same dataset. Returns what was added.
        """
        import hashlib

        def md5(*parts: str) -> str:
            return hashlib.md5(chr(0).join(parts).encode("utf-8")).hexdigest()

        task_id = f"task-{task['name']}"
        import_id = f"imp-{file_hash[:16]}-{datetime.now():%Y%m%d%H%M%S%f}"
        with self._label_lock, self.transaction() as con:
            before = self._table_counts(con)
            # fetchall, not fetchone: DuckDB refuses to register a table while a result is half read
            row = next(iter(con.execute("SELECT kind, selection FROM tasks WHERE id = ?", [task_id]).fetchall()), None)
            if row is None:
                con.execute("INSERT INTO tasks (id, name, kind, overlap, guidelines, selection, created_by) "
                            "VALUES (?, ?, ?, ?, ?, ?, 'import')",
                            [task_id, task["name"], task["kind"], task["overlap"], task["guidelines"],
                             json.dumps(task["selection"])])
            else:
                origin = json.loads(row[1] or "{}").get("origin")
                if origin != task["selection"]["origin"] or row[0] != task["kind"]:
                    raise StoreError(f"a task named {task['name']!r} exists already and did not come from this "
                                     "dataset: choose another name (--task)")
            con.register("incoming", pa.table({
                "line": pa.array(range(1, len(items) + 1), pa.int64()),
                "system": pa.array([i["system"] for i in items], pa.string()),
                "prompt": pa.array([i["messages"] for i in items],
                                   pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))}))
            con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT *, md5(coalesce(system, '') || chr(0) || "
                        "to_json(prompt)::VARCHAR) AS prompt_id, ? AS source FROM incoming", [path])
            con.unregister("incoming")
            _insert_new(con, "prompts", "id, system, messages, tags, source, source_line, import_id",
                        "s.prompt_id, s.system, s.prompt, ?::VARCHAR[], s.source, s.line, ?", "staged", "prompt_id",
                        [list(tags or []), import_id])
            prompt_ids = [r[0] for r in con.execute("SELECT prompt_id FROM staged ORDER BY line").fetchall()]
            con.execute("DROP TABLE staged")
            response_rows: list[tuple] = []
            item_rows: list[tuple] = []
            response_ids: list[list[str]] = []
            start = con.execute("SELECT coalesce(max(position), 0) FROM task_items WHERE task_id = ?",
                                [task_id]).fetchall()[0][0]
            for n, (item, prompt_id) in enumerate(zip(items, prompt_ids, strict=True)):
                ids = [md5(prompt_id, text) for text in item["responses"]]
                response_ids.append(ids)
                response_rows += [(rid, prompt_id, text, "import", None, n + 1)
                                  for rid, text in zip(ids, item["responses"], strict=True)]
                draft = md5(prompt_id, item["draft"]) if item.get("draft") else None
                if draft:
                    response_rows.append((draft, prompt_id, item["draft"], "import", None, n + 1))
                item_id = md5(task_id + prompt_id + ",".join(ids))[:16] if not item["external_id"] else \
                    md5(task_id, "external", item["external_id"])[:16]
                item_rows.append((item_id, start + n + 1, prompt_id, ids, draft, item["external_id"]))
            label_rows: list[tuple] = []
            for label in labels:
                item_id, _, prompt_id, ids, _, external_id = item_rows[label["item"]]
                response_id = None
                if label.get("text") is not None:  # a written answer is a person's response to the prompt
                    response_id = md5(prompt_id, label["text"])
                    response_rows.append((response_id, prompt_id, label["text"], "person", label["annotator"],
                                          label["item"] + 1))
                elif label.get("response") is not None:
                    response_id = ids[label["response"]]
                chosen = ids[label["chosen"]] if label.get("chosen") is not None else None
                rejected = ids[label["rejected"]] if label.get("rejected") is not None else None
                ranking = [ids[i] for i in label["ranking"]] if label.get("ranking") is not None else None
                payload = {"question": label["question"], **label.get("payload", {})}
                label_id = "lbl-" + md5("import", task_id, external_id or item_id, label["question"],
                                        label["annotator"], label["kind"], json.dumps(payload, sort_keys=True),
                                        response_id or "", chosen or "", rejected or "", label.get("outcome") or "",
                                        ",".join(ranking or []))
                label_rows.append((label_id, label["kind"], prompt_id, response_id, chosen, rejected,
                                   label.get("outcome"), ranking, json.dumps(payload), label["annotator"],
                                   path, label["item"] + 1, import_id, task_id, item_id, label["question"]))
            for table, rows, columns in (
                    ("responses", response_rows, "id, prompt_id, text, origin, author, source_line"),
                    ("task_items", item_rows, "id, position, prompt_id, response_ids, draft_response_id, external_id"),
                    ("labels", label_rows, "id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome, "
                                           "ranking, payload, annotator, source, source_line, import_id, task_id, "
                                           "item_id, question")):
                if not rows:
                    continue
                names = [c.strip() for c in columns.split(",")]
                types = {"source_line": pa.int64(), "position": pa.int64(), "response_ids": pa.list_(pa.string()),
                         "ranking": pa.list_(pa.string())}
                con.register("staged_rows", pa.table({name: pa.array([r[k] for r in rows], types.get(name, pa.string()))
                                                      for k, name in enumerate(names)}))
                con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT DISTINCT ON (id) * FROM staged_rows")
                con.unregister("staged_rows")
                if table == "responses":
                    con.execute("INSERT INTO responses (id, prompt_id, text, origin, author, source, source_line, "
                                "import_id) SELECT id, prompt_id, text, origin, author, ?, source_line, ? FROM staged s "
                                "WHERE NOT EXISTS (SELECT 1 FROM responses r WHERE r.id = s.id)", [path, import_id])
                elif table == "task_items":
                    con.execute("INSERT INTO task_items (task_id, id, position, prompt_id, response_ids, "
                                "draft_response_id, external_id) SELECT ?, id, position, prompt_id, response_ids, "
                                "draft_response_id, external_id FROM staged s WHERE NOT EXISTS "
                                "(SELECT 1 FROM task_items i WHERE i.task_id = ? AND i.id = s.id) ORDER BY position",
                                [task_id, task_id])
                else:
                    # A changed answer supersedes the standing one of the same item, question and annotator.
                    con.execute(
                        """INSERT INTO labels (id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome,
                               ranking, payload, annotator, source, source_line, import_id, task_id, item_id,
                               supersedes)
                           SELECT s.id, s.kind, s.prompt_id, s.response_id, s.chosen_id, s.rejected_id, s.outcome,
                               s.ranking, s.payload, s.annotator, s.source, s.source_line, s.import_id, s.task_id,
                               s.item_id,
                               (SELECT first(l.id ORDER BY l.created_at DESC) FROM labels l
                                WHERE l.task_id = s.task_id AND l.item_id = s.item_id AND l.annotator = s.annotator
                                  AND coalesce(json_extract_string(l.payload, '$.question'), '') = s.question
                                  AND l.kind <> 'retraction' AND NOT coalesce(l.final, false)
                                  AND NOT EXISTS (SELECT 1 FROM labels x WHERE x.supersedes = l.id))
                           FROM staged s WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.id = s.id)""")
                con.execute("DROP TABLE staged")
            # the items' answer summary, recounted from the answers that stand after this import
            con.execute(
                f"""UPDATE task_items SET answers = coalesce(a.n, 0), annotators = coalesce(a.who, [])
                    FROM (SELECT i.id, count(DISTINCT x.annotator) AS n,
                                 list(DISTINCT x.annotator) FILTER (WHERE x.annotator IS NOT NULL) AS who
                          FROM task_items i LEFT JOIN ({self._ACTIVE_ANSWERS}) x ON x.item_id = i.id
                          WHERE i.task_id = ? GROUP BY i.id) a
                    WHERE task_items.task_id = ? AND task_items.id = a.id""", [task_id, task_id, task_id])
            after = self._table_counts(con)
            added = {"prompts": after["prompts"] - before["prompts"],
                     "responses": after["responses"] - before["responses"],
                     "labels": after["labels"] - before["labels"]}
            if any(added.values()):
                con.execute("INSERT INTO imports (id, path, file_hash, format, kind, rows_read, prompts_added, "
                            "responses_added, labels_added) VALUES (?, ?, ?, ?, 'task', ?, ?, ?, ?)",
                            [import_id, path, file_hash, fmt, len(items), added["prompts"], added["responses"],
                             added["labels"]])
        self._windows.pop(task_id, None)  # the queue head is read again with the new answers
        return {"task": task["name"], "task_id": task_id, "items": len(items), **added}

    def task_export_rows(self, task_id: str) -> tuple[list[dict], list[dict]]:
        """A task's items (prompt, response texts, draft text, external id) and every label on them that
        stands (not superseded, not retracted), with the texts it names: what an export to another tool needs."""
        con = self.cursor()
        cur = con.execute(
            """SELECT i.id, i.external_id, i.position, p.system, p.messages, i.response_ids,
                      list(r.text ORDER BY list_position(i.response_ids, r.id)) FILTER (WHERE r.id IS NOT NULL),
                      d.text, i.answers, i.prompt_id
               FROM task_items i JOIN prompts p ON p.id = i.prompt_id
               LEFT JOIN responses r ON list_contains(i.response_ids, r.id)
               LEFT JOIN responses d ON d.id = i.draft_response_id
               WHERE i.task_id = ? GROUP BY ALL ORDER BY i.position""", [task_id])
        items = [{"id": r[0], "external_id": r[1], "system": r[3], "messages": r[4], "response_ids": list(r[5]),
                  "responses": list(r[6] or []), "draft": r[7], "answers": r[8], "prompt_id": r[9]}
                 for r in cur.fetchall()]
        labels = self._label_rows(
            """SELECT l.*, r.text AS text FROM labels l LEFT JOIN responses r ON r.id = l.response_id
               WHERE l.task_id = ? AND l.kind <> 'retraction' AND NOT EXISTS
                     (SELECT 1 FROM labels s WHERE s.supersedes = l.id)
               ORDER BY l.created_at, l.id""", [task_id])
        return items, labels

    def newest_replies(self, version: str, prompt_ids: list[str]) -> dict[str, str]:
        """The newest reply of a model version to each of these prompts that has one."""
        if self.model_version(version) is None:
            raise StoreError(f"no model version {version!r}")
        rows = self.cursor().execute(
            "SELECT prompt_id, arg_max(text, created_at) FROM responses WHERE origin = 'model' AND "
            "model_version_id = ? AND prompt_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1",
            [version, prompt_ids]).fetchall()
        return dict(rows)

    # ---------------------------------------------------------------- users
    def add_user(self, name: str, role: str, password_hash: str, salt: str) -> None:
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone():
                raise StoreError(f"user {name!r} exists already")
            con.execute("INSERT INTO users (name, role, password_hash, salt) VALUES (?, ?, ?, ?)",
                        [name, role, password_hash, salt])

    def user(self, name: str) -> dict | None:
        row = self.cursor().execute("SELECT name, role, password_hash, salt FROM users WHERE name = ?",
                                    [name]).fetchone()
        return dict(zip(("name", "role", "password_hash", "salt"), row, strict=True)) if row else None

    def users(self) -> list[dict]:
        rows = self.cursor().execute("SELECT name, role, created_at FROM users ORDER BY name").fetchall()
        return [{"name": r[0], "role": r[1], "created_at": str(r[2])} for r in rows]

    # ---------------------------------------------------------------- runs and model versions
    def next_run_id(self, stage: str) -> str:
        n = self.cursor().execute("SELECT count(*) FROM runs WHERE stage = ?", [stage]).fetchone()[0]
        return f"{stage}-{n + 1}"

    def create_run(self, *, run_id: str, stage: str, parent_version_id: str | None, config: dict,
                   dataset_hash: str, run_dir: str) -> None:
        self.cursor().execute(
            "INSERT INTO runs (id, stage, status, parent_version_id, config, dataset_hash, dir) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?)",
            [run_id, stage, parent_version_id, json.dumps(config), dataset_hash, run_dir])

    def finish_run(self, run_id: str, *, status: str, error: str | None = None,
                   version: dict | None = None) -> None:
        """Mark a run ended and, for a successful one, add its model version, in one transaction."""
        with self.transaction() as con:
            con.execute("UPDATE runs SET status = ?, error = ?, finished_at = current_localtimestamp() WHERE id = ?",
                        [status, error, run_id])
            if version is not None:
                con.execute(
                    "INSERT INTO model_versions (id, run_id, stage, base_model, parent_id, dataset_hash, path, "
                    "config, metrics) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [version["id"], run_id, version["stage"], version["base_model"], version.get("parent_id"),
                     version["dataset_hash"], version["path"], json.dumps(version["config"]),
                     json.dumps(version["metrics"])])

    def restart_run(self, run_id: str) -> None:
        self.cursor().execute("UPDATE runs SET status = 'running', error = NULL, finished_at = NULL WHERE id = ?",
                              [run_id])

    def run(self, run_id: str) -> dict | None:
        row = self.cursor().execute(
            "SELECT id, stage, status, parent_version_id, config, dataset_hash, dir, error FROM runs WHERE id = ?",
            [run_id]).fetchone()
        if row is None:
            return None
        keys = ("id", "stage", "status", "parent_version_id", "config", "dataset_hash", "dir", "error")
        return dict(zip(keys, row, strict=True)) | {"config": json.loads(row[4] or "{}")}

    def model_version(self, version_id: str) -> dict | None:
        row = self.cursor().execute(
            "SELECT id, run_id, stage, base_model, parent_id, dataset_hash, path, config, metrics "
            "FROM model_versions WHERE id = ?", [version_id]).fetchone()
        if row is None:
            return None
        keys = ("id", "run_id", "stage", "base_model", "parent_id", "dataset_hash", "path", "config", "metrics")
        return dict(zip(keys, row, strict=True)) | {"config": json.loads(row[7] or "{}"),
                                                    "metrics": json.loads(row[8] or "{}")}

    # ---------------------------------------------------------------- export
    @staticmethod
    def _label_filter_sql(filters: ExportFilters) -> tuple[str, list]:
        clauses = ["NOT EXISTS (SELECT 1 FROM labels s WHERE s.supersedes = l.id)"]
        params: list = []
        if filters.annotators:
            clauses.append("l.annotator IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(filters.annotators))
        if filters.sources:
            # A label's source is its import file path or 'ui'; match by glob on the path or its file name.
            clauses.append("(len(list_filter(?::VARCHAR[], lambda g: l.source GLOB g OR "
                           "regexp_extract(l.source, '[^/]*$') GLOB g)) > 0)")
            params.append(list(filters.sources))
        if not filters.review_votes:
            clauses.append("NOT coalesce(l.task_id IN (SELECT id FROM tasks WHERE kind = 'review'), false)")
        if filters.since:
            clauses.append("l.created_at >= ?")
            params.append(filters.since)
        if filters.until:
            clauses.append("l.created_at < ?")
            params.append(filters.until)
        return " AND ".join(clauses), params

    def sft_rows_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """One row per distinct (prompt, demonstration): system, prompt turns, completion."""
        where, params = self._label_filter_sql(filters)
        sql = f"""
            SELECT l.prompt_id, l.response_id, any_value(p.system) AS system, any_value(p.messages) AS messages,
                   any_value(r.text) AS completion
            FROM labels l JOIN responses r ON r.id = l.response_id JOIN prompts p ON p.id = l.prompt_id
            WHERE l.kind = 'demonstration' AND {where}
            GROUP BY l.prompt_id, l.response_id"""
        return sql, params

    def unpaired_rows_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """One row per (prompt, response) with feedback votes: label true where thumbs up outnumber thumbs down,
        false where down outnumber up; an even split says nothing and is left out (TRL's unpaired format)."""
        where, params = self._label_filter_sql(filters)
        sql = f"""
            SELECT l.prompt_id, l.response_id, any_value(p.system) AS system, any_value(p.messages) AS messages,
                   any_value(r.text) AS completion, count(*) AS votes,
                   count(*) FILTER (WHERE (l.payload->>'$.thumb') = 'up') AS ups,
                   count(*) FILTER (WHERE (l.payload->>'$.thumb') = 'down') AS downs, ups > downs AS label
            FROM labels l JOIN responses r ON r.id = l.response_id JOIN prompts p ON p.id = l.prompt_id
            WHERE l.kind = 'feedback' AND {where}
            GROUP BY l.prompt_id, l.response_id
            HAVING ups <> downs"""
        return sql, params

    def _pairs_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """Every candidate pair with its pooled votes and its fate: 'kept', 'tie', or why it was left out.

        Votes on a pair are pooled whichever way round it was shown. Rankings give one vote per pair the
        pair rule takes (equal ranks are a tie vote); a pair no rule took is fated 'pair rule'. An admin's
        adjudication (`final`) decides its pair outright, whatever the votes and filters say.
        """
        where, params = self._label_filter_sql(filters)

        def rank(i: str) -> str:  # a ranking position's rank: payload.ranks where given (ties), else its place
            return f"coalesce(TRY_CAST((l.payload->'$.ranks'->>({i} - 1)) AS DOUBLE), {i}::DOUBLE)"

        def score(i: str) -> str:
            return f"TRY_CAST((l.payload->'$.scores'->>({i} - 1)) AS DOUBLE)"

        pair_margin = ("TRY_CAST((l.payload->>'$.chosen_score') AS DOUBLE) - "
                       "TRY_CAST((l.payload->>'$.rejected_score') AS DOUBLE)")
        ranking_rule = {
            "all": "true",
            "best_vs_rest": f"{rank('i')} = {rank('1')}",
            "best_vs_worst": f"{rank('i')} = {rank('1')} AND {rank('j')} = {rank('len(l.ranking)')}",
            "margin": f"coalesce({score('i')} - {score('j')}, {rank('j')} - {rank('i')}) >= ?",
        }[filters.pairs]
        pair_rule = f"coalesce({pair_margin} >= ?, false)" if filters.pairs == "margin" else "true"
        sql = f"""
            WITH votes_in AS (
                SELECT l.prompt_id, l.chosen_id AS w, l.rejected_id AS lo, l.outcome,
                       coalesce(l.final, false) AS final, l.created_at, {pair_rule} AS in_rule
                FROM labels l WHERE l.kind = 'preference' AND {where}
                UNION ALL
                SELECT l.prompt_id, l.ranking[i], l.ranking[j],
                       CASE WHEN {rank('i')} = {rank('j')} THEN 'tie' ELSE 'chosen' END,
                       coalesce(l.final, false), l.created_at, {ranking_rule}
                FROM labels l, range(1, len(l.ranking) + 1) t(i), range(i + 1, len(l.ranking) + 1) u(j)
                WHERE l.kind = 'ranking' AND {where}),
            active AS (SELECT *, least(w, lo) AS a, greatest(w, lo) AS b FROM votes_in),
            votes AS (
                SELECT prompt_id, a, b, bool_or(in_rule) AS considered,
                    count(*) FILTER (WHERE in_rule AND NOT final) AS votes,
                    count(*) FILTER (WHERE in_rule AND NOT final AND outcome = 'chosen' AND w = a) AS wins_a,
                    count(*) FILTER (WHERE in_rule AND NOT final AND outcome = 'chosen' AND w = b) AS wins_b,
                    count(*) FILTER (WHERE in_rule AND NOT final AND outcome <> 'chosen') AS ties,
                    coalesce(bool_or(in_rule AND final), false) AS has_final,
                    arg_max(outcome, created_at) FILTER (WHERE in_rule AND final) AS final_outcome,
                    arg_max(w, created_at) FILTER (WHERE in_rule AND final) AS final_w
                FROM active GROUP BY prompt_id, a, b),
            scored AS (
                SELECT *, CASE WHEN votes > 0 THEN greatest(wins_a, wins_b, ties) / votes ELSE 1.0 END AS agreement,
                    CASE WHEN has_final THEN (CASE WHEN final_outcome = 'chosen' THEN final_w END)
                         WHEN wins_a > wins_b AND wins_a > ties THEN a
                         WHEN wins_b > wins_a AND wins_b > ties THEN b END AS winner
                FROM votes),
            decided AS (
                SELECT *, CASE WHEN NOT considered THEN 'pair rule'
                    WHEN has_final THEN (CASE WHEN winner IS NOT NULL THEN 'kept' ELSE 'tie' END)
                    WHEN votes < ? THEN 'too few votes'
                    WHEN agreement < ? THEN 'low agreement'
                    WHEN ? AND ties > 0 THEN 'tie votes'
                    WHEN winner IS NOT NULL THEN 'kept'
                    WHEN ties > wins_a AND ties > wins_b THEN 'tie'
                    ELSE 'split' END AS fate
                FROM scored)"""
        rule_params = [filters.min_margin] if filters.pairs == "margin" else []
        params = [*rule_params, *params, *rule_params, *params,
                  filters.min_votes, filters.min_agreement, filters.exclude_ties]
        return sql, params

    def preference_rows_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """One row per pair with a majority winner (and, with ties='keep', per tied pair), after the pair
        rule and the vote and agreement filters.

        A pair whose votes split evenly has no winner and is left out; so is a majority of 'tie' or 'both
        bad' unless ties are kept (TRL's pair formats have no tie: a kept tie is a row with tie=true,
        chosen/rejected in id order and label_smoothing 0.5). label_smoothing is the share of the pair's
        votes against its winner (3 votes to 2: 0.4; 5 to 0, or adjudicated: 0).
        """
        pairs_sql, params = self._pairs_sql(filters)
        sql = f"""{pairs_sql}
            SELECT d.prompt_id, d.a, d.b, p.system, p.messages, w.text AS chosen, r.text AS rejected,
                   d.votes, d.agreement, d.ties, d.fate = 'tie' AS tie,
                   CASE WHEN d.fate = 'tie' THEN 0.5 WHEN d.has_final OR d.votes = 0 THEN 0.0
                        ELSE 1.0 - greatest(d.wins_a, d.wins_b) / d.votes END AS label_smoothing
            FROM decided d
            JOIN prompts p ON p.id = d.prompt_id
            JOIN responses w ON w.id = coalesce(d.winner, d.a)
            JOIN responses r ON r.id = CASE WHEN coalesce(d.winner, d.a) = d.a THEN d.b ELSE d.a END
            WHERE d.fate = 'kept' OR (d.fate = 'tie' AND ?)"""
        return sql, [*params, filters.ties == "keep"]

    def pair_fates(self, filters: ExportFilters) -> dict[str, int]:
        """How many candidate pairs each rule kept or left out, for the dataset card and the CLI."""
        pairs_sql, params = self._pairs_sql(filters)
        rows = self.cursor().execute(f"{pairs_sql} SELECT fate, count(*) FROM decided GROUP BY fate ORDER BY fate",
                                     params).fetchall()
        return dict(rows)

    # Rows of one export are staged in this order: test-split prompts first, then by a seeded prompt hash,
    # then by response ids, so the same store, filters and seed give byte-identical files.
    _EXPORT_ORDER = {"sft": "rows.response_id", "unpaired": "rows.response_id", "preferences": "rows.a, rows.b"}
    # Which labels stand behind an exported row, for the card's sources and annotators.
    _EXPORT_LABELS = {
        "sft": "l.kind = 'demonstration' AND (l.prompt_id, l.response_id) IN "
               "(SELECT (prompt_id, response_id) FROM export_rows)",
        "unpaired": "l.kind = 'feedback' AND (l.prompt_id, l.response_id) IN "
                    "(SELECT (prompt_id, response_id) FROM export_rows)",
        "preferences": "((l.kind = 'preference' AND (l.prompt_id, least(l.chosen_id, l.rejected_id), "
                       "greatest(l.chosen_id, l.rejected_id)) IN (SELECT (prompt_id, a, b) FROM export_rows)) "
                       "OR (l.kind = 'ranking' AND EXISTS (SELECT 1 FROM export_rows e WHERE e.prompt_id = "
                       "l.prompt_id AND list_contains(l.ranking, e.a) AND list_contains(l.ranking, e.b))))",
    }

    @contextmanager
    def staged_export(self, kind: str, filters: ExportFilters, *, split: float,
                      seed: int) -> Iterator[StagedExport]:
        """Run the export query once into a temp table with each row's split, for the card's counts, the
        checks and the file writes to share; the table is dropped on leaving.

        The test split takes whole prompts (no prompt in both splits): prompts are ordered by a seeded
        hash and the first round(split * prompts) go to test, so the same seed gives the same split.
        """
        rows_sql, params = {"sft": self.sft_rows_sql, "unpaired": self.unpaired_rows_sql,
                            "preferences": self.preference_rows_sql}[kind](filters)
        con = self.cursor()
        if split > 0:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE export_rows AS
                WITH rows AS ({rows_sql}),
                ranked AS (SELECT prompt_id, row_number() OVER (ORDER BY md5(?::VARCHAR || prompt_id)) AS rk,
                                  count(*) OVER () AS n
                           FROM (SELECT DISTINCT prompt_id FROM rows))
                SELECT rows.*, CASE WHEN ranked.rk <= round(? * ranked.n) THEN 'test' ELSE 'train' END AS __split
                FROM rows JOIN ranked USING (prompt_id)
                ORDER BY ranked.rk, {self._EXPORT_ORDER[kind]}""",
                [*params, str(seed), split],
            )
        else:  # the same order without ranking prompts for a split: 0.5 s less at 1M rows
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE export_rows AS
                WITH rows AS ({rows_sql})
                SELECT rows.*, 'train' AS __split FROM rows
                ORDER BY md5(?::VARCHAR || rows.prompt_id), {self._EXPORT_ORDER[kind]}""",
                [*params, str(seed)],
            )
        where, label_params = self._label_filter_sql(filters)
        try:
            yield StagedExport(con, f"{self._EXPORT_LABELS[kind]} AND {where}", label_params)
        finally:
            con.execute("DROP TABLE IF EXISTS export_rows")

    # ---------------------------------------------------------------- reading
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

    def table_counts(self) -> dict[str, int]:
        return self._table_counts(self.cursor())

    # ---------------------------------------------------------------- generation and A/B review
    def selected_prompts(self, *, sources: list[str] | None = None, tags: list[str] | None = None,
                         query: str | None = None, limit: int | None = None) -> list[dict]:
        """Prompts chosen like a task's (file glob, tags, text), in import order, as conversations with the
        system prompt first: what a generation job snapshots."""
        where, params = _prompt_selection(sources, tags, query)
        rows = self.cursor().execute(
            f"SELECT id, any_value(system), any_value(messages) FROM prompts p WHERE {where} GROUP BY id "
            f"ORDER BY min(source), min(source_line), id {'LIMIT ?' if limit else ''}",
            params + ([limit] if limit else [])).fetchall()
        return [{"prompt_id": r[0], "prompt": ([{"role": "system", "content": r[1]}] if r[1] else []) + list(r[2])}
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
                con.execute("CREATE TEMP TABLE generated_ids AS SELECT md5(prompt_id || chr(0) || version || chr(0) "
                            "|| text) AS id, * FROM generated_rows")
                _insert_new(con, "responses", "id, prompt_id, text, origin, model_version_id, generation, source",
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
            """SELECT l.task_id, l.item_id, l.annotator, l.outcome, c.model_version_id, r.model_version_id,
                      l.created_at
               FROM labels l JOIN tasks t ON t.id = l.task_id AND t.kind = 'review'
               JOIN responses c ON c.id = l.chosen_id JOIN responses r ON r.id = l.rejected_id
               WHERE l.kind = 'preference' AND NOT coalesce(l.final, false)
                 AND NOT EXISTS (SELECT 1 FROM labels s WHERE s.task_id = l.task_id AND s.supersedes = l.id)
                 AND (? IS NULL OR list_contains(?::VARCHAR[], l.task_id))
               ORDER BY l.created_at, l.id""", [task_ids, task_ids]).fetchall()
        return [{"review": r[0], "item_id": r[1], "annotator": r[2], "outcome": r[3], "chosen": r[4],
                 "rejected": r[5], "winner": r[4] if r[3] == "chosen" else None, "created_at": str(r[6])}
                for r in rows]

    def heldout_conversations(self, tag: str = "heldout", limit: int | None = None) -> list[list[dict]]:
        """Prompts with a tag as chat conversations (system prompt first), for trainers' sample checks."""
        return [([{"role": "system", "content": p["system"]}] if p["system"] else []) + list(p["messages"])
                for p in self.prompts_with_tag(tag)[:limit]]

    def prompts_with_tag(self, tag: str) -> list[dict]:
        rows = self.cursor().execute(
            "SELECT id, system, messages FROM prompts WHERE list_contains(tags, ?) ORDER BY source_line", [tag]
        ).fetchall()
        return [{"id": r[0], "system": r[1], "messages": r[2]} for r in rows]

    def dump(self) -> dict[str, list]:
        """Every row of the data tables, in a stable order: tests compare stores before and after."""
        con = self.cursor()
        return {
            t: con.execute(f"SELECT * {'' if t == 'task_items' else 'EXCLUDE (created_at)'} FROM {t} "
                           "ORDER BY ALL").fetchall()
            for t in ("imports", "prompts", "responses", "labels", "users", "runs", "model_versions", "tasks",
                      "task_items")
        }


def _prompt_selection(sources: list[str] | None, tags: list[str] | None, query: str | None) -> tuple[str, list]:
    """A WHERE clause over `prompts p`: file glob (path or name), any of the tags, text contains (any case)."""
    clauses, params = ["TRUE"], []
    if sources:
        clauses.append("(len(list_filter(?::VARCHAR[], lambda g: p.source GLOB g OR "
                       "regexp_extract(p.source, '[^/]*$') GLOB g)) > 0)")
        params.append(list(sources))
    if tags:
        clauses.append("len(list_intersect(p.tags, ?::VARCHAR[])) > 0")
        params.append(list(tags))
    if query:
        clauses.append("(coalesce(p.system, '') || ' ' || array_to_string(list_transform(p.messages, "
                       "lambda m: m.content), ' ')) ILIKE ('%' || ? || '%')")
        params.append(query)
    return " AND ".join(clauses), params


def _insert_person_response(con: duckdb.DuckDBPyConnection, prompt_id: str, text: str, annotator: str) -> str:
    """A person's reply as a response (its id hashes prompt and text, so the same reply is stored once)."""
    response_id = con.execute("SELECT md5(? || chr(0) || ?)", [prompt_id, text]).fetchone()[0]
    con.execute("INSERT INTO responses (id, prompt_id, text, origin, author, source) "
                "SELECT ?, ?, ?, 'person', ?, 'ui' WHERE ? NOT IN (SELECT id FROM responses)",
                [response_id, prompt_id, text, annotator, response_id])
    return response_id


def _insert_new(con: duckdb.DuckDBPyConnection, table: str, columns: str, select: str, source: str, key: str,
                params: list) -> None:
    """Insert the rows of `source` whose `key` is not in `table` yet, each key once (its first line).

    Dedupe by anti-join instead of a PRIMARY KEY: at 1M rows an ART key index made inserts 2-3x slower
    (BENCHMARKS.md). The store is the only writer and every insert path skips ids already present, so
    ids stay unique. Within a file, duplicates are rare: a cheap distinct count decides whether the
    first-line semi-join (2.6x slower than a plain insert) is needed at all.
    """
    unique = con.execute(f"SELECT count({key}) = count(DISTINCT {key}) FROM {source}").fetchone()[0]
    first_only = "" if unique else (
        f"SEMI JOIN (SELECT {key} AS k, min(line) AS l FROM {source} GROUP BY 1) f ON f.k = s.{key} AND f.l = s.line")
    con.execute(
        f"""INSERT INTO {table} ({columns}) SELECT {select} FROM {source} s {first_only}
        WHERE s.{key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = s.{key})""",
        params,
    )


class StagedExport:
    """The rows of one export, staged by `Store.staged_export`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, labels_where: str, labels_params: list):
        self._con = con
        self._labels_where = labels_where
        self._labels_params = labels_params

    def counts(self) -> dict[str, int]:
        counts = dict(self._con.execute("SELECT __split, count(*) FROM export_rows GROUP BY 1").fetchall())
        return {s: counts[s] for s in ("train", "test") if counts.get(s)}

    def provenance(self) -> dict:
        """Counts behind a dataset card: rows, prompts, label sources and annotators."""
        row = self._con.execute(
            f"""SELECT (SELECT count(*) FROM export_rows), (SELECT count(DISTINCT prompt_id) FROM export_rows),
                   list(DISTINCT l.source ORDER BY l.source), list(DISTINCT l.annotator ORDER BY l.annotator)
            FROM labels l WHERE {self._labels_where}""",
            self._labels_params,
        ).fetchone()
        return {"rows": row[0], "prompts": row[1], "sources": row[2] or [], "annotators": row[3] or []}

    def pairs_per_prompt(self) -> dict[int, int]:
        """How many prompts gave 1, 2, 3... rows: what a pair rule made of each item, for the card."""
        rows = self._con.execute("SELECT n, count(*) FROM (SELECT count(*) AS n FROM export_rows GROUP BY prompt_id) "
                                 "GROUP BY n ORDER BY n").fetchall()
        return dict(rows)

    def multi_turn_or_system_count(self) -> int:
        """Rows that cannot be written in TRL's standard (plain-string) style."""
        return self._con.execute(
            "SELECT count(*) FROM export_rows WHERE system IS NOT NULL OR len(messages) > 1").fetchone()[0]

    def write(self, *, columns_sql: str, out_dir: Path, fmt: str) -> None:
        """Write train (and test) files with `columns_sql` as their columns, in the staged order."""
        out_dir.mkdir(parents=True, exist_ok=True)
        splits = list(self.counts())
        # No ORDER BY: the table was filled in export order and DuckDB keeps insertion order
        # (preserve_insertion_order is on by default); a sort here would cost a second at 1M rows.
        select = "SELECT {columns} FROM export_rows WHERE __split = '{split}'"
        if fmt == "hf":
            import datasets

            datasets.DatasetDict({
                s: datasets.Dataset(self._con.sql(select.format(columns=columns_sql, split=s)).to_arrow_table())
                for s in splits
            }).save_to_disk(str(out_dir))
            return
        copy_format = {"jsonl": "FORMAT json", "parquet": "FORMAT parquet, COMPRESSION zstd"}[fmt]
        for s in splits:
            target = out_dir / f"{s}.{fmt}"
            self._con.execute(f"COPY ({select.format(columns=columns_sql, split=s)}) "
                              f"TO '{_sql_path(target)}' ({copy_format})")


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
