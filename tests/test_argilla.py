"""Argilla interop on fixtures written by hand in Argilla 2.8's own layouts (tests/fixtures/argilla): import
as a task, the labels that come out, round trips, the SDK reading our export, bad folders, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.argilla import USERS_FILE, ArgillaFormatError, export_task, import_dataset
from workbench.cli import main as cli
from workbench.exporters import export
from workbench.store import ExportFilters, Store

FIXTURES = Path(__file__).parent / "fixtures" / "argilla"
RANKING = FIXTURES / "ranking_to_disk"
USERS = RANKING / "users.json"
ALICE, BRUNO, CARA = (f"00000000-0000-4000-8000-00000000000{c}" for c in "abc")


def labels_of(store: Store, task: str) -> list[tuple]:
    """Every standing label of a task by content: (record id, question, who, kind, outcome, chosen text,
    rejected text, ranking texts, response text, payload value, ranks, status); store ids left out."""
    con = store.cursor()
    text = dict(con.execute("SELECT id, text FROM responses").fetchall())
    rows = con.execute(
        """SELECT i.external_id, json_extract_string(l.payload, '$.question'), l.annotator, l.kind, l.outcome,
                  l.chosen_id, l.rejected_id, l.ranking, l.response_id, json_extract(l.payload, '$.value')::VARCHAR,
                  json_extract(l.payload, '$.ranks')::VARCHAR, json_extract_string(l.payload, '$.status')
           FROM labels l JOIN task_items i ON i.task_id = l.task_id AND i.id = l.item_id
           WHERE l.task_id = ? AND NOT EXISTS (SELECT 1 FROM labels s WHERE s.supersedes = l.id)""",
        [f"task-{task}"]).fetchall()
    out = [(r[0], r[1], r[2], r[3], r[4], text.get(r[5]), text.get(r[6]),
            [text[x] for x in r[7]] if r[7] is not None else None, text.get(r[8]), r[9], r[10], r[11])
           for r in rows]
    return sorted(out, key=repr)


def exported_pairs(store: Store, out: Path) -> list[dict]:
    export(store, kind="preferences", out_dir=out, style="standard", filters=ExportFilters())
    return [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]


def test_a_to_disk_ranking_becomes_a_pairwise_task_with_each_user_as_annotator(store, tmp_path):
    report = import_dataset(store, RANKING, users_file=USERS)
    assert (report.task, report.kind, report.records) == ("support-replies", "pairwise", 4)
    assert report.added == {"task": "support-replies", "task_id": "task-support-replies", "items": 4,
                            "prompts": 4, "responses": 8, "labels": 9}
    assert report.by_status == {"submitted": 7, "draft": 1, "discarded": 1}
    assert report.without_status == 7  # Argilla's to_disk writes no status; the summary says so
    assert "counted as submitted" in report.summary()

    task = store.task("support-replies")
    assert (task.kind, task.overlap) == ("pairwise", 2)  # overlap = Argilla's min_submitted
    assert task.guidelines.startswith("Rank the two replies")
    labels = {(r[0], r[1], r[2]): r[3:] for r in labels_of(store, "support-replies")}
    good = "I'm so sorry to hear that. Your first screen repair is free under Screen Care."
    assert labels[("rec-1", "ranking", "alice")][:4] == ("preference", "chosen", good, "Buy a new phone.")
    assert labels[("rec-1", "ranking", "bruno")][:2] == ("preference", "chosen")
    assert labels[("rec-2", "ranking", "bruno")][:2] == ("preference", "tie")  # equal ranks
    assert labels[("rec-1", "quality", "alice")][0] == "rating" and labels[("rec-1", "quality", "alice")][6] == "4"
    assert labels[("rec-1", "topic", "bruno")][0] == "label"
    assert labels[("rec-2", "corrected", "alice")][0] == "text"
    # drafts and discarded answers are kept apart: stored, but no answer in the queue and never trained on
    assert labels[("rec-3", "ranking", "bruno")][0] == "held"
    assert labels[("rec-3", "ranking", "bruno")][8] == "draft"
    assert labels[("rec-3", "ranking", f"argilla:{CARA}")][8] == "discarded"
    answers = dict(store.cursor().execute("SELECT external_id, answers FROM task_items").fetchall())
    assert answers == {"rec-1": 2, "rec-2": 2, "rec-3": 0, "rec-4": 0}

    # Training data: rec-1 is won 2-0; rec-2 split 1 win / 1 tie has no majority and is left out.
    pairs = exported_pairs(store, tmp_path / "pairs")
    assert pairs == [{"prompt": "My phone screen cracked. What can I do?", "chosen": good,
                      "rejected": "Buy a new phone."}]


def test_users_without_a_name_keep_their_argilla_id(store):
    import_dataset(store, RANKING)
    annotators = {r[0] for r in store.cursor().execute("SELECT DISTINCT annotator FROM labels").fetchall()}
    assert annotators == {f"argilla:{ALICE}", f"argilla:{BRUNO}", f"argilla:{CARA}"}


def test_importing_again_adds_nothing_and_a_changed_answer_supersedes_the_old_one(store, tmp_path):
    import_dataset(store, RANKING, users_file=USERS)
    before = store.dump()
    again = import_dataset(store, RANKING, users_file=USERS)
    assert again.added | {"items": 0} == {"task": "support-replies", "task_id": "task-support-replies", "items": 0,
                                          "prompts": 0, "responses": 0, "labels": 0}
    assert store.dump() == before

    changed = tmp_path / "changed"
    shutil.copytree(RANKING, changed)
    records = json.loads((changed / "records.json").read_text())
    records[0]["responses"]["ranking"][0]["value"] = [{"value": "response2", "rank": 1},
                                                      {"value": "response1", "rank": 2}]  # alice changes her mind
    records[2]["responses"]["ranking"][0]["status"] = "submitted"  # bruno submits his draft
    (changed / "records.json").write_text(json.dumps(records))
    report = import_dataset(store, changed, users_file=USERS, task="support-replies")
    assert report.added["labels"] == 2
    labels = {(r[0], r[1], r[2]): r[3:] for r in labels_of(store, "support-replies")}
    assert labels[("rec-1", "ranking", "alice")][:3] == ("preference", "chosen", "Buy a new phone.")
    assert labels[("rec-3", "ranking", "bruno")][:2] == ("preference", "chosen")  # the draft no longer stands
    answers = dict(store.cursor().execute("SELECT external_id, answers FROM task_items").fetchall())
    assert answers == {"rec-1": 2, "rec-2": 2, "rec-3": 1, "rec-4": 0}


@pytest.mark.parametrize("fixture,task,users", [(RANKING, "support-replies", USERS),
                                                (FIXTURES / "chat_sft_to_disk", "write-replies", None)])
def test_import_export_import_gives_the_same_labels(tmp_path, fixture, task, users):
    with Store.open(tmp_path / "a.duckdb", create=True) as first:
        import_dataset(first, fixture, users_file=users)
        export_task(first, task, tmp_path / "out")
        expected = labels_of(first, task)
    with Store.open(tmp_path / "b.duckdb", create=True) as second:
        report = import_dataset(second, tmp_path / "out")
        assert report.without_status == 0  # our export writes every response's status
        assert labels_of(second, task) == expected
        assert second.task(task).overlap == first_overlap(fixture)


def first_overlap(fixture: Path) -> int:
    settings = json.loads((fixture / ".argilla" / "settings.json").read_text())
    return settings["distribution"]["min_submitted"]


def test_chat_prompts_keep_their_system_prompt_and_turns_and_written_answers_are_demonstrations(store, tmp_path):
    report = import_dataset(store, FIXTURES / "chat_sft_to_disk")
    assert report.kind == "demonstration"
    rows = store.cursor().execute(
        "SELECT p.system, len(p.messages), r.text FROM labels l JOIN prompts p ON p.id = l.prompt_id "
        "JOIN responses r ON r.id = l.response_id WHERE l.kind = 'demonstration' ORDER BY 2").fetchall()
    assert rows[0][0] == "You are Loki Electronics' support agent." and rows[0][1] == 1
    assert rows[1][0] is None and rows[1][1] == 3
    assert rows[1][2].startswith("Of course! You can change the address")
    export(store, kind="sft", out_dir=tmp_path / "sft", style="conversational", filters=ExportFilters())
    assert len((tmp_path / "sft" / "train.jsonl").read_text().splitlines()) == 2  # the draft is not trained on
    # the model's reply (a field) or Argilla's suggestion becomes the item's draft, as the workbench pre-fills it
    drafts = store.cursor().execute("SELECT i.external_id, d.text FROM task_items i JOIN responses d "
                                    "ON d.id = i.draft_response_id ORDER BY 1").fetchall()
    assert drafts == [("c-1", "Try charging it."), ("c-2", "Yes, you can change it until the order ships.")]


HUB_ROWS = [  # Argilla's flattened columns, as Dataset.to_hub / records.to_datasets() write them
    {"id": "h-1", "status": "completed", "_server_id": None, "prompt": "Is the battery covered by warranty?",
     "reply_a": "Yes, for two years.", "reply_b": "I'm glad you asked! Batteries are covered for two years.",
     "reply_c": "No.",
     "rank.responses": [[{"value": "reply_b", "rank": 1}, {"value": "reply_a", "rank": 2},
                         {"value": "reply_c", "rank": 3}],
                        [{"value": "reply_b", "rank": 1}, {"value": "reply_a", "rank": 1},
                         {"value": "reply_c", "rank": 2}]],
     "rank.responses.users": [ALICE, BRUNO], "rank.responses.status": ["submitted", "submitted"],
     "tags.responses": [["wrong"]], "tags.responses.users": [ALICE], "tags.responses.status": ["draft"],
     "tags.suggestion": None, "tags.suggestion.score": None, "tags.suggestion.agent": None},
    {"id": "h-2", "status": "pending", "_server_id": None, "prompt": "Can I pay in instalments?",
     "reply_a": "Sure.", "reply_b": "Of course! Pay in 3 instalments at no cost.", "reply_c": "Ask the bank.",
     "rank.responses": [[{"value": "reply_a", "rank": 1}, {"value": "reply_b", "rank": 1},
                         {"value": "reply_c", "rank": 2}]],
     "rank.responses.users": [BRUNO], "rank.responses.status": ["submitted"],
     "tags.responses": None, "tags.responses.users": None, "tags.responses.status": None,
     "tags.suggestion": ["rude"], "tags.suggestion.score": 0.4, "tags.suggestion.agent": "classifier"},
]


def hub_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "rank-three"
    shutil.copytree(FIXTURES / "ranking3_hub", folder)
    (folder / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(HUB_ROWS), folder / "data" / "train-00000-of-00001.parquet")
    return folder


def test_a_hub_ranking_of_three_keeps_ties_and_statuses(store, tmp_path):
    report = import_dataset(store, hub_folder(tmp_path))
    assert (report.kind, report.records, report.without_status) == ("ranking", 2, 0)
    labels = {(r[0], r[1], r[2]): r[3:] for r in labels_of(store, "rank-three")}
    alice = labels[("h-1", "rank", f"argilla:{ALICE}")]
    assert alice[0] == "ranking" and alice[4] == ["I'm glad you asked! Batteries are covered for two years.",
                                                  "Yes, for two years.", "No."]
    assert labels[("h-1", "rank", f"argilla:{BRUNO}")][7] == "[1,1,2]"  # bruno's tie is kept
    assert labels[("h-1", "tags", f"argilla:{ALICE}")][0] == "held"
    # h-1: B>A (alice) vs B=A (bruno) has no majority; B>C and A>C are won 2-0.
    # h-2: bruno's A=B is a tie, not a win for A (tied options are ranked in option order).
    pairs = {(p["chosen"], p["rejected"]) for p in exported_pairs(store, tmp_path / "pairs")}
    assert pairs == {("I'm glad you asked! Batteries are covered for two years.", "No."),
                     ("Yes, for two years.", "No."), ("Sure.", "Ask the bank."),
                     ("Of course! Pay in 3 instalments at no cost.", "Ask the bank.")}


def test_a_task_made_in_the_workbench_exports_with_names_back_on_import(store, tmp_path):
    from annotation.labeling import Labeling, User

    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"})
                           + "\n" for i in range(3)))
    from workbench.ingest import import_files

    import_files(store, [src], max_field_bytes=1 << 20)
    store.create_task(name="native", kind="pairwise", overlap=1, guidelines="Pick the better reply", created_by="t")
    labeling = Labeling(store)
    for who in (User("ann", "annotator"), User("bob", "annotator")):
        view = labeling.open_next(who, "task-native")
        labeling.submit_comparison(who, "task-native", view.item_id, view.client_id, choice="A")
    export_task(store, "native", tmp_path / "out")
    users = json.loads((tmp_path / "out" / USERS_FILE).read_text())
    assert sorted(users.values()) == ["ann", "bob"]
    with Store.open(tmp_path / "b.duckdb", create=True) as other:
        report = import_dataset(other, tmp_path / "out")
        assert report.kind == "pairwise"
        who = {r[2] for r in labels_of(other, "native")}
        assert who == {"ann", "bob"}
        original = {(r[2], r[3], r[4], r[5], r[6]) for r in labels_of(store, "native")}
        assert {(r[2], r[3], r[4], r[5], r[6]) for r in labels_of(other, "native")} == original


def stand_in_client():
    """An Argilla SDK client whose only server call (who am I, made when a client is created) is answered
    in process: the SDK's own parsers need a client object, and no Argilla server can run here."""
    import argilla as rg
    import httpx

    def whoami(request):
        return httpx.Response(200, json={"id": "00000000-0000-4000-8000-0000000000ff", "username": "t",
                                         "role": "owner", "first_name": "t", "last_name": None,
                                         "inserted_at": "2026-01-01T00:00:00", "updated_at": "2026-01-01T00:00:00"})

    return rg.Argilla(api_url="http://stand-in", api_key="k", mounts={"http://stand-in": httpx.MockTransport(whoami)})


