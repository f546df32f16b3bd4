"""An Argilla dataset as a labeling task: plan which fields and question it uses, shape items and labels into
the store's rows (content ids), and store it in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.argilla.dataset import PROMPT_NAMES, ArgillaFormatError, Dataset, Question, read_dataset
from workbench.store.rules import content_id, item_id


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
