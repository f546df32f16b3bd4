"""Labeling tasks: creating one with its fixed items, reading them, progress, and storing or reading a whole
labeled task from another tool (the Argilla module shapes the rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

import pyarrow as pa

from workbench.errors import check_text, excerpt
from workbench.store.core import StoreCore, StoreError, insert_new
from workbench.store.rules import (
    OWN_ITEMS,
    PROMPT_ID_SQL,
    STANDING_ANSWERS,
    item_id_sql,
    prompt_selection,
    standing,
)

TASK_KINDS = ("demonstration", "pairwise", "ranking", "feedback", "review")
TASK_NAME_CHARS = 200  # a name is shown in every list and reply; the UI asks for 1-64 letters and digits
MAX_OVERLAP = 50
MAX_RESPONSES = 50


@dataclass(frozen=True)
class Task:
    """A labeling task as every layer reads it (the labeling logic, the UI, the CLI, the Argilla export)."""

    id: str
    name: str
    kind: str  # one of TASK_KINDS
    overlap: int  # answers each item needs
    guidelines: str
    selection: dict  # sources, tags, query, max_responses; an imported task's `origin` (and `argilla`)
    created_by: str
    created_at: str
    versions: list[str]  # the two model versions a review compares, else empty
    items: int | None = None  # the item count, where the reader asked for it (tasks(), create_task())
    archived: str | None = None  # when an admin archived it: out of every list and queue, its labels kept


def _whole(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise StoreError(f"{what} {excerpt(value)}: choose a whole number from {low} to {high}")
    return value


def check_task_settings(*, name: object, kind: object, overlap: object, guidelines: object,
                        max_responses: object, texts: list[object]) -> None:
    """The settings a task is stored with, checked where it is stored: a form that lets 0 or "big" through
    gets one line back, never a silent default or a DuckDB error."""
    check_text(name, "the task name", StoreError)
    if not name.strip() or len(name) > TASK_NAME_CHARS or not name.isprintable():
        raise StoreError(f"the task name {excerpt(name)} must be 1-{TASK_NAME_CHARS} printable characters on "
                         "one line")
    if kind not in TASK_KINDS:
        raise StoreError(f"task kind {excerpt(kind)}: choose one of {', '.join(TASK_KINDS)}")
    _whole(overlap, "overlap (answers per item)", 1, MAX_OVERLAP)
    if max_responses is not None:
        _whole(max_responses, "max responses", 1 if kind in ("review", "feedback") else 2, MAX_RESPONSES)
    check_text(guidelines, "the guidelines", StoreError)
    for text in texts:
        check_text(text, "a selection value (source, tag, query or version)", StoreError)


class Tasks(StoreCore):
    def create_task(self, *, name: str, kind: str, overlap: int, guidelines: str, created_by: str,
                    sources: list[str] | None = None, tags: list[str] | None = None, query: str | None = None,
                    max_responses: int | None = None, versions: list[str] | None = None) -> Task:
        """Create a task and fix its items in one transaction; returns the task with its item count.

        Demonstration items are prompts, with the newest model reply (else an imported one) as the draft.
        Pairwise items are the pairs among up to `max_responses` (default 2) responses of a prompt, ranking
        items up to `max_responses` (default 4) responses; prompts with fewer than two responses are left out.
        Review items pair the k-th generated reply of `versions[0]` with the k-th of `versions[1]` for each
        prompt that has both, k up to `max_responses` (default 1).
        """
        check_task_settings(name=name, kind=kind, overlap=overlap, guidelines=guidelines, max_responses=max_responses,
                            texts=[*(sources or []), *(tags or []), *([query] if query is not None else []),
                                   *(versions or []), created_by])
        max_responses = max_responses or {"ranking": 4, "review": 1, "feedback": 1}.get(kind, 2)
        where, params = prompt_selection(sources, tags, query)
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
                raise StoreError(f"a task named {excerpt(name)} exists already")
            con.execute(
                "INSERT INTO tasks (id, name, kind, overlap, guidelines, selection, created_by, versions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [task_id, name, kind, overlap, guidelines,
                 json.dumps({"sources": sources or [], "tags": tags or [], "query": query,
                             "max_responses": max_responses}), created_by,
                 list(versions) if kind == "review" else None])
            con.execute(
                f"""INSERT INTO task_items (task_id, id, position, prompt_id, response_ids, draft_response_id)
                SELECT ?, {item_id_sql("?", "prompt_id", "response_ids")},
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
        return replace(self.task(task_id), items=count)

    _TASK_COLUMNS = ("id", "name", "kind", "overlap", "guidelines", "selection", "created_by", "created_at",
                     "versions", "archived_at")

    def task(self, task_id_or_name: str) -> Task | None:
        row = self.cursor().execute(
            f"SELECT {', '.join(self._TASK_COLUMNS)} FROM tasks WHERE id = ? OR name = ?",
            [task_id_or_name, task_id_or_name]).fetchone()
        return None if row is None else _task(row)

    def tasks(self) -> list[Task]:
        rows = self.cursor().execute(
            f"SELECT {', '.join(self._TASK_COLUMNS)}, (SELECT count(*) FROM task_items i WHERE i.task_id = t.id) "
            "FROM tasks t ORDER BY created_at, name").fetchall()
        return [replace(_task(r[:10]), items=r[10]) for r in rows]

    # ------------------------------------------------------------ what an admin changes later
    def _forget_task(self, task_id: str) -> None:
        """Drop what this process keeps of a task (overlap, queue head, annotators' skips): read it again."""
        self.__dict__.get("_overlaps", {}).pop(task_id, None)
        self._windows.pop(task_id, None)
        for key in [k for k in self._annotators if k[0] == task_id]:
            del self._annotators[key]

    def _existing_task(self, con, task_id_or_name: str) -> tuple[str, str]:
        row = con.execute("SELECT id, name FROM tasks WHERE id = ? OR name = ?",
                          [task_id_or_name, task_id_or_name]).fetchone()
        if row is None:
            raise StoreError(f"no task {excerpt(task_id_or_name)}: see `workbench tasks list`")
        return row

    def edit_task(self, task_id_or_name: str, *, guidelines: str | None = None, overlap: int | None = None) -> Task:
        """New guidelines and/or overlap. The overlap may rise (answered items open again) but never drop below
        the answers an item already has: those answers would stand beyond what the task asks for."""
        if guidelines is not None:
            check_text(guidelines, "the guidelines", StoreError)
        if overlap is not None:
            _whole(overlap, "overlap (answers per item)", 1, MAX_OVERLAP)
        with self._label_lock, self.transaction() as con:
            task_id, name = self._existing_task(con, task_id_or_name)
            if overlap is not None:
                most = con.execute("SELECT coalesce(max(answers), 0) FROM task_items WHERE task_id = ?",
                                   [task_id]).fetchone()[0]
                if overlap < most:
                    raise StoreError(f"task {name}: an item already has {most} answers, so the overlap can go no "
                                     f"lower than {most}")
                con.execute("UPDATE tasks SET overlap = ? WHERE id = ?", [overlap, task_id])
            if guidelines is not None:
                con.execute("UPDATE tasks SET guidelines = ? WHERE id = ?", [guidelines, task_id])
            self._forget_task(task_id)
        return self.task(task_id)

    def archive_task(self, task_id_or_name: str, archived: bool = True) -> bool:
        """Archive a task (it leaves annotators' lists and queues; its labels stay in exports and reports) or
        bring it back; False when it already was so."""
        with self._label_lock, self.transaction() as con:
            task_id, _ = self._existing_task(con, task_id_or_name)
            changed = con.execute(
                f"UPDATE tasks SET archived_at = {'current_localtimestamp()' if archived else 'NULL'} "
                f"WHERE id = ? AND archived_at IS {'' if archived else 'NOT '}NULL RETURNING id", [task_id]).fetchall()
            self._forget_task(task_id)
        return bool(changed)

    def delete_task(self, task_id_or_name: str) -> dict:
        """Delete a task nobody has answered yet, with its items, skips, flags and drafts; a task with any
        answer (a person's, an adjudication, a judge's verdict) is refused: archive it instead."""
        with self._label_lock, self.transaction() as con:
            task_id, name = self._existing_task(con, task_id_or_name)
            labels = con.execute("SELECT count(*) FROM labels WHERE task_id = ?", [task_id]).fetchone()[0]
            if labels:
                raise StoreError(f"task {name} has {labels} answer{'s' * (labels != 1)} (labels, votes or verdicts): "
                                 "it cannot be deleted; archive it instead")
            items = con.execute("SELECT count(*) FROM task_items WHERE task_id = ?", [task_id]).fetchone()[0]
            for table in ("task_items", "item_events", "drafts"):
                con.execute(f"DELETE FROM {table} WHERE task_id = ?", [task_id])
            con.execute("DELETE FROM tasks WHERE id = ?", [task_id])
            self._forget_task(task_id)
        return {"task": name, "task_id": task_id, "items": items}

    def task_progress(self, task_id: str) -> dict:
        """Items done (with `overlap` answers) and remaining, and per annotator: answers, skips, flags."""
        con = self.cursor()
        overlap = con.execute("SELECT overlap FROM tasks WHERE id = ?", [task_id]).fetchone()[0]
        total, complete, answers = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE answers >= ?), coalesce(sum(answers), 0) FROM task_items "
            "WHERE task_id = ?", [overlap, task_id]).fetchone()
        per_annotator = con.execute(
            f"""WITH active AS ({STANDING_ANSWERS}),
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
            f"""WITH flagged AS (SELECT DISTINCT item_id FROM item_events WHERE task_id = ? AND annotator = ?
                                AND event = 'flag'),
            own AS ({OWN_ITEMS}),
            items AS (SELECT list_contains(annotators, ?) AS mine, answers, id FROM task_items WHERE task_id = ?)
            SELECT count(*) FILTER (WHERE mine),
                   count(*) FILTER (WHERE NOT mine AND answers < ? AND flagged.item_id IS NULL AND own.id IS NULL)
            FROM items LEFT JOIN flagged ON flagged.item_id = items.id LEFT JOIN own ON own.id = items.id""",
            [task_id, annotator, task_id, annotator, annotator, task_id, overlap]).fetchone()

    def flagged_items(self, task_id: str) -> list[dict]:
        rows = self.cursor().execute(
            "SELECT item_id, list(DISTINCT annotator ORDER BY annotator), list(DISTINCT reason ORDER BY reason) "
            "FROM item_events WHERE task_id = ? AND event = 'flag' GROUP BY item_id ORDER BY item_id",
            [task_id]).fetchall()
        return [{"item_id": r[0], "annotators": r[1], "reasons": r[2]} for r in rows]

    def prompt_ids(self, prompts: list[tuple[str | None, list[dict]]]) -> list[str]:
        """The ids (system prompt, turns) would get in the store, computed by the same SQL as every insert,
        so rows shaped in Python (another tool's dataset) can name their prompts before they are stored."""
        with self._con.cursor() as con:  # its own cursor: this thread's may hold a half-read result
            con.register("asked", _prompts_table(prompts))
            return [r[0] for r in con.execute(f"SELECT {PROMPT_ID_SQL} FROM asked ORDER BY line").fetchall()]

    def import_task(self, *, task: dict, prompts: list[tuple[str | None, list[dict]]], responses: list[tuple],
                    items: list[tuple], labels: list[tuple], path: str, file_hash: str, fmt: str,
                    tags: list[str] | None = None) -> dict:
        """Store a labeled dataset from another tool as a task, in one transaction; returns what was added.

        `task`: name, kind, overlap, guidelines, selection (with an `origin` key naming the dataset).
        `prompts`: (system, turns) per item. The rows, shaped by the caller with `prompt_ids` and
        rules.content_id (workbench.argilla does it for Argilla): `responses` (id, prompt_id, text, origin,
        author, source_line), `items` (id, offset from 1, prompt_id, response_ids, draft_response_id,
        external_id) and `labels` (id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome,
        ranking, payload, annotator, source_line, task_id, item_id, question). Rows already stored are
        skipped, so importing the same dataset twice adds nothing; a changed answer (same item, question and
        annotator) supersedes the one stored before. A task of that name must be new or come from the same
        dataset.
        """
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
            con.register("incoming", _prompts_table(prompts))
            con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS SELECT *, {PROMPT_ID_SQL} AS prompt_id, ? AS source "
                        "FROM incoming", [path])
            con.unregister("incoming")
            insert_new(con, "prompts", "id, system, messages, tags, source, source_line, import_id",
                       "s.prompt_id, s.system, s.prompt, ?::VARCHAR[], s.source, s.line, ?", "staged", "prompt_id",
                       [list(tags or []), import_id])
            con.execute("DROP TABLE staged")
            start = con.execute("SELECT coalesce(max(position), 0) FROM task_items WHERE task_id = ?",
                                [task_id]).fetchall()[0][0]
            for table, rows, columns in (
                    ("responses", responses, "id, prompt_id, text, origin, author, source_line"),
                    ("task_items", items, "id, position, prompt_id, response_ids, draft_response_id, external_id"),
                    ("labels", labels, "id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome, "
                                       "ranking, payload, annotator, source_line, task_id, item_id, question")):
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
                                "draft_response_id, external_id) SELECT ?, id, ? + position, prompt_id, response_ids, "
                                "draft_response_id, external_id FROM staged s WHERE NOT EXISTS "
                                "(SELECT 1 FROM task_items i WHERE i.task_id = ? AND i.id = s.id) ORDER BY position",
                                [task_id, start, task_id])
                else:
                    # A changed answer supersedes the standing one of the same item, question and annotator.
                    con.execute(
                        f"""INSERT INTO labels (id, kind, prompt_id, response_id, chosen_id, rejected_id, outcome,
                               ranking, payload, annotator, source, source_line, import_id, task_id, item_id,
                               supersedes)
                           SELECT s.id, s.kind, s.prompt_id, s.response_id, s.chosen_id, s.rejected_id, s.outcome,
                               s.ranking, s.payload, s.annotator, ?, s.source_line, ?, s.task_id,
                               s.item_id,
                               (SELECT first(l.id ORDER BY l.created_at DESC) FROM labels l
                                WHERE l.task_id = s.task_id AND l.item_id = s.item_id AND l.annotator = s.annotator
                                  AND coalesce(json_extract_string(l.payload, '$.question'), '') = s.question
                                  AND l.kind <> 'retraction' AND NOT coalesce(l.final, false)
                                  AND {standing()})
                           FROM staged s WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.id = s.id)""",
                        [path, import_id])
                con.execute("DROP TABLE staged")
            # the items' answer summary, recounted from the answers that stand after this import
            con.execute(
                f"""UPDATE task_items SET answers = coalesce(a.n, 0), annotators = coalesce(a.who, [])
                    FROM (SELECT i.id, count(DISTINCT x.annotator) AS n,
                                 list(DISTINCT x.annotator) FILTER (WHERE x.annotator IS NOT NULL) AS who
                          FROM task_items i LEFT JOIN ({STANDING_ANSWERS}) x ON x.item_id = i.id
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
        labels = self.label_rows(
            f"""SELECT l.*, r.text AS text FROM labels l LEFT JOIN responses r ON r.id = l.response_id
               WHERE l.task_id = ? AND l.kind <> 'retraction' AND {standing()}
               ORDER BY l.created_at, l.id""", [task_id])
        return items, labels


def _task(row: tuple) -> Task:
    return Task(id=row[0], name=row[1], kind=row[2], overlap=row[3], guidelines=row[4],
                selection=json.loads(row[5] or "{}"), created_by=row[6], created_at=str(row[7]),
                versions=list(row[8] or []), archived=str(row[9]) if row[9] else None)


def _prompts_table(prompts: list[tuple[str | None, list[dict]]]) -> pa.Table:
    return pa.table({
        "line": pa.array(range(1, len(prompts) + 1), pa.int64()),
        "system": pa.array([system for system, _ in prompts], pa.string()),
        "prompt": pa.array([turns for _, turns in prompts],
                           pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))})
