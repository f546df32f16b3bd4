"""The one model-loading helper every stage shares: base model, LoRA / QLoRA / full fine-tuning, the
adapter of a parent version, and the trainer arguments a CPU or GPU needs.

A model version is one adapter over the project's base model (a DPO run continues the SFT adapter rather
than stacking a second one), so loading any version is: base, then that version's adapter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


class SettingsError(Exception):
    """Settings that cannot work on this machine or with this data; raised before anything trains."""


@dataclass
class Adapter:
    """How the trainable part looks. LoRA by default; `full` trains every weight (small models only)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05  # small data: a little dropout keeps a 2M-1B model from memorizing phrasing
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    layers_to_transform: list[int] | None = None  # e.g. [2, 3]: tune only the last layers
    qlora: bool = False
    full: bool = False


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware_args() -> dict:
    """TrainingArguments fields that depend on the machine.

    CPU: TRL defaults to bf16 and fails ("Your setup doesn't support bf16/gpu"); `use_cpu` alone falls back
    to bf16 autocast plus activation checkpointing, 14.9 s/step against 0.62 s measured on the 11M model.
    GPU: bf16 where the card has it.
    """
    import torch

    common = {"report_to": "none", "dataloader_num_workers": 0, "activation_checkpointing": False}
    if device() == "cpu":
        return {**common, "use_cpu": True, "bf16": False, "fp16": False, "dataloader_pin_memory": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {**common, "bf16": bf16, "fp16": not bf16}


def qlora_problem() -> str | None:
    """Why 4-bit QLoRA cannot run here, or None when it can: a real quantize/dequantize round trip."""
    try:
        import bitsandbytes.functional as bnbf
        import torch
        from transformers.utils import is_bitsandbytes_available
    except ImportError as exc:
        return f"bitsandbytes is not installed ({exc}); install it with pip install bitsandbytes"
    if not is_bitsandbytes_available():
        return "transformers reports bitsandbytes as unavailable on this machine"
    try:
        x = torch.randn(64, 64, device=device())
        q, state = bnbf.quantize_4bit(x, quant_type="nf4")
        error = (bnbf.dequantize_4bit(q, state) - x).abs().mean().item()
    except Exception as exc:  # bitsandbytes raises many types where a backend is missing
        return f"bitsandbytes cannot quantize on {device()}: {exc}"
    if error > 0.5:
        return f"bitsandbytes 4-bit round trip is off by {error:.3f} on average on {device()}"
    return None


def check_base_model(base_model: str) -> None:
    """Refuse a base model that cannot be loaded offline, before a run folder or a version exists."""
    path = Path(base_model)
    if path.is_absolute() or base_model.startswith("."):
        if not (path / "config.json").is_file():
            raise SettingsError(f"base model {base_model}: no such model folder (no config.json)")
        return
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(base_model, "config.json"), str):
            raise SettingsError(f"base model {base_model}: not a local folder and not in the Hugging Face cache "
                                "(HF_HUB_OFFLINE=1, nothing is downloaded)")


def load_tokenizer(base_model: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _quantization(adapter: Adapter):
    if not adapter.qlora:
        return {}
    problem = qlora_problem()
    if problem:
        raise SettingsError(f"--qlora: {problem}. Train without --qlora (LoRA) instead.")
    import torch
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if device() == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return {"quantization_config": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                      bnb_4bit_compute_dtype=compute,
                                                      bnb_4bit_use_double_quant=True),
            "device_map": {"": 0} if device() == "cuda" else "cpu"}


def lora_config(adapter: Adapter, task_type: str = "CAUSAL_LM"):
    from peft import LoraConfig

    return LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                      target_modules=list(adapter.target_modules), layers_to_transform=adapter.layers_to_transform,
                      task_type=task_type)


def load_causal_lm(base_model: str, adapter: Adapter, parent_adapter: str | None = None):
    """The model a stage trains, and the PEFT config to hand TRL (None when the model already carries its
    trainable adapter, or for full fine-tuning).

    With a parent adapter, that adapter is loaded trainable and training continues it; TRL's DPOTrainer
    then keeps a frozen copy named "ref", so the reference is exactly the parent version (TRL PR #4723:
    disabling an already-trained adapter would give the raw base instead).
    """
    from transformers import AutoModelForCausalLM

    if adapter.full and (adapter.qlora or parent_adapter):
        raise SettingsError("--full trains every weight of the base model: it cannot start from a parent "
                            "adapter or use --qlora")
    model = AutoModelForCausalLM.from_pretrained(base_model, **_quantization(adapter))
    if adapter.qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if parent_adapter:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, parent_adapter, is_trainable=True), None
    return model, (None if adapter.full else lora_config(adapter))


def load_reward_model(base_model: str, adapter: Adapter, tokenizer):
    """A one-score sequence classifier over the base (a fresh LoRA with a trainable score head), and its
    PEFT config. The pad token id must be on the config or the classifier cannot find each sequence's end."""
    from transformers import AutoModelForSequenceClassification

    if adapter.full and adapter.qlora:
        raise SettingsError("--full cannot use --qlora")
    model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1, **_quantization(adapter))
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, (None if adapter.full else lora_config(adapter, task_type="SEQ_CLS"))


def load_reward_version(base_model: str, adapter_dir: str):
    """A trained reward model version, ready to score: the base with the version's LoRA merged in, or, for a
    `--full` version (its folder is a whole model, no adapter_config.json), that model."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(base_model)
    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        model = AutoModelForSequenceClassification.from_pretrained(adapter_dir, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
        return model.eval(), tokenizer
    model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload().eval(), tokenizer


def reward_scores(model, tokenizer, prompts: list[list[dict]], replies: list[str]) -> list[float]:
    """Score (prompt, reply) pairs with a reward model, rendered with the chat template as in training."""
    import torch

    scores = []
    for prompt, reply in zip(prompts, replies, strict=True):
        text = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": reply}], tokenize=False)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.no_grad():
            scores.append(model(**ids).logits[0, 0].item())
    return scores


def load_merged(base_model: str, adapters: list[str]):
    """The base with each adapter merged in, in order: the starting point of a stage whose reference must be
    its parent (PPO's reference is the policy with its adapter disabled, so the parent is merged first)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_model)
    for adapter_dir in adapters:
        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return model


def load_version(base_model: str, adapter_dir: str | None, stacked_on: list[str] | None = None):
    """A model version for inference: the base (with the adapters it was trained over merged in, for a
    PPO version), plus the version's own adapter when it has one."""
    model = load_merged(base_model, list(stacked_on or []))
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    return model.eval()


def save_trained(model, out_dir: Path) -> None:
    """Save only what the version is: the "default" adapter (not TRL's frozen "ref" copy), or the full
    model."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.save_pretrained(str(out_dir), selected_adapters=["default"])
    else:
        model.save_pretrained(str(out_dir))
