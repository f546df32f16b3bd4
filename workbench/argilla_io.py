"""Argilla (v2) interop: take a dataset labeled in Argilla as it is, and hand a task back to Argilla.

Teams that already label in Argilla should be able to switch or mix tools at no cost. An Argilla dataset
becomes one labeling task: each record is an item, its ranking (or text) question is the task's question,
and every response keeps its Argilla user as the annotator. Two layouts are read, both as Argilla's own SDK
(2.8) writes them (`argilla/datasets/_io/_disk.py`, `argilla/records/_io/_generic.py`):

    to_disk:  FOLDER/.argilla/settings.json, FOLDER/.argilla/dataset.json, FOLDER/records.json
              records.json = [{"id", "fields": {...}, "responses": {question: [{"value", "user_id"}]},
                               "suggestions": {question: {"value", "score", "agent"}}, "status", ...}]
    to_hub:   the same .argilla/ files beside the data (data/*.parquet, *.parquet or a datasets
              save_to_disk folder) in Argilla's flattened columns: `<field>`, `<question>.responses`,
              `<question>.responses.users`, `<question>.responses.status`, `<question>.suggestion`, ...

Argilla's to_disk drops each response's status (its `RecordResponses.to_dict` keeps value and user id
only), so a response without one counts as submitted and the report says how many that was; a status
that is there (hub layout, files this module writes, a live pull) is kept: drafts and discarded answers
are stored apart (label kind `held`), never trained on.

Export writes the to_disk layout with the same fields and questions, every standing answer as a response
(with its status), and the task's model reply as a suggestion, so `rg.Dataset.from_disk(path, client=...)`
loads it. Annotators who did not come from Argilla get a stable UUID, and `workbench_users.json` beside
the records maps it back to their name, so import -> export -> import gives the same labels.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from workbench.store.rules import content_id, item_id

USERS_FILE = "workbench_users.json"
PROMPT_NAMES = ("prompt", "instruction", "input", "question", "query", "text", "chat", "messages", "conversation")
USER_NAMESPACE = uuid.UUID("6f1c2a52-5d0e-4b8e-9a57-7c1f0b2f6a11")  # annotator name -> stable Argilla user id
STATUSES = ("submitted", "draft", "discarded")


class ArgillaFormatError(Exception):
    """A folder that is not an Argilla dataset, or one whose records do not fit its settings."""


@dataclass
class Question:
    name: str
    type: str  # text | rating | label_selection | multi_label_selection | ranking | span
    options: list = field(default_factory=list)
    required: bool = True


@dataclass
class Response:
    question: str
    value: object
    user: str
    status: str | None


@dataclass
class Record:
    id: str
    where: str  # "records.json, record 3 (id 'r3')": for error messages
    fields: dict
    responses: list[Response]
    suggestions: dict


@dataclass
class Dataset:
    name: str
    layout: str  # "to_disk" | "hub"
    settings: dict  # .argilla/settings.json as Argilla wrote it
    fields: list[dict]  # {"name", "type"}
    questions: list[Question]
    records: list[Record]
    file_hash: str
    users: dict[str, str]  # Argilla user id -> annotator name

    @property
    def min_submitted(self) -> int:
        return int(((self.settings.get("distribution") or {}).get("min_submitted")) or 1)


# ---------------------------------------------------------------------------------------------- reading
def _load_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArgillaFormatError(f"{path}: missing ({what})") from None
    except UnicodeDecodeError as exc:
        raise ArgillaFormatError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ArgillaFormatError(f"{path}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None


def _hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.name).encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _settings(folder: Path, required: bool) -> tuple[dict | None, list[dict], list[Question]]:
    path = folder / ".argilla" / "settings.json"
    if not path.exists():
        if required:
            raise ArgillaFormatError(f"{path}: missing (Argilla's to_disk writes it beside records.json)")
        return None, [], []
    settings = _load_json(path, "dataset settings")
    if not isinstance(settings, dict) or not isinstance(settings.get("fields"), list) \
            or not isinstance(settings.get("questions"), list):
        raise ArgillaFormatError(f"{path}: expected an object with 'fields' and 'questions' lists")
    fields, questions = [], []
    for n, raw in enumerate(settings["fields"], 1):
        if not isinstance(raw, dict) or not raw.get("name"):
            raise ArgillaFormatError(f"{path}: field {n} has no name")
        kind = raw.get("type") or (raw.get("settings") or {}).get("type")
        fields.append({"name": raw["name"], "type": kind, "required": raw.get("required", True)})
    for n, raw in enumerate(settings["questions"], 1):
        if not isinstance(raw, dict) or not raw.get("name"):
            raise ArgillaFormatError(f"{path}: question {n} has no name")
        conf = raw.get("settings") or {}
        kind = raw.get("type") or conf.get("type")
        if kind not in ("text", "rating", "label_selection", "multi_label_selection", "ranking", "span"):
            raise ArgillaFormatError(f"{path}: question {raw['name']!r} has unknown type {kind!r}")
        options = [o.get("value") for o in conf.get("options") or [] if isinstance(o, dict)]
        questions.append(Question(raw["name"], kind, options, bool(raw.get("required", True))))
    return settings, fields, questions


def _users_from(path: Path) -> dict[str, str]:
    """Argilla user ids -> names, from {id: name} or the Argilla users API's [{"id", "username"}]."""
    data = _load_json(path, "user names")
    if isinstance(data, list):
        data = {str(u.get("id")): u.get("username") for u in data if isinstance(u, dict)}
    if not isinstance(data, dict) or not all(isinstance(v, str) and v for v in data.values()):
        raise ArgillaFormatError(f"{path}: expected {{user id: name}} or [{{\"id\", \"username\"}}]")
    return {str(k): v for k, v in data.items()}


