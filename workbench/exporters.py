"""Write curated data in the columns TRL's trainers read, with a dataset card saying what made it.

Styles: `conversational` (lists of role/content messages; TRL's recommended form, keeps system prompts and
multi-turn context), `standard` (plain strings; single-turn prompts without a system prompt only) and, for
SFT, `messages` (one `messages` list per row). Formats: `jsonl` and `parquet` (load with
`datasets.load_dataset(folder)`) and `hf` (a `save_to_disk` folder: `datasets.load_from_disk(folder)`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.store import JUDGE_PREFIX, ExportFilters, Store

FORMATS = ("jsonl", "parquet", "hf")
STYLES = {"sft": ("conversational", "messages", "standard"), "preferences": ("conversational", "standard"),
          "unpaired": ("conversational", "standard")}

_PROMPT_MESSAGES = ("CASE WHEN system IS NULL THEN messages "
                    "ELSE list_prepend({'role': 'system', 'content': system}, messages) END")


def _assistant(column: str) -> str:
    return f"[{{'role': 'assistant', 'content': {column}}}]"


COLUMNS = {
    ("sft", "conversational"): f"{_PROMPT_MESSAGES} AS prompt, {_assistant('completion')} AS completion",
    ("sft", "messages"): f"list_concat({_PROMPT_MESSAGES}, {_assistant('completion')}) AS messages",
    ("sft", "standard"): "messages[1].content AS prompt, completion",
    # KTO's unpaired preference format: one response per row, label true (thumbs up) or false (thumbs down)
    ("unpaired", "conversational"): (f"{_PROMPT_MESSAGES} AS prompt, {_assistant('completion')} AS completion, "
                                     "label"),
    ("unpaired", "standard"): "messages[1].content AS prompt, completion, label",
    ("preferences", "conversational"): (f"{_PROMPT_MESSAGES} AS prompt, {_assistant('chosen')} AS chosen, "
                                        f"{_assistant('rejected')} AS rejected"),
    ("preferences", "standard"): "messages[1].content AS prompt, chosen, rejected",
}


def extra_columns(kind: str, filters: ExportFilters) -> str:
    """Per-pair columns beyond TRL's three: label_smoothing (from the vote split) and tie, when asked for."""
    if kind != "preferences":
        return ""
    keep_ties = filters.ties == "keep"
    return (", label_smoothing" if filters.smoothing or keep_ties else "") + (", tie" if keep_ties else "")


FATES = {"kept": "kept", "tie": "tied (majority tie or 'both bad')", "pair rule": "left out by the pair rule",
         "split": "votes split evenly", "too few votes": "fewer votes than --min-votes",
         "low agreement": "agreement below --min-agreement", "tie votes": "had a tie vote (--exclude-ties)"}


def pairs_text(pairs: dict) -> list[str]:
    """The card's account of how labels became pairs: the rule, what each filter kept, pairs per prompt."""
    from workbench.store import PAIR_RULES

    fates = pairs["fates"]
    tie_fate = "kept as ties" if pairs["ties"] == "keep" else "dropped"
    lines = [f"- pair rule: `{pairs['rule']}` ({PAIR_RULES[pairs['rule']]}); ties: {tie_fate}",
             f"- candidate pairs: {sum(fates.values())}; " + "; ".join(
                 f"{FATES.get(fate, fate)}: {n}" for fate, n in sorted(fates.items(), key=lambda kv: -kv[1]))]
    per_prompt = ", ".join(f"{n} prompt{'s' if n != 1 else ''} gave {k}" for k, n in pairs["per_prompt"].items())
    lines.append(f"- rows per prompt: {per_prompt}")
    return lines


class ExportError(WorkbenchError):
    """An export that cannot be written as asked; the message says why."""


@dataclass
class ExportResult:
    out_dir: Path
    counts: dict[str, int]
    content_hash: str
    card: Path
    pairs: dict | None = None  # preferences: the pair rule, each fate's count, rows per prompt