def test_argillas_own_sdk_reads_our_export(store, tmp_path):
    from argilla.records._io._json import JsonIO
    from argilla.settings import Settings

    stand_in_client()
    import_dataset(store, RANKING, users_file=USERS)
    export_task(store, "support-replies", tmp_path / "out", users_file=USERS)
    settings = Settings.from_json(tmp_path / "out" / ".argilla" / "settings.json")
    assert [q.name for q in settings.questions] == ["ranking", "corrected", "quality", "topic"]
    records = JsonIO._records_from_json(tmp_path / "out" / "records.json")
    assert [r.id for r in records] == ["rec-1", "rec-2", "rec-3", "rec-4"]
    by_user = {(r.question_name, str(r.user_id)): r for r in records[1].responses}
    assert by_user[("ranking", BRUNO)].value == [{"value": "response1", "rank": 1}, {"value": "response2", "rank": 1}]
    assert by_user[("ranking", ALICE)].status.value == "submitted"  # the users file gave alice her id back
    held = {str(r.user_id): r.status.value for r in records[2].responses}
    assert held == {BRUNO: "draft", CARA: "discarded"}


@pytest.mark.parametrize("breakage,message", [
    (lambda f: (f / "records.json").write_text('[{"id": "x", "fields": {}\n'), "records.json: line 2, column 1"),
    (lambda f: (f / ".argilla" / "settings.json").unlink(), "settings.json: missing"),
    (lambda f: _edit(f, lambda r: r[0]["responses"]["ranking"][0]["value"].append({"value": "response9", "rank": 3})),
     "record 1 (id 'rec-1'): ranking question 'ranking', user 00000000-0000-4000-8000-00000000000a: 'response9' "
     "is not one of its options"),
    (lambda f: _edit(f, lambda r: r[1]["responses"].update({"mood": [{"value": "ok", "user_id": ALICE}]})),
     "record 2 (id 'rec-2'): a response to 'mood', which is not a question"),
    (lambda f: _edit(f, lambda r: r[0]["responses"]["quality"][0].update({"status": "approved"})),
     "response status 'approved'"),
    (lambda f: _edit(f, lambda r: r[0]["responses"]["quality"][0].update({"value": 9})),
     "rating question 'quality', user 00000000-0000-4000-8000-00000000000a: 9 is not one of its options"),
    (lambda f: _edit(f, lambda r: r[3]["fields"].pop("instruction")), "record 4 (id 'rec-4'): no prompt field"),
    (lambda f: (f / "records.json").unlink(), "no records.json"),
])
def test_a_bad_or_partial_folder_is_refused_by_file_record_and_field_and_nothing_is_stored(
        store, tmp_path, breakage, message):
    folder = tmp_path / "broken"
    shutil.copytree(RANKING, folder)
    breakage(folder)
    before = store.dump()
    with pytest.raises(ArgillaFormatError) as err:
        import_dataset(store, folder)
    assert message in str(err.value)
    assert store.dump() == before