def _users(folder: Path, users_file: str | Path | None) -> dict[str, str]:
    """The names an export of ours wrote beside the records, then the user's own map (which wins)."""
    users = _users_from(folder / USERS_FILE) if (folder / USERS_FILE).exists() else {}
    if users_file:
        if not Path(users_file).exists():
            raise ArgillaFormatError(f"{users_file}: no such users file")
        users.update(_users_from(Path(users_file)))
    return users


def read_dataset(path: str | Path, *, users_file: str | Path | None = None) -> Dataset:
    """Read an Argilla dataset folder in either layout, checking every record against the settings."""
    folder = Path(path)
    if not folder.is_dir():
        raise ArgillaFormatError(f"{folder}: not a folder (an Argilla dataset is a folder: to_disk or to_hub)")
    meta_path = folder / ".argilla" / "dataset.json"
    meta = _load_json(meta_path, "dataset model") if meta_path.exists() else {}
    name = (meta.get("name") if isinstance(meta, dict) else None) or folder.name
    users = _users(folder, users_file)
    if (folder / "records.json").exists():
        settings, fields, questions = _settings(folder, required=True)
        records, files = _disk_records(folder / "records.json"), [folder / "records.json"]
        layout = "to_disk"
    else:
        rows, files = _hub_rows(folder)
        settings, fields, questions = _settings(folder, required=False)
        if settings is None:
            raise ArgillaFormatError(
                f"{folder}: no .argilla/settings.json beside the data. Argilla's to_hub uploads it with the records; "
                "download the whole dataset repository (not only its data files) so the questions' types are known")
        records = _hub_records(rows, questions)
        layout = "hub"
    files.append(folder / ".argilla" / "settings.json")
    dataset = Dataset(name=str(name), layout=layout, settings=settings, fields=fields, questions=questions,
                      records=records, file_hash=_hash_files(files), users=users)
    _check_records(dataset)
    return dataset


def _disk_records(path: Path) -> list[Record]:
    data = _load_json(path, "records")
    if not isinstance(data, list):
        raise ArgillaFormatError(f"{path}: expected a list of records, got {type(data).__name__}")
    records = []
    for n, raw in enumerate(data, 1):
        where = f"{path.name}, record {n}"
        if not isinstance(raw, dict) or not isinstance(raw.get("fields"), dict):
            raise ArgillaFormatError(f"{where}: expected an object with a 'fields' object")
        rid = str(raw["id"]) if raw.get("id") is not None else f"record-{n}"
        where += f" (id {rid!r})"
        responses = []
        for question, answers in (raw.get("responses") or {}).items():
            if not isinstance(answers, list):
                raise ArgillaFormatError(f"{where}: responses of {question!r} should be a list")
            for answer in answers:
                if not isinstance(answer, dict) or "value" not in answer:
                    raise ArgillaFormatError(f"{where}: a response to {question!r} has no 'value'")
                responses.append(Response(question, answer["value"], answer.get("user_id"), answer.get("status")))
        suggestions = raw.get("suggestions") or {}
        if not isinstance(suggestions, dict):
            raise ArgillaFormatError(f"{where}: 'suggestions' should be an object")
        records.append(Record(rid, where, raw["fields"], responses, suggestions))
    return records


