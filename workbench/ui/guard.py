"""What every request passes before Gradio sees it: an ASGI middleware wrapped around the whole app.

- Only allowed `Host` names are served (a DNS-rebinding page reaches the server under its own name, which
  is refused), and a request from a foreign origin gets no CORS headers; one that would change something
  (any method but GET and HEAD, and every CORS preflight) is refused outright.
- Routes no feature needs are not there: the URL proxy, deep links, streams. Uploads and file downloads are
  for signed-in admins only (the Project tab's import, export and adapter downloads): an upload up to
  `max_upload_bytes`, a download only of a file under the server's own downloads folder (`downloads`), never
  any other path. Everyone else gets 404, as if the routes were not there.
- The API schema is for admins: the page embeds an empty one for everyone else and Gradio's /info answers
  them with an empty one (their scripts still call endpoints by name and position); /openapi.json is admins'.
- Every response carries a Content-Security-Policy and the usual hardening headers. The page's own inline
  scripts get a fresh nonce per response; see `content_security_policy` for what each source is for.
- A sign-in's client address is handed to the password check (workbench.auth.SignIn) for its throttle.

Refusals are short plain-text answers; the detail goes to the server's log."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import urlsplit

from workbench.ui.downloads import size_text

log = logging.getLogger("workbench.guard")

# The address of the sign-in being checked: set here, read by the auth callable (same task, same context).
client_address: ContextVar[str] = ContextVar("client_address", default="")

LOOPBACK = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = ("GET", "HEAD")
# Gradio routes under /gradio_api that admins' uploads and downloads use (checked first), then those that no
# feature of the workbench uses:
UPLOAD_ROUTES = re.compile(r"/gradio_api/(upload|upload_progress)/?")
FILE_ROUTE = re.compile(r"/gradio_api/file=(.+)", re.S)
CLOSED_ROUTES = re.compile(r"/gradio_api/(upload|upload_progress|file=|file/|proxy=|process_recording|deep_link"
                           r"|stream/|run-history/|vibe-|mcp)")
# An upload's multipart framing (boundaries, part headers) beyond the files' own bytes, per request.
MULTIPART_SLACK = 1 << 20
API_INFO = re.compile(r"/gradio_api/info/?")
OPENAPI = re.compile(r"/(gradio_api/)?openapi\.json")
LOGIN = re.compile(r"/login/?")
# Everything else that is not a page: the page is the only HTML we rewrite, so only it loses compression.
NOT_A_PAGE = re.compile(r"/(gradio_api|assets|static|svelte|theme\.css|favicon\.ico|manifest\.json|robots\.txt"
                        r"|pwa_icon|logout|config)")
EMPTY_API_INFO = b'{"named_endpoints": {}, "unnamed_endpoints": {}}'


def script_hash(script: str) -> str:
    """The CSP source that allows one inline script: sha256 of the text between <script> and </script>."""
    body = re.search(r"<script[^>]*>(.*?)</script>", script, re.S)
    digest = hashlib.sha256((body.group(1) if body else script).encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def content_security_policy(nonce: str, script_hashes: tuple[str, ...] = ()) -> str:
    """The policy on every response. Beyond `default-src 'self'`, each source is one Gradio's page needs:"""
    return "; ".join([
        "default-src 'self'",
        # Gradio's index.html boots from inline scripts (the config, the loader): they carry this response's
        # nonce. The head script (the Label tab's keys) is added by Gradio's JS at run time: allowed by hash.
        f"script-src 'self' 'nonce-{nonce}' {' '.join(script_hashes)}".strip(),
        # Svelte components set style attributes and Gradio injects the theme as <style> elements. User
        # text can never carry a style (workbench/ui/render.py escapes every tag); this only lets Gradio's
        # own styling work.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",  # Gradio's icons are inline SVG data: URLs; no remote image ever loads
        "font-src 'self' data:",
        "connect-src 'self'",  # the queue's fetches and event stream; nothing else is called
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",  # the page sets <base href="./">
        "object-src 'none'",
    ])


