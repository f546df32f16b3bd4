"""Data in and out of the browser (issue 20, admins): import files by upload (all or nothing, or skip the bad
rows with the rejects file as a download), export a dataset as a zip with its card, a model version's
adapter as a zip; and the guard opens Gradio's upload and file routes to signed-in admins only, for the
server's own downloads only (annotators and strangers get 404, as before). One real `workbench serve` for
the module, driven in headless Chromium and over plain HTTP; screenshots in test-artifacts/ui-data/."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import ARTIFACTS, DEMO_DATA
from tests.test_app import PASSWORD, chromium, needs_chromium
from tests.test_security_web import Server
from tests.test_ui_bugs import signed_in
from workbench.cli import main

pytestmark = pytest.mark.e2e
SHOTS = ARTIFACTS / "ui-data"
CAP = 2 << 20  # the test project's max_upload_bytes: data/loki/sft.jsonl (0.9 MiB) fits
GOOD = [{"prompt": f"Web question {i}?", "completion": f"Web answer {i}."} for i in range(20)]


def mixed(path: Path) -> Path:
    """20 good rows and 4 bad ones, at lines 3 (invalid JSON), 8 (no completion), 12 and 20 (empty replies)."""
    rows = [json.dumps(r) for r in GOOD]
    rows.insert(2, '{"prompt": "broken", "completion": ')
    rows.insert(7, json.dumps({"prompt": "No answer"}))
    rows.insert(11, json.dumps({"prompt": "Empty", "completion": "  "}))
    rows.insert(19, json.dumps({"prompt": "Empty too", "completion": ""}))
    path.write_text("".join(r + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """The demo's pairs, an admin and an annotator, a 2 MiB upload cap, and model version sft-1 whose adapter
    folder holds two files and a link to a system file (which no download may carry)."""
    from workbench.auth import add_user
    from workbench.config import write_config
    from workbench.projects import init_project
    from workbench.store import ModelVersion, Store

    project = init_project(tmp_path_factory.mktemp("ui-data") / "proj", base_model="test-org/never-loaded")
    write_config(project.root, dataclasses.replace(project.config, max_upload_bytes=CAP))
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    adapter = project.runs_dir / "sft-1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (adapter / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 1024)
    (adapter / "hostname").symlink_to("/etc/hostname")
    with Store.open(project.store_path) as store:
        add_user(store, "root", "admin", PASSWORD)
        add_user(store, "ann", "annotator", PASSWORD)
        store.create_run(run_id="sft-1", stage="sft", parent_version_id=None, config={}, dataset_hash="test",
                         run_dir=str(adapter.parent))
        store.finish_run("sft-1", status="succeeded", version=ModelVersion(
            id="sft-1", run_id="sft-1", stage="sft", base_model="test-org/never-loaded", parent_id=None,
            dataset_hash="test", path=str(adapter)))
    return project


@pytest.fixture(scope="module")
def server(data_root, tmp_path_factory):
    s = Server(data_root.root, tmp_path_factory.mktemp("log") / "server.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with chromium(SHOTS) as b:
        yield b


def project_tab(browser, url: str, section: str):
    """A page of its own browser context, signed in as the admin, on the Project tab with `section` open."""
    page = signed_in(browser, url, "root", height=1000)
    page.get_by_role("tab", name="Project").click()
    page.get_by_text(section, exact=True).click()
    return page


def upload(page, *paths: Path) -> None:
    from playwright.sync_api import expect

    page.locator("#import-files input[type=file]").set_input_files([str(p) for p in paths])
    expect(page.locator("#import-files tbody tr")).to_have_count(len(paths), timeout=30_000)  # uploaded
    for p in paths:
        expect(page.locator("#import-files")).to_contain_text(p.stem)


def download(page, link_of: str, where: Path) -> Path:
    with page.expect_download(timeout=30_000) as info:
        page.locator(f"{link_of} a").first.click()
    target = where / info.value.suggested_filename
    info.value.save_as(target)
    return target


def value(output):
    """A file output's value as the API returns it: the section shows a file box only with a file in it, so
    the output is Gradio's update ({"__type__": "update", "value": ..., "visible": ...})."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def stats(server) -> str:
    from gradio_client import Client

    return Client(server.url, auth=("root", PASSWORD), verbose=False).predict(api_name="/stats")


