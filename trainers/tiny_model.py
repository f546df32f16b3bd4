"""Build a tiny Llama-style chat model offline, so demos and tests never touch the Hugging Face Hub.

The tokenizer is a byte-level BPE trained with `tokenizers` on the project's own text (any text still
encodes: byte-level BPE falls back to bytes). The chat template is ChatML with `{% generation %}` markers,
which TRL's `assistant_only_loss` needs. A real user passes a Hub id or a local model path instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

# ChatML; assistant turns sit inside generation markers so TRL can mask everything else from the loss.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Sizes of the tiny model. h192 x 4 layers is about 2M parameters: it learns the demo project's reply
    style in a few minutes of CPU SFT; h384 x 6 (about 11M) is the next step up."""

    hidden_size: int = 192
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    vocab_size: int = 1024  # a target for BPE training; the real size is what the corpus supports
    seed: int = 0


def default_corpus() -> list[str]:
    """A small generic text shipped with the package, used when a project brings no text of its own."""
    text = resources.files("trainers").joinpath("assets/tiny_corpus.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def train_tokenizer(corpus: Iterable[str], vocab_size: int):
    """Train a byte-level BPE on `corpus` and wrap it as a fast tokenizer with ChatML specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token="<|endoftext|>",
        model_max_length=1024,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out_dir: str | Path, corpus: Iterable[str] | None = None,
                     spec: TinyModelSpec | None = None) -> Path:
    """Write a randomly initialised tiny Llama plus its tokenizer to `out_dir` with `save_pretrained`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    spec = spec or TinyModelSpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = list(corpus) if corpus is not None else default_corpus()
    if not texts:
        raise ValueError("the tokenizer corpus is empty: give the tiny model some text to learn from")
    tokenizer = train_tokenizer(texts, spec.vocab_size)

    torch.manual_seed(spec.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "workbench_tiny_model.json").write_text(
        json.dumps({"spec": asdict(spec), "corpus_lines": len(texts),
                    "parameters": sum(p.numel() for p in model.parameters())}, indent=2) + "\n"
    )
    return out
