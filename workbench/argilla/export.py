"""A task handed back to Argilla: the to_disk layout, every standing answer a response, the model reply a
suggestion, with stable user ids."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from workbench.argilla.dataset import USER_NAMESPACE, USERS_FILE, ArgillaFormatError, users_of
from workbench.store import Task


def _field(name: str, kind: str, required: bool = True) -> dict:
    return {"id": None, "inserted_at": None, "updated_at": None, "name": name,
            "settings": {"type": kind, "use_markdown": kind == "chat"}, "title": name, "required": required,
            "description": None, "dataset_id": None, "type": kind}


def _question(name: str, kind: str, settings: dict, required: bool = True) -> dict:
    return {"id": None, "inserted_at": None, "updated_at": None, "name": name, "settings": {"type": kind, **settings},
            "title": name, "description": None, "required": required, "dataset_id": None, "type": kind}


def _native_layout(task: Task, items: list[dict]) -> dict:
    """Settings and field mapping for a task made in the workbench: a `prompt` field (chat when any item
    has a system prompt or several turns), `response1..N` and a `ranking` question, or a `response` text
    question for demonstrations (Argilla's own ranking and SFT templates use the same shapes)."""
    chat = any(i["system"] or len(i["messages"]) > 1 for i in items)
    fields = [_field("prompt", "chat" if chat else "text")]
    if task.kind == "demonstration":
        responses: list[str] = []
        questions = [_question("response", "text", {"use_markdown": False})]
    else:
        n = max([len(i["responses"]) for i in items] + [2])
        responses = [f"response{k}" for k in range(1, n + 1)]
        fields += [_field(name, "text", required=k < 2) for k, name in enumerate(responses)]
        questions = [_question("ranking", "ranking", {"options": [{"text": r, "value": r} for r in responses]})]
    settings = {"guidelines": task.guidelines or None, "questions": questions, "fields": fields, "vectors": [],
                "metadata": [], "allow_extra_metadata": False,
                "distribution": {"strategy": "overlap", "min_submitted": task.overlap}, "mapping": None}
    return {"settings": settings, "prompt_field": "prompt", "response_fields": responses,
            "draft_field": None, "question": questions[0]["name"]}


def _imported_layout(origin: dict) -> dict:
    """The settings the task came with; fields the workbench does not keep (anything but the prompt, the
    responses and the draft) are marked optional so Argilla accepts records without them."""
    settings = json.loads(json.dumps(origin["settings"]))
    kept = {origin["prompt_field"], *origin["response_fields"], origin.get("draft_field")}
    for f in settings["fields"]:
        if f["name"] not in kept:
            f["required"] = False
    return {**origin, "settings": settings}


def _prompt_value(item: dict, kind: str):
    if kind == "chat":
        system = [{"role": "system", "content": item["system"]}] if item["system"] else []
        return system + [dict(m) for m in item["messages"]]
    return item["messages"][-1]["content"] if len(item["messages"]) == 1 and not item["system"] else \
        "\n\n".join(f"{m['role']}: {m['content']}" for m in item["messages"])


def _user_id(annotator: str, users: dict[str, str], known: dict[str, str]) -> str:
    """The Argilla user id of an annotator: the one they came with, the one a users file gives their name,
    or a stable UUID made from their name (written to workbench_users.json to map it back)."""
    if annotator.startswith("argilla:"):
        return annotator.split(":", 1)[1]
    if annotator in known:
        return known[annotator]
    uid = str(uuid.uuid5(USER_NAMESPACE, annotator))
    users[uid] = annotator
    return uid


def _answer(label: dict, item: dict, fields: list[str]) -> tuple[object, str]:
    """An answer as Argilla's (value, status)."""
    payload = label["payload"]
    field_of = {rid: fields[k] for k, rid in enumerate(item["response_ids"]) if k < len(fields)}
    kind = label["kind"]
    if kind == "held":
        return payload.get("value"), payload.get("status", "draft")
    if kind == "preference":
        if label["outcome"] == "both_bad":  # Argilla has no 'both bad': the annotator discarded the record
            return None, "discarded"
        second = 1 if label["outcome"] == "tie" else 2
        return [{"value": field_of[label["chosen_id"]], "rank": 1},
                {"value": field_of[label["rejected_id"]], "rank": second}], "submitted"
    if kind == "ranking":
        ranks = payload.get("ranks") or list(range(1, len(label["ranking"]) + 1))
        return [{"value": field_of[rid], "rank": rank} for rid, rank in zip(label["ranking"], ranks, strict=True)], \
            "submitted"
    if kind == "demonstration":
        return label["text"], "submitted"
    return payload.get("value"), "submitted"


@dataclass
class ExportReport:
    path: str
    records: int
    responses: int
    suggestions: int
    users: int

    def summary(self) -> str:
        return (f"{self.path}: {self.records} records, {self.responses} responses, {self.suggestions} suggestions, "
                f"{self.users} users (load it with rg.Dataset.from_disk({self.path!r}, client=client))")


def export_task(store, task_name: str, out: str | Path, *, version: str | None = None,
                users_file: str | Path | None = None, only_argilla_users: bool = False) -> ExportReport:
    """Write a task in Argilla's to_disk layout. `version`: suggest that model version's newest reply to
    each prompt (default: the item's draft, which is the newest model reply when the task was made).
    `users_file` (Argilla user ids -> names, as for import) gives annotators their Argilla ids back.
    `only_argilla_users`: leave out answers of annotators with no Argilla id (a server rejects unknown users)."""
    task = store.task(task_name)
    if task is None:
        raise ArgillaFormatError(f"no task named {task_name!r}")
    if task.kind == "review":
        raise ArgillaFormatError(f"{task_name!r} is a blind A/B review: export it as a dataset "
                                 "(workbench export) rather than as an Argilla ranking")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ArgillaFormatError(f"{out}: exists and is not empty (Argilla's to_disk also wants an empty folder)")
    known = {name: uid for uid, name in users_of(out, users_file).items()} if users_file else {}
    items, labels = store.task_export_rows(task.id)
    origin = task.selection.get("argilla")
    layout = _imported_layout(origin) if origin else _native_layout(task, items)
    field_types = {f["name"]: f.get("type") or f["settings"]["type"] for f in layout["settings"]["fields"]}
    replies = store.newest_replies(version, [i["prompt_id"] for i in items]) if version else {}
    by_item: dict[str, list[dict]] = {}
    for label in labels:
        by_item.setdefault(label["item_id"], []).append(label)
    users: dict[str, str] = {}
    records = []
    n_responses = n_suggestions = 0
    for item in items:
        fields = {layout["prompt_field"]: _prompt_value(item, field_types[layout["prompt_field"]])}
        fields.update({f: text for f, text in zip(layout["response_fields"], item["responses"], strict=False)})
        if layout.get("draft_field") and item["draft"]:
            fields[layout["draft_field"]] = item["draft"]
        latest: dict[tuple[str, str], dict] = {}  # Argilla keeps one response per user and question
        for label in by_item.get(item["id"], []):
            if only_argilla_users and not (label["annotator"].startswith("argilla:") or label["annotator"] in known):
                continue
            question = label["payload"].get("question") or layout["question"]
            value, status = _answer(label, item, layout["response_fields"])
            latest[(question, _user_id(label["annotator"], users, known))] = {"value": value, "status": status}
        responses: dict[str, list[dict]] = {}
        for (question, uid), answer in latest.items():
            responses.setdefault(question, []).append({"value": answer["value"], "user_id": uid,
                                                       "status": answer["status"]})
        n_responses += len(latest)
        suggestion = replies.get(item["prompt_id"]) or (item["draft"] if task.kind == "demonstration" else None)
        suggestions = {}
        if suggestion and layout["question"] in {q["name"] for q in layout["settings"]["questions"]
                                                  if (q.get("type") or q["settings"]["type"]) == "text"}:
            suggestions[layout["question"]] = {"value": suggestion, "score": None, "agent": version or "workbench"}
            n_suggestions += 1
        records.append({"id": item["external_id"] or item["id"], "fields": fields, "metadata": {},
                        "suggestions": suggestions, "responses": responses, "vectors": {},
                        "status": "completed" if item["answers"] >= task.overlap else "pending",
                        "_server_id": None})
    (out / ".argilla").mkdir(parents=True, exist_ok=True)
    (out / ".argilla" / "settings.json").write_text(json.dumps(layout["settings"]), encoding="utf-8")
    (out / ".argilla" / "dataset.json").write_text(json.dumps(
        {"id": None, "inserted_at": None, "updated_at": None, "name": (origin or {}).get("dataset") or task.name,
         "status": "draft", "guidelines": None, "allow_extra_metadata": True, "distribution": None,
         "workspace_id": None, "last_activity_at": None}), encoding="utf-8")
    (out / "records.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    if users:
        (out / USERS_FILE).write_text(json.dumps(users, indent=1, sort_keys=True), encoding="utf-8")
    return ExportReport(str(out), len(records), n_responses, n_suggestions, len(users))