def hostname(value: str) -> str:
    """The host name of a Host header or an Origin, lower case, without port, brackets or trailing dot."""
    if "://" in value:
        value = urlsplit(value).netloc
    value = value.rsplit("@", 1)[-1].strip().lower()
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def allowed_hosts(bind: str, extra: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """The names served: those asked for, the loopback names and the bind address (unless it is a wildcard,
    which no browser sends as a Host)."""
    names = {*LOOPBACK, *(hostname(h) for h in extra)}
    if bind not in ("0.0.0.0", "::", ""):
        names.add(hostname(bind))
    return frozenset(n for n in names if n)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


async def _answer(send, status: int, text: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *headers, *_hardening(secrets.token_urlsafe(8))]})
    await send({"type": "http.response.body", "body": body})


def _hardening(nonce: str, script_hashes: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", content_security_policy(nonce, script_hashes).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin")]


class Guard:
    """The ASGI middleware. `role_of(scope)` is the signed-in user's role for a request (None: not signed in)."""

    def __init__(self, app, *, hosts: frozenset[str], role_of: Callable[[dict], str | None],
                 script_hashes: tuple[str, ...] = (), downloads: Path | None = None, max_upload_bytes: int = 0):
        self.app, self.hosts, self.role_of, self.script_hashes = app, hosts, role_of, script_hashes
        # uploads and downloads stay closed without a downloads folder and an upload limit
        self.downloads = Path(os.path.realpath(downloads)) if downloads else None
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        host = hostname(_header(scope, b"host") or "")
        origin = _header(scope, b"origin")
        foreign = origin is not None and (origin == "null" or hostname(origin) not in self.hosts)
        path = scope.get("path", "")[len(scope.get("root_path", "")):] or "/"
        method = scope.get("method", "GET")
        client = (scope.get("client") or ("?", 0))[0]
        if host not in self.hosts:
            log.warning("refused Host %r from %s (%s %s); allowed: %s", host, client, method, path,
                        ", ".join(sorted(self.hosts)))
            return await self._refuse(scope, receive, send, 400,
                                      f"This server does not answer to the name {host!r}: start it with "
                                      f"--allowed-host {host or 'NAME'} to serve it under that name.\n")
        if foreign and (scope["type"] == "websocket" or method not in SAFE_METHODS):
            log.warning("refused a cross-origin %s %s from origin %r (client %s)", method, path, origin, client)
            return await self._refuse(scope, receive, send, 403, "Cross-origin requests are refused.\n")
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        if UPLOAD_ROUTES.fullmatch(path) or FILE_ROUTE.fullmatch(path):
            refused = self._file_route(scope, path, method)
            if refused:
                return await _answer(send, *refused)
            return await self.app(scope, receive, self._sender(send, foreign))
        if CLOSED_ROUTES.match(path):
            return await _answer(send, 404, "Not found.\n")
        if API_INFO.fullmatch(path) or OPENAPI.fullmatch(path):
            role = self.role_of(scope)
            if role != "admin" and role is not None:  # not signed in: Gradio's own 401
                if OPENAPI.fullmatch(path):
                    return await _answer(send, 403, "The API schema is for admins.\n")
                return await self._json(send, EMPTY_API_INFO)
        if LOGIN.fullmatch(path) and method == "POST":
            client_address.set(client)
        if method == "GET" and not NOT_A_PAGE.match(path):
            return await self._page(scope, receive, send, foreign)
        return await self.app(scope, receive, self._sender(send, foreign))

    def _file_route(self, scope, path: str, method: str) -> tuple[int, str] | None:
        """Why an upload or a file download is refused (status, text), or None to let it through: only a
        signed-in admin's, an upload within max_upload_bytes, a download of a file in the downloads folder."""
        if self.downloads is None or not self.max_upload_bytes or self.role_of(scope) != "admin":
            return 404, "Not found.\n"
        if (m := FILE_ROUTE.fullmatch(path)) is not None:
            if not is_within(m.group(1), self.downloads):
                log.warning("refused an admin's download of %r: not a file the server made for download",
                            m.group(1)[:200])
                return 404, "Not found.\n"
            return None
        length = _header(scope, b"content-length")
        if method == "POST" and length and length.isdigit() and int(length) > self.max_upload_bytes + MULTIPART_SLACK:
            return 413, (f"This upload is {size_text(int(length))}, above the server's limit of "
                         f"{size_text(self.max_upload_bytes)} at once (max_upload_bytes in workbench.toml): upload the "
                         "files one at a time, gzip them, or import them with `workbench import` on the server.\n")
        return None

    async def _refuse(self, scope, receive, send, status: int, text: str) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        await _answer(send, status, text)

    async def _json(self, send, body: bytes) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *_hardening(secrets.token_urlsafe(8))]})
        await send({"type": "http.response.body", "body": body})

    def _sender(self, send, foreign: bool, nonce: str | None = None):
        nonce = nonce or secrets.token_urlsafe(8)

        async def guarded(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if not (foreign and k.lower().startswith(b"access-control-"))
                           and k.lower() not in _HARDENING_NAMES]
                message = {**message, "headers": headers + _hardening(nonce, self.script_hashes)}
            await send(message)
        return guarded

    async def _page(self, scope, receive, send, foreign: bool) -> None:
        """An HTML page: read whole (uncompressed), its inline scripts given this response's nonce, and the
        embedded API schema emptied unless an admin asks."""
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"accept-encoding"]}
        nonce = secrets.token_urlsafe(16)
        start, chunks = None, []

        async def collect(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = dict(start.get("headers", []))
            if headers.get(b"content-type", b"").startswith(b"text/html") and b"content-encoding" not in headers:
                role = self.role_of(scope)
                if role is None:  # the sign-in page: say why a sign-in waits (Gradio's page shows only 400s)
                    body = body.replace(b"</body>", SIGN_IN_WAIT + b"</body>", 1)
                body = _nonce_scripts(body, nonce)
                if role != "admin":
                    body = _API_INFO_SCRIPT.sub(b"window.gradio_api_info = " + EMPTY_API_INFO + b";</script>", body)
            raw = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await self._sender(send, foreign, nonce)({**start, "headers": raw + [(b"content-length",
                                                                              str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, collect)


def is_within(path: str, folder: Path) -> bool:
    """True if `path`, every link and `..` followed, is a file inside `folder` (itself resolved)."""
    try:
        target = Path(os.path.realpath(path))
        return target.is_relative_to(folder) and target != folder and target.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long
        return False


_HARDENING_NAMES = {name for name, _ in _hardening("x")}
# Gradio's sign-in form shows "Incorrect credentials" on a 400 and nothing on any other answer: on a 429 this
# shows the server's one line ("too many failed sign-ins: try again in N s") under the password box.
SIGN_IN_WAIT = rb"""<script>
(() => {
  const fetch0 = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetch0(...args);
    try {
      const url = new URL(String(args[0] && args[0].url ? args[0].url : args[0]), location.href);
      if (response.status === 429 && /\/login\/?$/.test(url.pathname)) {
        const detail = (await response.clone().json()).detail;
        let line = document.getElementById("sign-in-wait");
        if (!line) {
          line = document.createElement("p");
          line.id = "sign-in-wait";
          line.setAttribute("role", "alert");
          const box = document.querySelector("input[type=password]");
          (box && box.closest(".block") || document.body).after(line);
        }
        line.textContent = detail;
      }
    } catch (e) { /* not a sign-in */ }
    return response;
  };
})();
</script>"""
# Gradio's template JSON-encodes everything it embeds with < escaped as \u003c, so "<script" in the page can
# only be one of its own tags, never user text.
_SCRIPT_TAG = re.compile(rb"<script(?=[\s>])")
_API_INFO_SCRIPT = re.compile(rb"window\.gradio_api_info = .*?;</script>", re.S)


def _nonce_scripts(body: bytes, nonce: str) -> bytes:
    return _SCRIPT_TAG.sub(b'<script nonce="' + nonce.encode() + b'"', body)