# ------------------------------------------------------------------ import by upload
@needs_chromium
def test_a_bad_file_is_refused_whole_then_imported_with_its_rejects_as_a_download(server, browser, data_root,
                                                                                  tmp_path):
    from playwright.sync_api import expect

    before = stats(server)
    page = project_tab(browser, server.url, "Import files")
    upload(page, mixed(tmp_path / "mixed.jsonl"))
    page.locator("#import").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("Nothing imported", timeout=30_000)
    text = result.inner_text()
    assert "mixed.jsonl: line 3: invalid JSON" in text and "4 of 24 rows are bad" in text, text
    assert "uploads" not in text  # the file as the admin named it, not the server's copy
    page.screenshot(path=str(SHOTS / "import-refused.png"), full_page=True)
    assert stats(server) == before  # all or nothing: nothing
    assert not [p for p in (data_root.root / "uploads").rglob("*") if p.is_file()]  # and no copy kept

    upload(page, tmp_path / "mixed.jsonl")
    page.get_by_text("Skip bad rows and list them in a rejects file").click()
    page.locator("#import-max-rejects textarea, #import-max-rejects input").fill("20%")
    page.locator("#import").click()
    expect(result).to_contain_text("Imported 1 file", timeout=30_000)
    text = result.inner_text()
    assert "added 20 prompts, 20 responses, 20 labels" in text and "refused 4 rows" in text, text
    expect(page.locator("#rejects-file")).to_contain_text("mixed.jsonl", timeout=15_000)
    page.screenshot(path=str(SHOTS / "import-skipped.png"), full_page=True)
    rejects = [json.loads(line) for line in download(page, "#rejects-file", tmp_path).read_text().splitlines()]
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        (3, None, "invalid JSON"), (8, "completion", "missing field"), (12, "completion", "empty reply"),
        (20, "completion", "empty reply")]
    assert "| labels: demonstration | 20 |" in stats(server)
    kept = list((data_root.root / "uploads").rglob("mixed.jsonl"))
    assert len(kept) == 1 and kept[0].read_bytes() == (tmp_path / "mixed.jsonl").read_bytes()


@needs_chromium
def test_admin_uploads_two_files_at_once_with_a_tag(server, browser):
    from playwright.sync_api import expect

    page = project_tab(browser, server.url, "Import files")
    upload(page, DEMO_DATA / "sft.jsonl", DEMO_DATA / "heldout_prompts.jsonl")
    page.locator("#import-tags textarea, #import-tags input").fill("web, loki")
    page.locator("#import").click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("Imported 2 files", timeout=60_000)
    text = result.inner_text()
    assert "Tagged web, loki" in text, text
    assert "sft.jsonl: 2000 rows (trl-completion, sft)" in text and "heldout_prompts.jsonl: 120 rows" in text, text
    page.screenshot(path=str(SHOTS / "import-two-files.png"), full_page=True)
    now = stats(server)
    assert "| prompts tagged `web` |" in now and "| prompts tagged `loki` |" in now, now


# ------------------------------------------------------------------ export as a download
@needs_chromium
def test_admin_exports_a_dataset_as_a_zip_with_its_card(server, browser, tmp_path):
    import datasets
    from playwright.sync_api import expect

    page = project_tab(browser, server.url, "Export a dataset")
    page.locator("#export-kind input").click()
    page.get_by_role("option", name="preferences", exact=True).click()
    page.locator("#export-split input").fill("0.1")
    page.locator("#export").click()
    result = page.locator("#export-result")
    expect(result).to_contain_text("Exported preferences (conversational, jsonl)", timeout=60_000)
    page.screenshot(path=str(SHOTS / "export.png"), full_page=True)
    archive = download(page, "#export-file", tmp_path)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "out")
    [folder] = (tmp_path / "out").iterdir()
    card = (folder / "README.md").read_text()
    assert "preferences" in card and "sha256" in card.lower()
    loaded = datasets.load_dataset(str(folder))
    assert set(loaded) == {"train", "test"}
    assert {"prompt", "chosen", "rejected"} <= set(loaded["train"].column_names)
    text = result.inner_text()
    assert f"train: {loaded['train'].num_rows:,}" in text and f"test: {loaded['test'].num_rows:,}" in text, text