def _edit(folder: Path, change) -> None:
    records = json.loads((folder / "records.json").read_text())
    change(records)
    (folder / "records.json").write_text(json.dumps(records))


def test_a_task_name_taken_by_another_task_is_refused_and_the_store_is_unchanged(store, tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    from workbench.ingest import import_files

    import_files(store, [src], max_field_bytes=1 << 20)
    store.create_task(name="support-replies", kind="pairwise", overlap=1, guidelines="", created_by="t")
    before = store.dump()
    with pytest.raises(Exception, match="exists already and did not come from this dataset"):
        import_dataset(store, RANKING)
    assert store.dump() == before


def test_cli_imports_exports_and_says_clearly_when_no_server_is_configured(project, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    root = str(project.root)
    assert cli(["argilla", "import", str(RANKING), "-p", root, "--users", str(USERS), "--tag", "argilla"]) == 0
    assert "task 'support-replies' (pairwise): 4 records -> added 4 prompts" in capsys.readouterr().out
    assert cli(["argilla", "export", "support-replies", "-p", root, "--out", str(tmp_path / "out")]) == 0
    assert "4 records, 9 responses" in capsys.readouterr().out
    assert cli(["argilla", "export", "support-replies", "-p", root, "--out", str(tmp_path / "out")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert cli(["argilla", "pull", "support-replies", "-p", root]) == 2
    assert "no Argilla server configured: set ARGILLA_API_URL and ARGILLA_API_KEY" in capsys.readouterr().err
    assert cli(["argilla", "push", "support-replies", "-p", root, "--api-url", "http://127.0.0.1:9",
                "--api-key", "k"]) == 2
    assert "cannot reach the Argilla server at http://127.0.0.1:9" in capsys.readouterr().err


def test_an_imported_task_goes_on_in_the_workbench_queue_and_agreement(store):
    from annotation.labeling import Labeling, User

    import_dataset(store, RANKING, users_file=USERS)
    labeling = Labeling(store)
    ann = User("ann", "annotator")
    view = labeling.open_next(ann, "task-support-replies")
    external = dict(store.cursor().execute("SELECT id, external_id FROM task_items").fetchall())
    assert external[view.item_id] in ("rec-3", "rec-4")  # rec-1 and rec-2 already have their 2 answers
    labeling.submit_comparison(ann, "task-support-replies", view.item_id, view.client_id, choice="A")
    answers = dict(store.cursor().execute("SELECT external_id, answers FROM task_items").fetchall())
    assert answers[external[view.item_id]] == 1
    report = labeling.agreement(User("root", "admin"), "task-support-replies")
    # rec-1: alice and bruno agree; rec-2: alice picks a reply, bruno ties (ann's single answer has no overlap)
    assert (report["units_with_overlap"], report["percent_agreement"]) == (2, 0.5)
    assert report["annotators"] == ["alice", "ann", "bruno"]
    assert report["disagreements"][0]["votes"]["bruno"] == "tie"