def _hub_rows(folder: Path) -> tuple[list[dict], list[Path]]:
    """The flattened rows of a to_hub dataset saved locally: parquet files, or a save_to_disk folder."""
    parquet = sorted(folder.glob("data/**/*.parquet")) or sorted(folder.glob("*.parquet"))
    if parquet:
        import pyarrow.parquet as pq

        rows: list[dict] = []
        for file in parquet:
            try:
                rows += pq.read_table(file).to_pylist()
            except Exception as exc:  # pyarrow raises several types for a broken file
                raise ArgillaFormatError(f"{file}: not a readable Parquet file ({exc})") from None
        return rows, parquet
    if (folder / "state.json").exists() and (folder / "dataset_info.json").exists():
        from datasets import load_from_disk

        files = sorted(folder.glob("*.arrow"))
        try:
            return load_from_disk(str(folder)).to_list(), files
        except Exception as exc:
            raise ArgillaFormatError(f"{folder}: not a readable datasets folder ({exc})") from None
    raise ArgillaFormatError(
        f"{folder}: not an Argilla dataset: no records.json (Dataset.to_disk) and no Parquet or datasets files "
        "(Dataset.to_hub, saved locally)")


def _hub_records(rows: list[dict], questions: list[Question]) -> list[Record]:
    names = {q.name for q in questions}
    records = []
    for n, row in enumerate(rows, 1):
        rid = str(row["id"]) if row.get("id") is not None else f"record-{n}"
        where = f"row {n} (id {rid!r})"
        fields = {k: v for k, v in row.items()
                  if "." not in k and k not in ("id", "status", "_server_id") and k not in names}
        responses, suggestions = [], {}
        for question in names:
            values = row.get(f"{question}.responses")
            if values:
                users = row.get(f"{question}.responses.users") or []
                status = row.get(f"{question}.responses.status") or [None] * len(values)
                if len(users) != len(values) or len(status) != len(values):
                    raise ArgillaFormatError(f"{where}: {question}.responses, .users and .status differ in length")
                responses += [Response(question, v, u, s) for v, u, s in zip(values, users, status, strict=True)]
            if row.get(f"{question}.suggestion") is not None:
                suggestions[question] = {"value": row[f"{question}.suggestion"],
                                         "score": row.get(f"{question}.suggestion.score"),
                                         "agent": row.get(f"{question}.suggestion.agent")}
        records.append(Record(rid, where, fields, responses, suggestions))
    return records


def _check_records(dataset: Dataset) -> None:
    """Every response names a known question and a user, has a known status, and fits its question."""
    questions = {q.name: q for q in dataset.questions}
    for record in dataset.records:
        for r in record.responses:
            q = questions.get(r.question)
            if q is None:
                raise ArgillaFormatError(f"{record.where}: a response to {r.question!r}, which is not a question "
                                         f"of this dataset ({', '.join(questions) or 'none'})")
            if not r.user:
                raise ArgillaFormatError(f"{record.where}: a response to {r.question!r} has no user_id")
            if r.status is not None and r.status not in STATUSES:
                raise ArgillaFormatError(f"{record.where}: response status {r.status!r} (expected one of "
                                         f"{', '.join(STATUSES)})")
            if r.value is None and r.status != "discarded":
                raise ArgillaFormatError(f"{record.where}: a {r.status or 'submitted'} response to {r.question!r} "
                                         "has no value")
            if r.value is not None:
                problem = _value_problem(q, r.value)
                if problem:
                    raise ArgillaFormatError(f"{record.where}: {q.type} question {q.name!r}, user {r.user}: {problem}")


