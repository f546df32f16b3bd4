"""The store's core: one open DuckDB file, its one writer, the write lock and `transaction()`.

DuckDB lets one read-write process hold a file; a second gets a `StoreLocked` error that says who holds it.
Threads share the connection through their own cursors. Every domain module (records, tasks, queue,
answers, exports, runs, users, generation) builds on this class and nothing else.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import duckdb

from workbench.errors import WorkbenchError
from workbench.store.open_items import Annotator, Window
from workbench.store.rules import content_id
from workbench.store.schema import MIGRATIONS, SCHEMA_VERSION


class StoreError(WorkbenchError):
    """A store operation that cannot go ahead; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process holds the DuckDB file for writing (DuckDB allows one writer per file)."""


def _lock_message(path: Path, exc: Exception) -> str:
    pid = re.search(r"PID (\d+)", str(exc))
    holder = f" (process {pid.group(1)})" if pid else ""
    return (
        f"the project store {path} is in use by another process{holder}: DuckDB allows one writer per file. "
        "Stop the workbench server (or the other command) first, or do this from the running server."
    )


class StoreCore:
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

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False, create: bool = False) -> Self:
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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._con.cursor()
        return cur

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

    def label_rows(self, sql: str, params: list) -> list[dict]:
        """Labels as dicts, their JSON payload read (every label query returns them this way)."""
        cur = self.cursor().execute(sql, params)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            label = dict(zip(names, row, strict=True))
            label["payload"] = json.loads(label["payload"] or "{}")
            label["created_at"] = str(label["created_at"])
            out.append(label)
        return out

    @staticmethod
    def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        row = con.execute(
            "SELECT (SELECT count(*) FROM prompts), (SELECT count(*) FROM responses), (SELECT count(*) FROM labels)"
        ).fetchone()
        return {"prompts": row[0], "responses": row[1], "labels": row[2]}

    def table_counts(self) -> dict[str, int]:
        return self._table_counts(self.cursor())

    def dump(self) -> dict[str, list]:
        """Every row of the data tables, in a stable order: tests compare stores before and after."""
        con = self.cursor()
        return {
            t: con.execute(f"SELECT * {'' if t == 'task_items' else 'EXCLUDE (created_at)'} FROM {t} "
                           "ORDER BY ALL").fetchall()
            for t in ("imports", "prompts", "responses", "labels", "users", "runs", "model_versions", "tasks",
                      "task_items")
        }


def insert_new(con: duckdb.DuckDBPyConnection, table: str, columns: str, select: str, source: str, key: str,
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


def insert_person_response(con: duckdb.DuckDBPyConnection, prompt_id: str, text: str, annotator: str) -> str:
    """A person's reply as a response (its id hashes prompt and text, so the same reply is stored once)."""
    response_id = content_id(prompt_id, text)
    con.execute("INSERT INTO responses (id, prompt_id, text, origin, author, source) "
                "SELECT ?, ?, ?, 'person', ?, 'ui' WHERE ? NOT IN (SELECT id FROM responses)",
                [response_id, prompt_id, text, annotator, response_id])
    return response_id


def sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
