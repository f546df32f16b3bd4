"""The Playground's model worker: one process that holds loaded versions and answers chat requests, so the web
server never loads a model (as FastChat's model workers do: a crashed or slow model never takes the site
down with it). The server starts it on the first chat and talks to it in JSON lines:

    python -m trainers.worker        # requests on stdin, one JSON object a line; answers on stdout

    request  {"id": 1, "version": {"id", "base_model", "adapter", "stacked_on"}, "messages": [...],
              "sampling": {"temperature": 0.7, "max_new_tokens": 128, "seed": 0}}
    answer   {"id": 1, "reply": "..."}  or  {"id": 1, "error": "..."}

It answers one request at a time, keeps the KEEP versions used last (a conversation does not reload its
model on every turn), and ends when its stdin closes: when the server goes away, so does the worker.
"""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict

KEEP = 3  # loaded versions kept in memory: two side by side, and the one before


class Worker:
    def __init__(self, keep: int = KEEP):
        self.keep = keep
        self._models: OrderedDict[str, tuple] = OrderedDict()

    def _load(self, spec: dict):
        from trainers.generation import load_for_generation

        key = json.dumps([spec.get("id"), spec["base_model"], spec.get("adapter"), spec.get("stacked_on") or []])
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        loaded = load_for_generation(spec["base_model"], spec.get("adapter"), spec.get("stacked_on"))
        self._models[key] = loaded
        while len(self._models) > self.keep:
            self._models.popitem(last=False)
        return loaded

    def reply(self, spec: dict, messages: list[dict], sampling: dict) -> str:
        """The version's next assistant turn after `messages`, with its chat template applied."""
        from trainers.generation import Sampling, generate_hf

        model, tokenizer = self._load(spec)
        return generate_hf(model, tokenizer, [messages], Sampling(n=1, **sampling), batch_size=1)[0][0][0]

    def answer(self, line: str) -> dict:
        try:
            request = json.loads(line)
        except ValueError as exc:
            return {"id": None, "error": f"not a JSON request: {exc}"}
        try:
            return {"id": request.get("id"), "reply": self.reply(request["version"], request["messages"],
                                                                request.get("sampling", {}))}
        except Exception as exc:  # a version that fails to load or generate answers with its error; the worker stays
            return {"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"}


def main() -> None:
    # Answers own the real stdout; anything a library prints (to sys.stdout or from C) goes to stderr, the log.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    worker = Worker()
    for line in sys.stdin:
        if line.strip():
            answers.write(json.dumps(worker.answer(line)) + "\n")
            answers.flush()


if __name__ == "__main__":
    main()