def _value_problem(q: Question, value) -> str | None:
    if q.type == "text":
        return None if isinstance(value, str) else f"expected text, got {type(value).__name__}"
    if q.type in ("rating", "label_selection"):
        return None if value in q.options else f"{value!r} is not one of its options {q.options}"
    if q.type == "multi_label_selection":
        if not isinstance(value, list) or any(v not in q.options for v in value):
            return f"{value!r} should be a list of its options {q.options}"
        return None
    if q.type == "ranking":
        if not isinstance(value, list) or not all(isinstance(v, dict) and "value" in v for v in value):
            return "expected a list of {\"value\", \"rank\"} objects"
        unknown = [v["value"] for v in value if v["value"] not in q.options]
        if unknown:
            return f"{unknown[0]!r} is not one of its options {q.options}"
        if len({v["value"] for v in value}) != len(value):
            return "an option is ranked twice"
        if any(v.get("rank") is not None and not isinstance(v["rank"], int) for v in value):
            return "ranks must be whole numbers"
        return None
    return None  # spans: kept as they are


# ---------------------------------------------------------------------------------------------- planning
@dataclass
class Plan:
    """How a dataset maps onto a task: which field is the prompt, which fields are the responses, which
    question is the task's own (its answers fill the queue), and the task's kind."""

    kind: str  # pairwise | ranking | demonstration
    main: Question
    prompt_field: str
    response_fields: list[str]
    draft_field: str | None = None


def plan(dataset: Dataset, prompt_field: str | None = None) -> Plan:
    fields = {f["name"]: f for f in dataset.fields}
    ranking = next((q for q in dataset.questions if q.type == "ranking"), None)
    text = next((q for q in dataset.questions if q.type == "text"), None)
    if ranking is None and text is None:
        raise ArgillaFormatError(
            f"dataset {dataset.name!r} has no ranking and no text question: a workbench task ranks responses or "
            f"writes one (its questions: {', '.join(f'{q.name} ({q.type})' for q in dataset.questions) or 'none'})")
    responses = [o for o in ranking.options if o in fields] if ranking else []
    if ranking and len(responses) != len(ranking.options):
        missing = [o for o in ranking.options if o not in fields]
        raise ArgillaFormatError(f"ranking question {ranking.name!r} ranks {missing}, which are not fields: the "
                                 "workbench ranks the texts of the dataset's fields")
    if prompt_field is not None:
        if prompt_field not in fields:
            raise ArgillaFormatError(f"--prompt-field {prompt_field!r}: the dataset's fields are {', '.join(fields)}")
        prompt = prompt_field
    else:
        mapping = dataset.settings.get("mapping") or {}
        candidates = [f for f in fields if f not in responses]
        mapped = next((v for k, v in mapping.items() if k in ("prompt", "input") and v in candidates), None)
        prompt = mapped or next((f for f in candidates if fields[f]["type"] == "chat"), None) \
            or next((f for f in candidates if f.lower() in PROMPT_NAMES), None) \
            or (candidates[0] if candidates else None)
        if prompt is None:
            raise ArgillaFormatError("no field is left for the prompt: name it with --prompt-field")
    if prompt in responses:
        raise ArgillaFormatError(f"field {prompt!r} cannot be both the prompt and a ranked response")
    if ranking:
        kind = "pairwise" if len(responses) == 2 else "ranking"
        return Plan(kind, ranking, prompt, responses)
    draft = next((f for f in fields if f != prompt and fields[f]["type"] in ("text", "chat")), None)
    return Plan("demonstration", text, prompt, [], draft)


def _messages(value, where: str, name: str) -> tuple[str | None, list[dict]]:
    """A prompt field's value as (system prompt, turns): a text is one user turn, a chat is its messages."""
    if isinstance(value, str):
        if not value.strip():
            raise ArgillaFormatError(f"{where}: prompt field {name!r} is empty")
        return None, [{"role": "user", "content": value}]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        turns = [{"role": str(m.get("role", "user")), "content": str(m["content"])} for m in value]
        system = None
        if turns[0]["role"] == "system":
            system, turns = turns[0]["content"], turns[1:]
        if not turns or turns[-1]["role"] != "user":
            raise ArgillaFormatError(f"{where}: chat field {name!r} should end with a user turn to be a prompt")
        return system, turns
    raise ArgillaFormatError(f"{where}: prompt field {name!r} is neither text nor a chat "
                             f"(got {type(value).__name__})")


def _text(value, where: str, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
        return str(value[-1]["content"])  # a chat field as a response: its last turn
    raise ArgillaFormatError(f"{where}: field {name!r} should be text (got {type(value).__name__})")


@dataclass
class ImportReport:
    task: str
    kind: str
    records: int
    added: dict
    by_status: dict
    without_status: int
    skipped: dict

    def summary(self) -> str:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.by_status.items())) or "none"
        lines = [f"task {self.task!r} ({self.kind}): {self.records} records -> added {self.added['prompts']} prompts, "
                 f"{self.added['responses']} responses, {self.added['labels']} labels",
                 f"responses: {statuses}"]
        if self.without_status:
            lines.append(f"{self.without_status} responses carry no status (Argilla's to_disk does not write it) "
                         "and were counted as submitted")
        lines += [f"skipped {n} records: {why}" for why, n in self.skipped.items()]
        return "\n".join(lines)


