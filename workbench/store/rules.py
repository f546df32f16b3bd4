"""Rules the whole store shares, written once: which labels stand, how content ids are made, what a prompt
looks like as a chat.

Ids are md5 content hashes (stable across DuckDB versions, unlike hash()), parts joined by a NUL: a prompt
is its system prompt plus its turns, a response its prompt plus its text, a generated reply its prompt,
version and text. The same rule is used from SQL (bulk paths) and from Python (rows shaped before insert);
tests/test_store.py checks that the two agree.
"""

from __future__ import annotations

import hashlib

# Label kinds that count as an annotator's answer to an item (a 'retraction' only hides what it supersedes).
ANSWER_KINDS = ("demonstration", "preference", "ranking", "feedback")


def standing(label: str = "l") -> str:
    """SQL: the label `label` stands, that is no later label (an edit, a retraction) supersedes it.

    Labels are append-only: an edit or an undo is a new row whose `supersedes` names the old one, and
    every link stays inside one task, so this one test is the whole rule."""
    return f"NOT EXISTS (SELECT 1 FROM labels newer WHERE newer.supersedes = {label}.id)"


# The answers that stand in a task (one parameter: the task id): each annotator's latest answer on each item.
STANDING_ANSWERS = f"""
    SELECT l.* FROM labels l
    WHERE l.task_id = ? AND l.kind IN {ANSWER_KINDS} AND NOT coalesce(l.final, false) AND {standing()}"""


# The items of task ? that show a reply annotator ? wrote: nobody is asked to judge their own work.
OWN_ITEMS = """SELECT DISTINCT i.id FROM (SELECT id, unnest(response_ids) AS rid FROM task_items WHERE task_id = ?) i
    JOIN responses r ON r.id = i.rid WHERE r.origin = 'person' AND r.author = ?"""


def hash_sql(*parts: str) -> str:
    """SQL for the content id of `parts` (SQL expressions)."""
    return "md5(" + " || chr(0) || ".join(parts) + ")"


def content_id(*parts: str) -> str:
    """The content id of `parts`, in Python: equal to `hash_sql` over the same values."""
    return hashlib.md5(chr(0).join(parts).encode("utf-8")).hexdigest()


# A prompt's id, over columns `system` and `prompt` (its turns).
PROMPT_ID_SQL = hash_sql("coalesce(system, '')", "to_json(prompt)::VARCHAR")


def item_id_sql(task_id: str, prompt_id: str, response_ids: str) -> str:
    """SQL for a task item's id: its task, prompt and responses (16 hex digits: ids are shown to admins)."""
    return f"substr(md5({task_id} || {prompt_id} || array_to_string({response_ids}, ',')), 1, 16)"


def item_id(task_id: str, prompt_id: str, response_ids: list[str]) -> str:
    """A task item's id in Python: equal to `item_id_sql`."""
    return hashlib.md5((task_id + prompt_id + ",".join(response_ids)).encode("utf-8")).hexdigest()[:16]


def as_chat(system: str | None, messages: list[dict]) -> list[dict]:
    """A prompt as the chat a model reads: its system prompt (if any) first, then its turns."""
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": m["role"], "content": m["content"]} for m in messages]


def prompt_selection(sources: list[str] | None, tags: list[str] | None, query: str | None) -> tuple[str, list]:
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
