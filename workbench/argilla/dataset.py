"""An Argilla dataset as Argilla's SDK writes it (to_disk and to_hub layouts), read and checked."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import WorkbenchError

USERS_FILE = "workbench_users.json"
PROMPT_NAMES = ("prompt", "instruction", "input", "question", "query", "text", "chat", "messages", "conversation")
USER_NAMESPACE = uuid.UUID("6f1c2a52-5d0e-4b8e-9a57-7c1f0b2f6a11")  # annotator name -> stable Argilla user id
STATUSES = ("submitted", "draft", "discarded")


class ArgillaFormatError(WorkbenchError):
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


def users_of(folder: Path, users_file: str | Path | None) -> dict[str, str]:
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
    users = users_of(folder, users_file)
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