def to_task(dataset: Dataset, the_plan: Plan, task_name: str) -> tuple[dict, list[dict], list[dict], ImportReport]:
    """The task, its items and labels as `store_rows` reads them, and what they hold.

    `items`: external_id, system, messages, responses (texts, in the item's order), draft (text or None).
    `labels`: item (index into items), kind, question, annotator, status, payload, and by kind: chosen /
    rejected / outcome (indexes into the item's responses), ranking (indexes, best first), response
    (index), text (a written answer)."""
    questions = {q.name: q for q in dataset.questions}
    items: list[dict] = []
    labels: list[dict] = []
    by_status: dict[str, int] = {}
    skipped: dict[str, int] = {}
    without_status = 0
    for record in dataset.records:
        if the_plan.prompt_field not in record.fields:
            raise ArgillaFormatError(f"{record.where}: no prompt field {the_plan.prompt_field!r}")
        system, turns = _messages(record.fields[the_plan.prompt_field], record.where, the_plan.prompt_field)
        texts = {f: _text(record.fields.get(f), record.where, f) for f in the_plan.response_fields}
        present = [f for f in the_plan.response_fields if texts[f] is not None]
        if the_plan.kind != "demonstration" and len(present) < 2:
            if any(r.question == the_plan.main.name for r in record.responses):
                raise ArgillaFormatError(f"{record.where}: ranked, but fewer than two of "
                                         f"{the_plan.response_fields} have text")
            skipped["fewer than two responses to rank"] = skipped.get("fewer than two responses to rank", 0) + 1
            continue
        if the_plan.kind == "pairwise" and len(present) != 2:
            raise ArgillaFormatError(f"{record.where}: a pairwise record needs both {the_plan.response_fields}")
        draft = _text(record.fields.get(the_plan.draft_field), record.where, the_plan.draft_field) \
            if the_plan.draft_field else None
        if draft is None and isinstance((record.suggestions.get(the_plan.main.name) or {}).get("value"), str) \
                and the_plan.kind == "demonstration":
            draft = record.suggestions[the_plan.main.name]["value"] or None
        index = len(items)
        items.append({"external_id": record.id, "system": system, "messages": turns,
                      "responses": [texts[f] for f in present], "draft": draft})
        single = 0 if len(present) == 1 else None  # a rating of a record with one response rates that response
        for r in record.responses:
            status = r.status or "submitted"
            without_status += r.status is None
            by_status[status] = by_status.get(status, 0) + 1
            annotator = dataset.users.get(str(r.user)) or f"argilla:{r.user}"
            label = {"item": index, "question": r.question, "annotator": annotator}
            q = questions[r.question]
            if status != "submitted":
                labels.append(label | {"kind": "held", "payload": {"status": status, "type": q.type,
                                                                   "value": r.value}})
            elif q.name == the_plan.main.name and q.type == "ranking":
                labels.append(label | _ranking_label(r.value, present, record.where, q.name))
            elif q.name == the_plan.main.name:
                if not r.value.strip():
                    raise ArgillaFormatError(f"{record.where}: an empty submitted answer to {q.name!r}")
                labels.append(label | {"kind": "demonstration", "text": r.value})
            elif q.type == "rating":
                labels.append(label | {"kind": "rating", "response": single, "payload": {"value": r.value}})
            elif q.type == "text":
                labels.append(label | {"kind": "text", "payload": {"value": r.value}})
            else:
                labels.append(label | {"kind": "label", "payload": {"type": q.type, "value": r.value}})
    task = {"name": task_name, "kind": the_plan.kind, "overlap": dataset.min_submitted,
            "guidelines": dataset.settings.get("guidelines") or "",
            "selection": {"origin": f"argilla:{dataset.name}",
                          "argilla": {"dataset": dataset.name, "layout": dataset.layout, "settings": dataset.settings,
                                      "prompt_field": the_plan.prompt_field,
                                      "response_fields": the_plan.response_fields,
                                      "draft_field": the_plan.draft_field, "question": the_plan.main.name}}}
    report = ImportReport(task_name, the_plan.kind, len(items), {}, by_status, without_status, skipped)
    return task, items, labels, report