def export(store: Store, *, kind: str, out_dir: str | Path, fmt: str = "jsonl", style: str = "conversational",
           split: float = 0.0, seed: int = 0, filters: ExportFilters | None = None,
           project_name: str = "workbench") -> ExportResult:
    filters = filters or ExportFilters()
    if kind not in STYLES:
        raise ExportError(f"unknown kind {kind!r}; choose sft, preferences or unpaired")
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if style not in STYLES[kind]:
        raise ExportError(f"style {style!r} does not apply to {kind}; choose one of {', '.join(STYLES[kind])}")
    if not 0.0 <= split < 1.0:
        raise ExportError(f"--split must be at least 0 and below 1, got {split}")
    if kind != "preferences" and filters.pair_options:
        raise ExportError("--min-votes, --min-agreement, --exclude-ties, --pairs, --ties and --vote-smoothing "
                          f"apply to preference pairs, not {kind}")
    try:
        filters.check()
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    out = Path(out_dir)
    _check_out(out)

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
        pairs = None
        if kind == "preferences":
            pairs = {"rule": filters.pairs, "ties": filters.ties, "fates": store.pair_fates(filters),
                     "per_prompt": staged.pairs_per_prompt()}
        staged.write(columns_sql=COLUMNS[(kind, style)] + extra_columns(kind, filters), out_dir=out, fmt=fmt)
    content_hash = _hash_files(out)
    card = _write_card(out, kind=kind, fmt=fmt, style=style, split=split, seed=seed, filters=filters,
                       counts=counts, provenance=provenance, content_hash=content_hash, project_name=project_name,
                       pairs=pairs)
    return ExportResult(out, counts, content_hash, card, pairs)


def _check_out(out: Path) -> None:
    """--out must be a new or empty folder that can be created: checked before anything is staged, so a
    file, a dangling link or an unwritable parent is one line, not a traceback halfway through."""
    if out.is_symlink() and not out.exists():
        raise ExportError(f"--out {out} is a symlink to {os.readlink(out)}, which does not exist: remove the link "
                          "or choose a new folder")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder: an export writes a folder (its data files and a "
                          "README card), so choose a new folder name")
    if out.is_dir() and any(out.iterdir()):
        raise ExportError(f"--out {out} exists and is not empty: choose a new folder so no earlier export is "
                          "mixed in")
    parent = out.absolute().parent
    while not parent.exists() and not parent.is_symlink():
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError(f"--out {out}: {parent} is a file (or a dangling link), so the folder cannot be created "
                          "under it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"--out {out}: the folder {parent} is not writable for this user")


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


def judges_text(mode: str, annotators: list[str]) -> str:
    """The card's line on model judges: which verdicts the rows read, by which judges."""
    used = [a for a in annotators if a.startswith(JUDGE_PREFIX)]
    what = {"exclude": "left out (--judges exclude)", "include": "included beside people's (--judges include)",
            "only": "the only labels (--judges only)",
            "accepted": "only verdicts an admin accepted, beside people's (--judges accepted)"}[mode]
    return what + (f"; used: {', '.join(used)}" if used else "; none used")


def _write_card(out: Path, *, kind: str, fmt: str, style: str, split: float, seed: int, filters: ExportFilters,
                counts: dict[str, int], provenance: dict, content_hash: str, project_name: str,
                pairs: dict | None = None) -> Path:
    yaml = ["---"]
    if fmt != "hf":  # a save_to_disk folder is read with load_from_disk, which needs no configs
        yaml += ["configs:", "- config_name: default", "  data_files:"]
        for s in counts:
            yaml += [f"  - split: {s}", f"    path: {s}.{fmt}"]
    yaml += ["tags:", "- trl", f"- {kind}", "---"]
    columns = {"unpaired": {"conversational": "prompt, completion (message lists), label (true: thumbs up)",
                            "standard": "prompt, completion (strings), label (true: thumbs up)"},
               "sft": {"conversational": "prompt, completion (message lists)", "messages": "messages",
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
    if pairs is not None:
        meta["pairs"] = {**pairs, "per_prompt": {str(k): v for k, v in pairs["per_prompt"].items()}}
    body = [
        f"# {project_name}: {kind} export", "",
        f"Written by alignment-workbench in TRL's {style} {kind} format: columns {columns}.", "",
        *([f"Extra columns: {extra_columns(kind, filters).lstrip(', ')}. label_smoothing is the share of a pair's "
           "votes against its winner (0.5 for a kept tie); DPO reads it per pair with --vote-smoothing.", ""]
          if extra_columns(kind, filters) else []),
        f"Load it with `{load}`.", "",
        "| split | rows |", "|---|---|", *[f"| {s} | {n} |" for s, n in counts.items()], "",
        f"- prompts: {provenance['prompts']} (test split by whole prompts: fraction {split}, seed {seed})",
        f"- sources: {', '.join(provenance['sources'])}",
        f"- annotators: {', '.join(provenance['annotators'])}",
        f"- judge labels: {judges_text(filters.judges, provenance['annotators'])}",
        f"- filters: {json.dumps(_filters_text(filters))}",
        *(pairs_text(pairs) if pairs is not None else []),
        f"- sha256 of the data files: `{content_hash}`", "",
        "```json", json.dumps(meta, indent=2), "```", "",
    ]
    card = out / "README.md"
    card.write_text("\n".join(yaml + body), encoding="utf-8")
    return card
