"""Write curated data in the columns TRL's trainers read, with a dataset card saying what made it.

Styles: `conversational` (lists of role/content messages; TRL's recommended form, keeps system prompts and
multi-turn context), `standard` (plain strings; single-turn prompts without a system prompt only) and, for
SFT, `messages` (one `messages` list per row). Formats: `jsonl` and `parquet` (load with
`datasets.load_dataset(folder)`) and `hf` (a `save_to_disk` folder: `datasets.load_from_disk(folder)`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from workbench.store import ExportFilters, Store

FORMATS = ("jsonl", "parquet", "hf")
STYLES = {"sft": ("conversational", "messages", "standard"), "preferences": ("conversational", "standard")}

_PROMPT_MESSAGES = ("CASE WHEN system IS NULL THEN messages "
                    "ELSE list_prepend({'role': 'system', 'content': system}, messages) END")


def _assistant(column: str) -> str:
    return f"[{{'role': 'assistant', 'content': {column}}}]"


COLUMNS = {
    ("sft", "conversational"): f"{_PROMPT_MESSAGES} AS prompt, {_assistant('completion')} AS completion",
    ("sft", "messages"): f"list_concat({_PROMPT_MESSAGES}, {_assistant('completion')}) AS messages",
    ("sft", "standard"): "messages[1].content AS prompt, completion",
    ("preferences", "conversational"): (f"{_PROMPT_MESSAGES} AS prompt, {_assistant('chosen')} AS chosen, "
                                        f"{_assistant('rejected')} AS rejected"),
    ("preferences", "standard"): "messages[1].content AS prompt, chosen, rejected",
}


class ExportError(Exception):
    """An export that cannot be written as asked; the message says why."""


@dataclass
class ExportResult:
    out_dir: Path
    counts: dict[str, int]
    content_hash: str
    card: Path


def export(store: Store, *, kind: str, out_dir: str | Path, fmt: str = "jsonl", style: str = "conversational",
           split: float = 0.0, seed: int = 0, filters: ExportFilters | None = None,
           project_name: str = "workbench") -> ExportResult:
    filters = filters or ExportFilters()
    if kind not in STYLES:
        raise ExportError(f"unknown kind {kind!r}; choose sft or preferences")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if style not in STYLES[kind]:
        raise ExportError(f"style {style!r} does not apply to {kind}; choose one of {', '.join(STYLES[kind])}")
    if not 0.0 <= split < 1.0:
        raise ExportError(f"--split must be at least 0 and below 1, got {split}")
    if kind == "sft" and (filters.min_votes > 1 or filters.min_agreement > 0 or filters.exclude_ties):
        raise ExportError("--min-votes, --min-agreement and --exclude-ties apply to preference pairs, not sft")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty: choose a new folder so no earlier export is mixed in")

    with store.staged_export(kind, filters, split=split, seed=seed) as staged:
        provenance = staged.provenance()
        if provenance["rows"] == 0:
            raise ExportError(f"no {kind} rows match: the store holds none, or the filters left none out of them")
        if style == "standard":
            blocked = staged.multi_turn_or_system_count()
            if blocked:
                raise ExportError(f"{blocked} rows have a system prompt or multi-turn context, which TRL's "
                                  "standard (plain-string) style cannot hold: export with --style conversational")
        counts = staged.counts()
        staged.write(columns_sql=COLUMNS[(kind, style)], out_dir=out, fmt=fmt)
    content_hash = _hash_files(out)
    card = _write_card(out, kind=kind, fmt=fmt, style=style, split=split, seed=seed, filters=filters,
                       counts=counts, provenance=provenance, content_hash=content_hash, project_name=project_name)
    return ExportResult(out, counts, content_hash, card)


def _hash_files(out: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(p for p in out.rglob("*") if p.is_file() and p.name != "README.md"):
        digest.update(str(f.relative_to(out)).encode())
        with f.open("rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def _filters_text(filters: ExportFilters) -> dict:
    data = asdict(filters)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _write_card(out: Path, *, kind: str, fmt: str, style: str, split: float, seed: int, filters: ExportFilters,
                counts: dict[str, int], provenance: dict, content_hash: str, project_name: str) -> Path:
    yaml = ["---"]
    if fmt != "hf":  # a save_to_disk folder is read with load_from_disk, which needs no configs
        yaml += ["configs:", "- config_name: default", "  data_files:"]
        for s in counts:
            yaml += [f"  - split: {s}", f"    path: {s}.{fmt}"]
    yaml += ["tags:", "- trl", f"- {kind}", "---"]
    columns = {"sft": {"conversational": "prompt, completion (message lists)", "messages": "messages",
                       "standard": "prompt, completion (strings)"},
               "preferences": {"conversational": "prompt, chosen, rejected (message lists)",
                               "standard": "prompt, chosen, rejected (strings)"}}[kind][style]
    load = (f'datasets.load_from_disk("{out}")' if fmt == "hf" else f'datasets.load_dataset("{out}")')
    meta = {
        "project": project_name, "kind": kind, "format": fmt, "style": style, "split": split, "seed": seed,
        "rows": counts, "prompts": provenance["prompts"], "sources": provenance["sources"],
        "annotators": provenance["annotators"], "filters": _filters_text(filters), "sha256": content_hash,
        "created_at": datetime.now().isoformat(timespec="seconds"),
    }
    body = [
        f"# {project_name}: {kind} export", "",
        f"Written by alignment-workbench in TRL's {style} {kind} format: columns {columns}.", "",
        f"Load it with `{load}`.", "",
        "| split | rows |", "|---|---|", *[f"| {s} | {n} |" for s, n in counts.items()], "",
        f"- prompts: {provenance['prompts']} (test split by whole prompts: fraction {split}, seed {seed})",
        f"- sources: {', '.join(provenance['sources'])}",
        f"- annotators: {', '.join(provenance['annotators'])}",
        f"- filters: {json.dumps(_filters_text(filters))}",
        f"- sha256 of the data files: `{content_hash}`", "",
        "```json", json.dumps(meta, indent=2), "```", "",
    ]
    card = out / "README.md"
    card.write_text("\n".join(yaml + body), encoding="utf-8")
    return card
