"""Candidate generation from a model version: the base, or the base with a version's adapter applied (no
merged copy on disk). HF `generate` in batches with left padding; vLLM when it is installed and a GPU is
present (the adapter served as a LoRA request).

    workbench generate PROJECT --versions base,sft-1 --tag heldout --n 4    # snapshots prompts, runs this
    python -m trainers.generation JOB_DIR                                  # the job alone, on a job folder

A job folder is the whole contract with the workbench (which owns the store; this never opens it):

    job.json        base_model, versions [{id, base_model, adapter, stacked_on}], sampling, batch_size
    prompts.jsonl   {"prompt_id", "prompt": [messages]} per line
    out.jsonl       {"prompt_id", "version", "sample", "text", "tokens"} per reply, written as they come
    progress.json   {"done", "total"} replies, for the UI
    status.json     succeeded | failed, with the error and the backend used
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Sampling:
    """How replies are sampled; stored beside every generated response. temperature 0 is greedy."""

    n: int = 1
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 0
    max_new_tokens: int = 128
    repetition_penalty: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be 1 or more, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or more, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be 1 or more, got {self.max_new_tokens}")


def vllm_problem() -> str | None:
    """Why vLLM cannot serve here (then HF generate does), or None when it can."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU"
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "vllm is not installed"
    return None


def render(tokenizer, prompt: list[dict]) -> str:
    """The conversation as the model sees it: its chat template, ending with the assistant's turn open."""
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


def generate_hf(model, tokenizer, prompts: list[list[dict]], sampling: Sampling, *, batch_size: int = 16,
                on_batch: Callable[[int, list[list[tuple[str, int]]]], None] | None = None) -> list[list[tuple[str, int]]]:
    """`sampling.n` (text, new tokens) replies per prompt, `batch_size` sequences per `generate` call.

    The seed is set per batch (seed + first prompt index), so a prompt's replies do not depend on which
    other prompts share its run, only on the batch layout."""
    import torch

    tokenizer.padding_side = "left"
    out: list[list[tuple[str, int]]] = []
    per_call = max(1, batch_size // sampling.n)  # prompts per call; each expands to n sequences
    sample = sampling.temperature > 0
    for start in range(0, len(prompts), per_call):
        chunk = prompts[start:start + per_call]
        torch.manual_seed(sampling.seed + start)
        batch = tokenizer([render(tokenizer, p) for p in chunk], return_tensors="pt", padding=True,
                          add_special_tokens=False).to(model.device)
        settings = {"do_sample": sample, "num_return_sequences": sampling.n,
                    "max_new_tokens": sampling.max_new_tokens, "repetition_penalty": sampling.repetition_penalty,
                    "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
        if sample:
            settings |= {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k}
        with torch.no_grad():
            rows = model.generate(**batch, **settings)[:, batch["input_ids"].shape[1]:]
        replies = []
        for i in range(len(chunk)):
            mine = []
            for row in rows[i * sampling.n:(i + 1) * sampling.n]:
                ids = row.tolist()
                ends = [k for k, t in enumerate(ids) if t in (tokenizer.eos_token_id, tokenizer.pad_token_id)]
                ids = ids[:ends[0]] if ends else ids
                mine.append((tokenizer.decode(ids, skip_special_tokens=True), len(ids)))
            replies.append(mine)
        out += replies
        if on_batch:
            on_batch(start, replies)
    return out


def generate_vllm(base_model: str, adapter: str | None, prompts: list[list[dict]],
                  sampling: Sampling) -> list[list[tuple[str, int]]]:
    """The same replies through vLLM (GPU): one call, vLLM batches by itself; the adapter as a LoRA."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from trainers.models import load_tokenizer

    tokenizer = load_tokenizer(base_model)
    llm = LLM(model=base_model, enable_lora=adapter is not None, seed=sampling.seed)
    params = SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                            top_k=sampling.top_k if sampling.top_k > 0 else -1,
                            max_tokens=sampling.max_new_tokens, repetition_penalty=sampling.repetition_penalty,
                            seed=sampling.seed)
    lora = LoRARequest("version", 1, adapter) if adapter else None
    results = llm.generate([render(tokenizer, p) for p in prompts], params, lora_request=lora)
    return [[(o.text, len(o.token_ids)) for o in r.outputs] for r in results]


def load_for_generation(base_model: str, adapter: str | None, stacked_on: list[str] | None = None):
    """A version ready to generate: the one model-loading helper, on the GPU when there is one."""
    from trainers.models import device, load_tokenizer, load_version

    model = load_version(base_model, adapter, stacked_on=stacked_on).to(device())
    return model, load_tokenizer(base_model)


def main(job_dir: str | Path) -> None:
    # run_folder imports transformers, and the server imports Sampling from this module: import it only here
    from trainers.run_folder import stage_status

    job_dir = Path(job_dir)
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (job_dir / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    sampling = Sampling(**job["sampling"])
    total = len(rows) * sampling.n * len(job["versions"])
    done = 0

    def progress() -> None:
        tmp = job_dir / "progress.tmp"
        tmp.write_text(json.dumps({"done": done, "total": total}))
        tmp.replace(job_dir / "progress.json")

    with stage_status(job_dir) as summary, (job_dir / "out.jsonl").open("w", encoding="utf-8") as out:
        problem = vllm_problem() if job.get("backend", "auto") != "hf" else "HF generate asked for"
        summary["backend"] = "vllm" if problem is None else "hf"
        summary["why_not_vllm"] = problem
        t0, tokens = time.perf_counter(), 0
        progress()
        for version in job["versions"]:
            prompts = [r["prompt"] for r in rows]

            def write(start: int, replies: list[list[tuple[str, int]]], version_id: str = version["id"]) -> None:
                nonlocal done, tokens
                for row, samples in zip(rows[start:start + len(replies)], replies, strict=True):
                    for k, (text, n_tokens) in enumerate(samples):
                        out.write(json.dumps({"prompt_id": row["prompt_id"], "version": version_id, "sample": k,
                                              "text": text, "tokens": n_tokens}) + "\n")
                        tokens += n_tokens
                        done += 1
                out.flush()
                progress()

            base_model = version.get("base_model", job["base_model"])  # the model the version was trained over
            if problem is None and not version.get("stacked_on"):  # vLLM takes one adapter, not a stack
                write(0, generate_vllm(base_model, version.get("adapter"), prompts, sampling))
            else:
                model, tokenizer = load_for_generation(base_model, version.get("adapter"), version.get("stacked_on"))
                generate_hf(model, tokenizer, prompts, sampling, batch_size=job.get("batch_size", 16), on_batch=write)
        seconds = time.perf_counter() - t0
        summary.update({"replies": done, "tokens": tokens, "seconds": round(seconds, 2),
                        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
                        "sampling": asdict(sampling)})


if __name__ == "__main__":
    main(sys.argv[1])
