"""The Playground tab's client: chat with the base model or any version, with its chat template applied, before
sending it to review. The model runs in a worker process (trainers/worker.py) that keeps the versions it
loaded, so the web server never imports torch and a conversation does not reload its model on every turn.

The worker is started on the first chat and spoken to in JSON lines over its stdin and stdout; a worker
that crashes or hangs is an error on that one chat, and the next chat starts a fresh one.
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

from workbench.config import Project
from workbench.errors import WorkbenchError
from workbench.generate import GenerationError, resolve_versions
from workbench.jobs import job_env, stop
from workbench.store import Store

TIMEOUT_S = 600.0  # one reply, loading its version included: a 135M model loads in ~20 s on two cores


class PlaygroundError(WorkbenchError):
    """A version that cannot be chatted with, or a worker that failed; the message says why."""


class _Gone(Exception):
    """The worker ended before it answered."""


class Playground:
    def __init__(self, project: Project, store: Store, timeout_s: float = TIMEOUT_S):
        self.project, self.store, self.timeout_s = project, store, timeout_s
        self._lock = threading.Lock()  # one request at a time: the worker answers in order
        self._proc: subprocess.Popen | None = None
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)

    @property
    def log_path(self) -> Path:
        return self.project.root / "logs" / "playground-worker.log"

    def _worker(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = proc = subprocess.Popen([sys.executable, "-m", "trainers.worker"], stdin=subprocess.PIPE,
                                                 stdout=subprocess.PIPE, stderr=log, env=job_env(), text=True,
                                                 encoding="utf-8", bufsize=1, start_new_session=True)
        self._answers = answers = queue.Queue()
        threading.Thread(target=self._read, args=(proc, answers), daemon=True).start()
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen, answers: queue.Queue) -> None:
        """Hand the worker's answer lines over as they come; None once it has gone (end of its stdout)."""
        for line in proc.stdout:
            answers.put(line)
        answers.put(None)

    def _drop(self) -> None:
        if self._proc is not None:
            stop(self._proc)
            self._proc = None

    def _failed(self, what: str) -> PlaygroundError:
        """Stop the worker (the next chat starts a fresh one) and say why, with the end of its log."""
        self._drop()
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:] if self.log_path.exists() else []
        return PlaygroundError(f"the model worker {what}" + (": " + " | ".join(tail) if tail else ""))

    def _ask(self, request: dict) -> dict:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                try:
                    return self._send(request)
                except _Gone:  # it had died since the last chat (killed, out of memory): ask a fresh one once
                    self._drop()
            try:
                return self._send(request)
            except _Gone:
                raise self._failed("stopped") from None

    def _send(self, request: dict) -> dict:
        proc = self._worker()
        request_id = request["id"] = next(self._ids)
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
        except OSError:
            raise _Gone from None
        while True:
            try:
                line = self._answers.get(timeout=self.timeout_s)
            except queue.Empty:
                raise self._failed(f"gave no reply in {self.timeout_s:.0f} s") from None
            if line is None:
                raise _Gone
            answer = json.loads(line)
            if answer.get("id") == request_id:  # an answer to an earlier request that timed out is dropped
                return answer

    def reply(self, version_id: str, messages: list[dict], *, temperature: float = 0.7,
              max_new_tokens: int = 128, seed: int = 0) -> str:
        """The version's next assistant turn after `messages` (system prompt first, if any)."""
        if not messages or messages[-1]["role"] != "user":
            raise PlaygroundError("write a message first")
        try:
            (spec,) = resolve_versions(self.project, self.store, [version_id or "base"])
        except GenerationError as exc:
            raise PlaygroundError(str(exc).replace("--versions: ", "")) from None
        spec = {**spec, "base_model": spec.get("base_model", self.project.base_model_path())}
        answer = self._ask({"version": spec, "messages": messages,
                            "sampling": {"temperature": temperature, "max_new_tokens": int(max_new_tokens),
                                         "seed": seed}})
        if "error" in answer:
            raise PlaygroundError(f"{version_id or 'base'}: {answer['error']}")
        return answer["reply"]

    def close(self) -> None:
        """Stop the worker (the server's shutdown; the worker also ends by itself when the server goes away)."""
        with self._lock:
            self._drop()