def test_export_takes_the_clis_formats_and_filters_over_the_api(server, tmp_path):
    """An admin's script: the same endpoint with a format, a style and filters; a filter that leaves nothing, or
    a bad date, is one line and no file."""
    import datasets
    from gradio_client import Client

    admin = Client(server.url, auth=("root", PASSWORD), verbose=False)

    def export(kind, fmt, style, *, annotators=(), sources="", since="", pairs="", min_votes=1):
        text, archive = admin.predict(kind, fmt, style, 0.0, 0, list(annotators), sources, "exclude", since, "",
                                      True, pairs, 1.0, "drop", min_votes, 0.0, False, False, api_name="/export_dataset")
        return text, value(archive)

    text, archive = export("preferences", "hf", "conversational", sources="preferences.jsonl", pairs="best_vs_worst")
    assert "**Exported** preferences (conversational, hf)" in text and "Pairs (`best_vs_worst`" in text, text
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    [folder] = [p for p in tmp_path.iterdir() if p.is_dir()]
    train = datasets.load_from_disk(str(folder))["train"]
    assert train.num_rows > 0 and train[0]["chosen"][0]["role"] == "assistant"
    text, archive = export("preferences", "jsonl", "conversational", annotators=["nobody"])
    assert "Not exported" in text and "no preferences rows match" in text and archive is None, text
    text, archive = export("sft", "parquet", "conversational", since="last week")
    assert "Not exported" in text and "not a date" in text and archive is None, text


# ------------------------------------------------------------------ adapter download
@needs_chromium
def test_admin_downloads_a_model_versions_adapter(server, browser, tmp_path):
    from playwright.sync_api import expect

    page = project_tab(browser, server.url, "Download a model version")
    page.locator("#adapter-version input").click()
    page.get_by_role("option", name="sft-1", exact=True).click()
    page.locator("#adapter-zip").click()
    expect(page.locator("#adapter-result")).to_contain_text("2 files", timeout=30_000)
    page.screenshot(path=str(SHOTS / "adapter.png"), full_page=True)
    with zipfile.ZipFile(download(page, "#adapter-file", tmp_path)) as zf:
        names = sorted(zf.namelist())
        assert names == ["sft-1-adapter/adapter_config.json", "sft-1-adapter/adapter_model.safetensors"]
        assert zf.read("sft-1-adapter/adapter_model.safetensors") == bytes(range(256)) * 1024  # not the link