def _ranking_label(value: list[dict], present: list[str], where: str, question: str) -> dict:
    """A ranking answer over the item's responses: a preference for two, an ordered ranking for more.
    Equal ranks are ties (Argilla allows them): a tie of two is outcome 'tie', and a longer ranking keeps
    its ranks so the export pairs tied responses as ties, not as a win."""
    ranks = {v["value"]: v.get("rank") for v in value}
    if any(ranks.get(f) is None for f in present):
        raise ArgillaFormatError(f"{where}: ranking {question!r} leaves out {[f for f in present if ranks.get(f) is None]}")
    order = sorted(range(len(present)), key=lambda i: (ranks[present[i]], i))
    if len(present) == 2:
        first, second = order
        tie = ranks[present[first]] == ranks[present[second]]
        return {"kind": "preference", "chosen": first, "rejected": second, "outcome": "tie" if tie else "chosen"}
    label = {"kind": "ranking", "ranking": order}
    if len(set(ranks[f] for f in present)) < len(present):
        label["payload"] = {"ranks": [ranks[present[i]] for i in order]}
    return label


def store_rows(task_id: str, items: list[dict], labels: list[dict],
               prompt_ids: list[str]) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """The response, item and label rows `Store.import_task` stores for a dataset's items and labels.

    Every id is a content hash (the store's rules), so the same dataset imported twice gives the same rows:
    a record keeps its Argilla id as the item's external id (and its item id), and a label's id hashes
    everything it says, so a changed answer is a new label that supersedes the old one.
    """
    response_rows: list[tuple] = []
    item_rows: list[tuple] = []
    for n, (item, prompt_id) in enumerate(zip(items, prompt_ids, strict=True)):
        ids = [content_id(prompt_id, text) for text in item["responses"]]
        response_rows += [(rid, prompt_id, text, "import", None, n + 1)
                          for rid, text in zip(ids, item["responses"], strict=True)]
        draft = content_id(prompt_id, item["draft"]) if item.get("draft") else None
        if draft:
            response_rows.append((draft, prompt_id, item["draft"], "import", None, n + 1))
        the_id = item_id(task_id, prompt_id, ids) if not item["external_id"] else \
            content_id(task_id, "external", item["external_id"])[:16]
        item_rows.append((the_id, n + 1, prompt_id, ids, draft, item["external_id"]))
    label_rows: list[tuple] = []
    for label in labels:
        the_id, _, prompt_id, ids, _, external_id = item_rows[label["item"]]
        response_id = None
        if label.get("text") is not None:  # a written answer is a person's response to the prompt
            response_id = content_id(prompt_id, label["text"])
            response_rows.append((response_id, prompt_id, label["text"], "person", label["annotator"],
                                  label["item"] + 1))
        elif label.get("response") is not None:
            response_id = ids[label["response"]]
        chosen = ids[label["chosen"]] if label.get("chosen") is not None else None
        rejected = ids[label["rejected"]] if label.get("rejected") is not None else None
        ranking = [ids[i] for i in label["ranking"]] if label.get("ranking") is not None else None
        payload = {"question": label["question"], **label.get("payload", {})}
        label_id = "lbl-" + content_id("import", task_id, external_id or the_id, label["question"],
                                       label["annotator"], label["kind"], json.dumps(payload, sort_keys=True),
                                       response_id or "", chosen or "", rejected or "", label.get("outcome") or "",
                                       ",".join(ranking or []))
        label_rows.append((label_id, label["kind"], prompt_id, response_id, chosen, rejected, label.get("outcome"),
                           ranking, json.dumps(payload), label["annotator"], label["item"] + 1, task_id, the_id,
                           label["question"]))
    return response_rows, item_rows, label_rows


