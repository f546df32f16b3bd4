"""The Playground tab's engine: chat with the base model or any version, with its chat template applied,
before sending it to review. Loaded versions are kept (a few at a time) so a conversation does not reload
its model on every turn."""

from __future__ import annotations

import threading
from collections import OrderedDict

from workbench.config import Project
from workbench.store import Store


class PlaygroundError(Exception):
    """A version that cannot be chatted with; the message says why."""


class Playground:
    KEEP = 3  # loaded versions kept in memory

    def __init__(self, project: Project, store: Store):
        self.project, self.store = project, store
        self._models: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def _load(self, version_id: str):
        from trainers.generation import load_for_generation
        from workbench.generate import GenerationError, resolve_versions

        with self._lock:
            if version_id in self._models:
                self._models.move_to_end(version_id)
                return self._models[version_id]
            try:
                (spec,) = resolve_versions(self.project, self.store, [version_id])
            except GenerationError as exc:
                raise PlaygroundError(str(exc).replace("--versions: ", "")) from None
            loaded = load_for_generation(spec.get("base_model", self.project.base_model_path()), spec["adapter"],
                                         spec["stacked_on"])
            self._models[version_id] = loaded
            while len(self._models) > self.KEEP:
                self._models.popitem(last=False)
            return loaded

    def reply(self, version_id: str, messages: list[dict], *, temperature: float = 0.7,
              max_new_tokens: int = 128, seed: int = 0) -> str:
        """The version's next assistant turn after `messages` (system prompt first, if any)."""
        from trainers.generation import Sampling, generate_hf

        if not messages or messages[-1]["role"] != "user":
            raise PlaygroundError("write a message first")
        model, tokenizer = self._load(version_id or "base")
        sampling = Sampling(n=1, temperature=temperature, max_new_tokens=int(max_new_tokens), seed=seed)
        return generate_hf(model, tokenizer, [messages], sampling, batch_size=1)[0][0][0]
