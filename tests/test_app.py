"""The real Gradio server on a free port: its stats over HTTP with gradio_client, the page in headless
Chromium, and the store held by the server so a second writer gets the clear message."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import ARTIFACTS, DEMO_DATA
from workbench.app import stats_markdown
from workbench.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def demo_project(project, load):
    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "sft.jsonl"), str(DEMO_DATA / "preferences.jsonl")]) == 0
    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "heldout_prompts.jsonl"), "--tag", "heldout"]) == 0
    return project


def test_stats_handler_is_a_plain_function(store, load):
    load(DEMO_DATA / "preferences.jsonl")
    text = stats_markdown(store, "demo")
    assert "| prompts | 300 |" in text and "| labels: preference | 500 |" in text


@pytest.fixture
def server(demo_project):
    """`workbench serve` in its own process, as a user runs it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", str(demo_project.root), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("server did not start in 120 s")
    yield url, demo_project
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.e2e
def test_server_serves_stats_and_holds_the_store(server, capsys, tmp_path):
    from gradio_client import Client

    url, project = server
    stats = Client(url, verbose=False).predict(api_name="/stats")
    assert "| prompts | 920 |" in stats and "| prompts tagged `heldout` | 120 |" in stats
    assert "| labels: demonstration | 1945 |" in stats
    # The server owns the store: a CLI write now fails with the clear message, not a stack trace.
    src = tmp_path / "x.jsonl"
    src.write_text('{"prompt": "a", "completion": "b"}\n')
    assert main(["import", "-p", str(project.root), str(src)]) == 2
    assert "in use by another process" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.e2e
# Outside CI a missing browser skips; in CI (where `make test` installs it) a missing browser fails.
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="Debian's chromium is not installed (make test installs it)")
def test_page_shows_stats_in_chromium(server):
    from playwright.sync_api import sync_playwright

    url, _ = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--no-first-run"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#stats table", timeout=60_000)
        text = page.inner_text("#stats")
        assert "prompts" in text and "920" in text and "1945" in text
        page.click("#refresh")
        page.wait_for_selector("#stats table")
        page.screenshot(path=str(ARTIFACTS / "stats.png"), full_page=True)
        page.get_by_role("tab", name="Train").click()
        page.wait_for_selector("#start", state="visible")
        assert page.is_visible("#cancel") and page.is_visible("#stage")
        page.screenshot(path=str(ARTIFACTS / "train.png"), full_page=True)
        browser.close()


def test_a_busy_port_is_a_clear_error_and_frees_the_store(demo_project, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(demo_project.root), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    assert main(["stats", str(demo_project.root)]) == 0  # the failed server let go of the store


@pytest.mark.slow
def test_train_tab_starts_follows_and_cancels_jobs(demo_project):
    """The Train tab's handlers, called as the UI calls them, against a real trainer process."""
    from workbench.app import cancel_job, job_view, start_job
    from workbench.jobs import JobRunner
    from workbench.store import Store

    with Store.open(demo_project.store_path) as store:
        runner = JobRunner(demo_project, store)
        assert job_view(runner)[0] == "No training job yet."
        assert "Started **sft-1**" in start_job(runner, "sft", None, None, 3, None, False)
        assert "still running" in start_job(runner, "sft", None, None, 3, None, False)  # one job at a time
        job = runner.wait(timeout=300)
        assert job.state == "succeeded" and store.model_version("sft-1") is not None
        text, table = job_view(runner)
        assert "sft-1** (sft): succeeded" in text
        # A long job, cancelled: the run is marked cancelled and makes no version.
        assert "Started **sft-2**" in start_job(runner, "sft", None, None, 100000, None, False)
        deadline = time.time() + 120
        while not (demo_project.runs_dir / "sft-2" / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.5)
        assert "sft-2**: cancelled" in cancel_job(runner)
        assert store.run("sft-2")["status"] == "cancelled" and store.model_version("sft-2") is None
        assert "Not started" in start_job(runner, "ppo", "sft-1", None, 3, None, False)