def import_dataset(store, path: str | Path, *, task: str | None = None, prompt_field: str | None = None,
                   users_file: str | Path | None = None, tags: list[str] | None = None) -> ImportReport:
    """Read, check and plan first; then store the whole dataset in one transaction (or nothing)."""
    dataset = read_dataset(path, users_file=users_file)
    the_plan = plan(dataset, prompt_field)
    task_row, items, labels, report = to_task(dataset, the_plan, task or dataset.name)
    if not items:
        raise ArgillaFormatError(f"{path}: no records to import")
    prompts = [(i["system"], i["messages"]) for i in items]
    responses, item_rows, label_rows = store_rows(f"task-{task_row['name']}", items, labels,
                                                  store.prompt_ids(prompts))
    added = store.import_task(task=task_row, prompts=prompts, responses=responses, items=item_rows,
                              labels=label_rows, path=str(Path(path).resolve()), file_hash=dataset.file_hash,
                              fmt=f"argilla-{dataset.layout}", tags=tags)
    report.added = added
    return report


# ---------------------------------------------------------------------------------------------- export
def _field(name: str, kind: str, required: bool = True) -> dict:
    return {"id": None, "inserted_at": None, "updated_at": None, "name": name,
            "settings": {"type": kind, "use_markdown": kind == "chat"}, "title": name, "required": required,
            "description": None, "dataset_id": None, "type": kind}


def _question(name: str, kind: str, settings: dict, required: bool = True) -> dict:
    return {"id": None, "inserted_at": None, "updated_at": None, "name": name, "settings": {"type": kind, **settings},
            "title": name, "description": None, "required": required, "dataset_id": None, "type": kind}


def _native_layout(task: dict, items: list[dict]) -> dict:
    """Settings and field mapping for a task made in the workbench: a `prompt` field (chat when any item
    has a system prompt or several turns), `response1..N` and a `ranking` question, or a `response` text
    question for demonstrations (Argilla's own ranking and SFT templates use the same shapes)."""
    chat = any(i["system"] or len(i["messages"]) > 1 for i in items)
    fields = [_field("prompt", "chat" if chat else "text")]
    if task["kind"] == "demonstration":
        responses: list[str] = []
        questions = [_question("response", "text", {"use_markdown": False})]
    else:
        n = max([len(i["responses"]) for i in items] + [2])
        responses = [f"response{k}" for k in range(1, n + 1)]
        fields += [_field(name, "text", required=k < 2) for k, name in enumerate(responses)]
        questions = [_question("ranking", "ranking", {"options": [{"text": r, "value": r} for r in responses]})]
    settings = {"guidelines": task["guidelines"] or None, "questions": questions, "fields": fields, "vectors": [],
                "metadata": [], "allow_extra_metadata": False,
                "distribution": {"strategy": "overlap", "min_submitted": task["overlap"]}, "mapping": None}
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
    if task["kind"] == "review":
        raise ArgillaFormatError(f"{task_name!r} is a blind A/B review: export it as a dataset "
                                 "(workbench export) rather than as an Argilla ranking")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ArgillaFormatError(f"{out}: exists and is not empty (Argilla's to_disk also wants an empty folder)")
    known = {name: uid for uid, name in _users(out, users_file).items()} if users_file else {}
    items, labels = store.task_export_rows(task["id"])
    origin = task["selection"].get("argilla")
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
        suggestion = replies.get(item["prompt_id"]) or (item["draft"] if task["kind"] == "demonstration" else None)
        suggestions = {}
        if suggestion and layout["question"] in {q["name"] for q in layout["settings"]["questions"]
                                                  if (q.get("type") or q["settings"]["type"]) == "text"}:
            suggestions[layout["question"]] = {"value": suggestion, "score": None, "agent": version or "workbench"}
            n_suggestions += 1
        records.append({"id": item["external_id"] or item["id"], "fields": fields, "metadata": {},
                        "suggestions": suggestions, "responses": responses, "vectors": {},
                        "status": "completed" if item["answers"] >= task["overlap"] else "pending",
                        "_server_id": None})
    (out / ".argilla").mkdir(parents=True, exist_ok=True)
    (out / ".argilla" / "settings.json").write_text(json.dumps(layout["settings"]), encoding="utf-8")
    (out / ".argilla" / "dataset.json").write_text(json.dumps(
        {"id": None, "inserted_at": None, "updated_at": None, "name": (origin or {}).get("dataset") or task["name"],
         "status": "draft", "guidelines": None, "allow_extra_metadata": True, "distribution": None,
         "workspace_id": None, "last_activity_at": None}), encoding="utf-8")
    (out / "records.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    if users:
        (out / USERS_FILE).write_text(json.dumps(users, indent=1, sort_keys=True), encoding="utf-8")
    return ExportReport(str(out), len(records), n_responses, n_suggestions, len(users))