# ------------------------------------------------------------------ the guard
def multipart(name: str, data: bytes) -> tuple[bytes, dict]:
    boundary = "----wbdata"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_uploads_and_downloads_are_for_admins_and_only_the_servers_own_files(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    _, ann, _, _ = server.login("ann")
    _, root, _, _ = server.login("root")
    assert ann and root
    body, headers = multipart("small.jsonl", b'{"prompt": "a", "completion": "b"}\n')
    # a download the server made for an admin (not fetched by the client: its address on the server)
    made = value(Client(server.url, auth=("root", PASSWORD), verbose=False, download_files=False).predict(
        "sft-1", api_name="/download_adapter")[1])
    zip_path = made["path"] if isinstance(made, dict) else made.path
    status, _, data = server.request("GET", f"/gradio_api/file={quote(zip_path)}", headers={"Cookie": root})
    assert status == 200 and data[:2] == b"PK"
    for who in ({"Cookie": ann}, {}):  # an annotator, and nobody signed in: the routes are not there
        assert server.request("POST", "/gradio_api/upload", body, {**headers, **who})[0] == 404
        assert server.request("GET", "/gradio_api/upload_progress?upload_id=1", headers=who)[0] == 404
        assert server.request("GET", f"/gradio_api/file={quote(zip_path)}", headers=who)[0] == 404
    # the admin uploads, but fetches nothing that is not a download: not an upload, not a system file
    status, _, answer = server.request("POST", "/gradio_api/upload", body, {**headers, "Cookie": root})
    assert status == 200, answer[:300]
    [uploaded] = json.loads(answer)
    downloads = Path(zip_path).parents[1]
    for path in (uploaded, "/etc/hostname", f"{downloads}/../../../etc/hostname", str(downloads),
                 str(Path(zip_path).parent), "http://evil.example/x.zip"):
        assert server.request("GET", f"/gradio_api/file={quote(path)}", headers={"Cookie": root})[0] == 404, path
    # past max_upload_bytes: refused before it is read, saying which setting; a file just past it, by Gradio
    big, big_headers = multipart("big.jsonl", b"x" * (CAP + (2 << 20)))
    status, _, answer = server.request("POST", "/gradio_api/upload", big, {**big_headers, "Cookie": root})
    assert status == 413 and b"max_upload_bytes in workbench.toml" in answer and b"2.0 MiB" in answer, answer
    over, over_headers = multipart("over.jsonl", b"x" * (CAP + 1000))
    assert server.request("POST", "/gradio_api/upload", over, {**over_headers, "Cookie": root})[0] == 413
    # an annotator's script is refused by each handler too
    client = Client(server.url, auth=("ann", PASSWORD), verbose=False)
    for args, api in ((("sft-1",), "/download_adapter"), ((None, "auto", "auto", "", "fail", "1%"), "/import_files")):
        with pytest.raises(AppError, match="needs the role admin"):
            client.predict(*args, api_name=api)


# ------------------------------------------------------------------ the handler, without a browser
def test_an_upload_is_moved_into_the_project_and_its_progress_reported(tmp_path):
    from workbench.projects import init_project
    from workbench.store import Store
    from workbench.ui.data import import_uploads
    from workbench.ui.downloads import Downloads

    project = init_project(tmp_path / "proj", base_model="test-org/never-loaded")
    cache = tmp_path / "gradio" / "0123abcd"
    cache.mkdir(parents=True)
    uploaded = mixed(cache / "mixed.jsonl")
    seen = []
    with Store.open(project.store_path) as store:
        text, rejects = import_uploads(project, store, Downloads.create(tmp_path / "gradio"), [str(uploaded)],
                                       fmt=None, kind=None, tags="web", on_error="skip", max_rejects="5",
                                       progress=lambda share, desc: seen.append((share, desc)))
        assert store.stats()["prompts_by_tag"] == {"web": 20}
    assert "Imported 1 file" in text and "refused 4 rows" in text, text
    assert seen and seen[-1][0] == 1.0 and "importing mixed.jsonl" in seen[-1][1], seen
    assert not uploaded.exists() and len(list((project.root / "uploads").rglob("mixed.jsonl"))) == 1
    assert len(rejects) == 1 and rejects[0].read_text().count("\n") == 4


@needs_chromium
def test_an_upload_past_the_cap_is_refused_in_the_browser(server, browser, tmp_path):
    """The page knows max_upload_bytes (its label names the setting): a file past it is refused before any
    byte is sent, with the limit and the file's name; the HTTP test above covers a script that sends it anyway."""
    from playwright.sync_api import expect

    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"prompt": "x" * (CAP + 100_000), "completion": "y"}) + "\n")
    page = project_tab(browser, server.url, "Import files")
    expect(page.locator("#import-files")).to_contain_text("up to 2.0 MiB at once: max_upload_bytes")
    page.locator("#import-files input[type=file]").set_input_files([str(big)])
    expect(page.get_by_text('exceed the maximum allowed size of 2.0 Mb: "big.jsonl"')).to_be_visible(timeout=15_000)
    page.screenshot(path=str(SHOTS / "upload-too-big.png"), full_page=True)
    expect(page.locator("#import-files tbody tr")).to_have_count(0)


# ------------------------------------------------------------------ Argilla in the browser
ARGILLA = Path(__file__).parent / "fixtures" / "argilla" / "ranking_to_disk"


def zip_of(folder: Path, dest: Path, top: str = "support-replies", extra: dict[str, bytes] | None = None) -> Path:
    """`folder` zipped as an admin would zip a to_disk folder: everything under one top folder."""
    with zipfile.ZipFile(dest, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


@needs_chromium
def test_admin_imports_an_argilla_folder_by_upload_and_downloads_the_task_for_argillas_sdk(server, browser,
                                                                                          data_root, tmp_path):
    from argilla.records._io._json import JsonIO
    from argilla.settings import Settings
    from playwright.sync_api import expect

    from tests.test_argilla import stand_in_client

    page = project_tab(browser, server.url, "Argilla")
    expect(page.locator("#argilla-server")).to_contain_text("No Argilla server configured")
    # a zip that would write outside its folder is refused whole: nothing stored, nothing kept
    before = stats(server)
    evil = zip_of(ARGILLA, tmp_path / "evil.zip", extra={"../../outside.txt": b"x"})
    page.locator("#argilla-upload input[type=file]").set_input_files(str(evil))
    expect(page.locator("#argilla-upload")).to_contain_text("evil", timeout=30_000)
    page.locator("#argilla-import").click()
    result = page.locator("#argilla-in-result")
    expect(result).to_contain_text("Nothing imported", timeout=30_000)
    assert "evil.zip: '../../outside.txt' would land outside the dataset folder" in result.inner_text()
    assert stats(server) == before and not (data_root.root.parent / "outside.txt").exists()

    good = zip_of(ARGILLA, tmp_path / "support-replies.zip")
    page.locator("#argilla-upload input[type=file]").set_input_files(str(good))
    expect(page.locator("#argilla-upload")).to_contain_text("support-replies", timeout=30_000)
    page.locator("#argilla-users input[type=file]").set_input_files(str(ARGILLA / "users.json"))
    expect(page.locator("#argilla-users")).to_contain_text("users", timeout=30_000)
    page.locator("#argilla-tags input, #argilla-tags textarea").fill("argilla")
    page.locator("#argilla-import").click()
    expect(result).to_contain_text("Imported support-replies.zip", timeout=30_000)
    text = result.inner_text()
    assert "task 'support-replies' (pairwise): 4 records -> added 4 prompts, 8 responses, 9 labels" in text, text
    page.screenshot(path=str(SHOTS / "argilla-import.png"), full_page=True)
    now = stats(server)
    assert "| labels by annotator `alice` |" in now, now  # the users file named them
    assert list((data_root.root / "uploads").rglob("support-replies.zip"))  # the project keeps what it imported

    # out again, as a folder Argilla's own SDK reads (a fresh page: the task list is read when the tab opens)
    page = project_tab(browser, server.url, "Argilla")
    page.locator("#argilla-task input").click()
    page.get_by_role("option", name="support-replies", exact=True).click()
    page.locator("#argilla-users input[type=file]").set_input_files(str(ARGILLA / "users.json"))
    expect(page.locator("#argilla-users")).to_contain_text("users", timeout=30_000)
    page.locator("#argilla-export").click()
    expect(page.locator("#argilla-out-result")).to_contain_text("as an Argilla dataset: 4 records", timeout=30_000)
    archive = download(page, "#argilla-file", tmp_path)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "out")
    [folder] = (tmp_path / "out").iterdir()
    stand_in_client()
    settings = Settings.from_json(folder / ".argilla" / "settings.json")
    assert [q.name for q in settings.questions] == ["ranking", "corrected", "quality", "topic"]
    records = JsonIO._records_from_json(folder / "records.json")
    assert [r.id for r in records] == ["rec-1", "rec-2", "rec-3", "rec-4"]
    from tests.test_argilla import ALICE
    assert ALICE in {str(r.user_id) for r in records[0].responses}  # the users file gave alice her id back

    # push and pull name what is missing, in one line, and change nothing
    page.locator("#argilla-push").click()
    expect(page.locator("#argilla-out-result")).to_contain_text("Not pushed: no Argilla server configured: set "
                                                                "ARGILLA_API_URL and ARGILLA_API_KEY", timeout=30_000)
    page.locator("#argilla-pull-name input, #argilla-pull-name textarea").fill("support-replies")
    page.locator("#argilla-pull").click()
    expect(page.locator("#argilla-in-result")).to_contain_text("Nothing pulled: no Argilla server configured",
                                                              timeout=30_000)
    page.screenshot(path=str(SHOTS / "argilla-no-server.png"), full_page=True)


def test_an_argilla_zip_is_checked_before_anything_is_unpacked(tmp_path):
    from workbench.argilla import ArgillaFormatError
    from workbench.ui.argilla import unpack

    not_zip = tmp_path / "records.zip"
    not_zip.write_text("[]")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/.argilla/settings.json", "{}")
        zf.writestr("d/records.json", b" " * (4 << 20))  # 4 MiB of spaces: a few KiB zipped
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("d/records.json")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    for archive, message in ((not_zip, "records.zip: not a zip file (zip the dataset folder, or upload the zip a download gave you)"), (bomb, "bomb.zip: more than 1.0 MiB once "
                                                                        "unzipped (max_upload_bytes)"),
                             (link, "link.zip: 'd/records.json' would land outside the dataset folder"),
                             (zip_of(ARGILLA / ".argilla", tmp_path / "no-records.zip", top="x/.argilla"),
                              None)):
        dest = tmp_path / f"out-{archive.stem}"
        if message is None:  # settings alone is a folder to read (read_dataset then says what is missing)
            assert unpack(archive, dest, 1 << 20) == dest / "x"
            continue
        with pytest.raises(ArgillaFormatError) as err:
            unpack(archive, dest, 1 << 20)
        assert str(err.value) == message
        assert not dest.exists()
