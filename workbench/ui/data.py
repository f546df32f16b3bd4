"""Data in and out of the browser, for admins (the Project tab): import files by upload, export a dataset as a
zip, download a model version's adapter. Each is the CLI's own path (`workbench import`, `workbench export`)
with the browser's files: an upload is moved into PROJECT/uploads/ and imported from there (so the project
keeps what it imported, as a CLI user keeps their files), a download is written to the server's downloads
folder (workbench/ui/downloads.py), the only files the guard lets anyone fetch."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import gradio as gr

from workbench.config import Project
from workbench.errors import WorkbenchError
from workbench.exporters import FATES, STYLES, export
from workbench.exporters import FORMATS as EXPORT_FORMATS
from workbench.importers import FORMATS, KINDS
from workbench.ingest import DEFAULT_MAX_REJECTS, import_files
from workbench.store import JUDGE_MODES, PAIR_RULES, TIE_RULES, ExportFilters, Store
from workbench.ui.access import Access
from workbench.ui.downloads import Downloads, safe_name, size_text, zip_folder
from workbench.ui.render import code, inline

# What the upload box offers (the importer reads the file's type from its name); a datasets folder cannot be
# uploaded: import it with `workbench import` on the server.
UPLOAD_TYPES = [".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".gz"]
Progress = Callable[[float | None, str], None]  # (share done or None, what is happening)


class DataError(WorkbenchError):
    """A request from the Project tab that cannot be carried out as asked; the message says why."""


def upload_folder(project: Project) -> Path:
    """A new folder's path under PROJECT/uploads/ for one import's files (the project keeps what it imported)."""
    return project.root / "uploads" / f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def comma_list(text: str | None) -> list[str]:
    """A form field of names (tags, sources) separated by commas or lines, blanks left out."""
    return [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]


# ------------------------------------------------------------------ import
def import_uploads(project: Project, store: Store, downloads: Downloads, paths: list[str], *, fmt: str | None,
                   kind: str | None, tags: str, on_error: str, max_rejects: str,
                   progress: Progress | None = None) -> tuple[str, list[Path]]:
    """Import uploaded files as `workbench import` does (one transaction: every file or none). Returns the
    result in Markdown (each file's counts, or the one error naming file, line and field) and the rejects
    files offered for download (on_error='skip', or a refusal above max_rejects)."""
    paths = [p for p in (paths or []) if p]
    if not paths:
        return "Choose one or more files to import first.", []
    names = [Path(p).name for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"**Nothing imported:** two files are named {inline(twice[0])}: rename one and upload again.", []
    folder = upload_folder(project)
    folder.mkdir(parents=True, mode=0o700)
    kept = [Path(shutil.move(p, folder / name)) for p, name in zip(paths, names, strict=True)]
    rejects_dir = project.root / "rejects"
    before = set(rejects_dir.glob("*.rejects.jsonl")) if rejects_dir.is_dir() else set()
    shown = lambda text: text.replace(f"{folder}{os.sep}", "")  # noqa: E731 - the file as the admin named it

    def on_progress(name: str, done: int, total: int) -> None:
        if progress:
            progress(done / total if total else None, f"importing {shown(name)}: {size_text(done)} of "
                                                       f"{size_text(total)}")

    tag_list = comma_list(tags)
    try:
        reports = import_files(store, kept, fmt=fmt or None, kind=kind or None,
                               max_field_bytes=project.config.max_field_bytes,
                               max_file_bytes=project.config.max_file_bytes, tags=tag_list, on_error=on_error,
                               max_rejects=(max_rejects or "").strip() or DEFAULT_MAX_REJECTS,
                               rejects_dir=rejects_dir, progress=on_progress)
    except WorkbenchError as exc:
        shutil.rmtree(folder, ignore_errors=True)  # nothing of it is in the store: the project keeps nothing
        return f"**Nothing imported:** {inline(shown(str(exc)))}", _offer(downloads, rejects_dir, before)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    # a file's line, then (indented in the summary) the count of each reason its rows were refused for
    lines = [f"{'    ' if line.startswith(' ') else ''}- {inline(shown(line))}"
             for report in reports for line in report.summary().splitlines()]
    tagged = f" Tagged {', '.join(code(t) for t in tag_list)}." if tag_list else ""
    head = f"**Imported {len(reports)} file{'s' if len(reports) != 1 else ''}.**{tagged}"
    return "\n".join([head, "", *lines]), _offer(downloads, rejects_dir, before)


def _offer(downloads: Downloads, rejects_dir: Path, before: set[Path]) -> list[Path]:
    """The rejects files this import wrote, copied for download."""
    new = sorted(set(rejects_dir.glob("*.rejects.jsonl")) - before) if rejects_dir.is_dir() else []
    return [downloads.copy(p) for p in new]


# ------------------------------------------------------------------ export
def _date(text: str | None, name: str) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{name} {inline(text)}: not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None


def _whole(value: float | None, name: str, default: int) -> int:
    if value is None:
        return default
    if float(value) != int(value):
        raise DataError(f"{name} must be a whole number, got {value}")
    return int(value)


def export_filters(*, annotators: list[str] | None = None, sources: str = "", since: str = "", until: str = "",
                   review_votes: bool = True, judges: str = "exclude", min_votes: float | None = 1,
                   min_agreement: float | None = 0.0, exclude_ties: bool = False, pairs: str = "",
                   min_margin: float | None = 1.0, ties: str = "drop", smoothing: bool = False) -> ExportFilters:
    """The form's values as the CLI's filters (`workbench export`'s label and pair options)."""
    return ExportFilters(min_votes=_whole(min_votes, "min votes", 1), min_agreement=float(min_agreement or 0.0),
                         exclude_ties=bool(exclude_ties), pairs=pairs or "all", pairs_chosen=bool(pairs),
                         min_margin=1.0 if min_margin is None else float(min_margin), ties=ties or "drop",
                         smoothing=bool(smoothing), annotators=list(annotators or []),
                         sources=comma_list(sources),
                         review_votes=bool(review_votes), judges=judges or "exclude",
                         since=_date(since, "since"), until=_date(until, "until"))


def export_zip(project: Project, store: Store, downloads: Downloads, *, kind: str, fmt: str = "jsonl",
               style: str = "", split: float | None = 0.0, seed: float | None = 0,
               filters: ExportFilters | None = None) -> tuple[str, Path | None]:
    """`workbench export` into a fresh folder, zipped with its dataset card: (the result line, the zip)."""
    style = style or "conversational"
    folder = downloads.new()
    name = f"{safe_name(project.config.name)}-{kind}-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        result = export(store, kind=kind, out_dir=folder / name, fmt=fmt, style=style, split=float(split or 0.0),
                        seed=_whole(seed, "seed", 0), filters=filters, project_name=project.config.name)
    except WorkbenchError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return f"**Not exported:** {inline(str(exc))}", None
    archive, _ = zip_folder(result.out_dir, folder / f"{name}.zip", name)
    shutil.rmtree(result.out_dir)
    rows = ", ".join(f"{inline(s)}: {n:,}" for s, n in result.counts.items())
    lines = [f"**Exported** {inline(kind)} ({inline(style)}, {inline(fmt)}): {rows}; "
             f"{size_text(archive.stat().st_size)} zipped with its dataset card (README.md); sha256 "
             f"{code(result.content_hash)}"]
    if result.pairs:
        fates = ", ".join(f"{FATES.get(k, k)}: {n:,}" for k, n in sorted(result.pairs["fates"].items(),
                                                                       key=lambda kv: -kv[1]))
        lines.append(f"Pairs ({code(result.pairs['rule'])}, ties {code(result.pairs['ties'])}): {inline(fates)}")
    return "\n\n".join(lines), archive


# ------------------------------------------------------------------ adapter
def adapter_zip(store: Store, downloads: Downloads, version: str | None,
                progress: Progress | None = None) -> tuple[str, Path | None]:
    """A zip of a model version's folder (its path in the store: the adapter, or the full model)."""
    if not version:
        return "Choose a model version first.", None
    mv = store.model_version(version)
    if mv is None:
        return f"**No download:** there is no model version {code(version)}.", None
    path = Path(mv.path)
    if not path.is_dir():
        return (f"**No download:** {code(version)}'s folder {code(str(path))} is not there any more (moved or "
                "deleted on the server).", None)
    name = f"{safe_name(version)}-adapter"
    archive, count = zip_folder(path, downloads.new() / f"{name}.zip", name, progress=lambda done, total: progress(
        done / total, f"zipping {done} of {total} files") if progress else None)
    return (f"**{code(version)}** ({inline(mv.stage)}, over {code(mv.base_model)}): {count} files, "
            f"{size_text(archive.stat().st_size)} zipped."), archive


# ------------------------------------------------------------------ the section
class DataSection:
    """Layout first (inside the Project tab), then `wire` once every tab exists."""

    def __init__(self, project: Project, store: Store, access: Access, tab: gr.Tab, downloads: Downloads):
        self.project, self.store, self.access, self.tab, self.downloads = project, store, access, tab, downloads
        cap = size_text(project.config.max_upload_bytes)
        with gr.Accordion("Import files", open=False, elem_id="import-section"):
            self.files = gr.File(label=f"Files to import (up to {cap} at once: max_upload_bytes)",
                                 file_count="multiple", type="filepath", file_types=UPLOAD_TYPES,
                                 elem_id="import-files")
            with gr.Row():
                self.fmt = gr.Dropdown(["auto", *FORMATS], value="auto", label="Format (auto: detected)",
                                       elem_id="import-format")
                self.kind = gr.Dropdown(["auto", *KINDS], value="auto", label="Kind (auto: from the format)",
                                        elem_id="import-kind")
                self.tags = gr.Textbox(label="Tag the new prompts (comma separated)", placeholder="heldout",
                                       elem_id="import-tags")
            with gr.Row():
                self.on_error = gr.Radio([("All or nothing: a bad row refuses the import", "fail"),
                                          ("Skip bad rows and list them in a rejects file", "skip")],
                                         value="fail", label="On a bad row", elem_id="import-on-error")
                self.max_rejects = gr.Textbox(value=DEFAULT_MAX_REJECTS, label="Skip: refuse the import past this "
                                              "many bad rows per file (a count, 50, or a share, 2%)",
                                              elem_id="import-max-rejects")
            self.import_button = gr.Button("Import", variant="primary", elem_id="import")
            self.import_result = gr.Markdown(elem_id="import-result")
            self.rejects = gr.File(label="Rejected rows (JSONL: file, line, field, reason, the row)",
                                   file_count="multiple", interactive=False, visible=False, elem_id="rejects-file")
        with gr.Accordion("Export a dataset", open=False, elem_id="export-section"):
            with gr.Row():
                self.ex_kind = gr.Dropdown(list(STYLES), value="sft", label="Kind", elem_id="export-kind")
                self.ex_format = gr.Dropdown(list(EXPORT_FORMATS), value="jsonl", label="Format",
                                             elem_id="export-format")
                self.ex_style = gr.Dropdown(["conversational", "standard", "messages"], value="conversational",
                                            label="Style (messages: sft only)", elem_id="export-style")
                self.ex_split = gr.Number(value=0.0, minimum=0, maximum=0.99, label="Held out as 'test' (share "
                                          "of prompts)", elem_id="export-split")
                self.ex_seed = gr.Number(value=0, precision=0, label="Seed", elem_id="export-seed")
            with gr.Accordion("Which labels", open=False):
                with gr.Row():
                    self.ex_annotators = gr.Dropdown([], multiselect=True, allow_custom_value=True,
                                                     label="Only these annotators (none: all)",
                                                     elem_id="export-annotators")
                    self.ex_sources = gr.Textbox(label="Only these sources (file names or globs, or 'ui'; comma "
                                                 "separated)", elem_id="export-sources")
                    self.ex_judges = gr.Dropdown(list(JUDGE_MODES), value="exclude", label="Model judges' verdicts",
                                                 elem_id="export-judges")
                with gr.Row():
                    self.ex_since = gr.Textbox(label="Labels since (YYYY-MM-DD)", elem_id="export-since")
                    self.ex_until = gr.Textbox(label="Labels before (YYYY-MM-DD)", elem_id="export-until")
                    self.ex_review_votes = gr.Checkbox(value=True, label="Preferences: count A/B review votes",
                                                       elem_id="export-review-votes")
            with gr.Accordion("Preference pairs", open=False):
                with gr.Row():
                    self.ex_pairs = gr.Dropdown([("default (all; an UltraFeedback ranking: best_vs_worst)", ""),
                                                 *[(f"{k}: {v}", k) for k, v in PAIR_RULES.items()]], value="",
                                                label="Pair rule", elem_id="export-pairs")
                    self.ex_min_margin = gr.Number(value=1.0, label="Margin rule: least score margin or rank gap",
                                                   elem_id="export-min-margin")
                    self.ex_ties = gr.Dropdown(list(TIE_RULES), value="drop", label="Tied pairs", elem_id="export-ties")
                with gr.Row():
                    self.ex_min_votes = gr.Number(value=1, precision=0, minimum=1, label="At least this many votes",
                                                  elem_id="export-min-votes")
                    self.ex_min_agreement = gr.Number(value=0.0, minimum=0, maximum=1, label="Majority share at "
                                                      "least (0..1)", elem_id="export-min-agreement")
                    self.ex_exclude_ties = gr.Checkbox(label="Drop pairs with any tie vote", elem_id="export-exclude-ties")
                    self.ex_smoothing = gr.Checkbox(label="label_smoothing from the vote split",
                                                    elem_id="export-smoothing")
            self.export_button = gr.Button("Export", variant="primary", elem_id="export")
            self.export_result = gr.Markdown(elem_id="export-result")
            self.export_file = gr.File(label="Download", interactive=False, visible=False, elem_id="export-file")
        with gr.Accordion("Download a model version", open=False, elem_id="adapter-section"):
            with gr.Row():
                self.version = gr.Dropdown([], label="Model version", allow_custom_value=True, elem_id="adapter-version")
                self.adapter_button = gr.Button("Zip its adapter", elem_id="adapter-zip", scale=0)
            self.adapter_result = gr.Markdown(elem_id="adapter-result")
            self.adapter_file = gr.File(label="Download", interactive=False, visible=False, elem_id="adapter-file")

    def wire(self) -> None:
        project, store, access, downloads = self.project, self.store, self.access, self.downloads

        def choices(request: gr.Request):
            access.admin(request)
            versions = [v["id"] for v in store.stats()["model_versions"]]
            return (gr.update(choices=[u["name"] for u in store.users()]), gr.update(choices=versions))

        def run_import(files, fmt, kind, tags, on_error, max_rejects, request: gr.Request,
                       progress=gr.Progress()):  # noqa: B008 - how Gradio asks for one
            access.admin(request)
            text, rejects = import_uploads(project, store, downloads, list(files or []),
                                           fmt=None if fmt == "auto" else fmt, kind=None if kind == "auto" else kind,
                                           tags=tags, on_error=on_error, max_rejects=max_rejects,
                                           progress=lambda share, desc: progress(share, desc=desc))
            return text, gr.update(value=[str(p) for p in rejects] or None, visible=bool(rejects)), None

        def run_export(kind, fmt, style, split, seed, annotators, sources, judges, since, until, review_votes,
                       pairs, min_margin, ties, min_votes, min_agreement, exclude_ties, smoothing, request: gr.Request):
            access.admin(request)
            try:
                filters = export_filters(annotators=annotators, sources=sources, since=since, until=until,
                                         review_votes=review_votes, judges=judges, min_votes=min_votes,
                                         min_agreement=min_agreement, exclude_ties=exclude_ties, pairs=pairs,
                                         min_margin=min_margin, ties=ties, smoothing=smoothing)
            except DataError as exc:
                return f"**Not exported:** {exc}", gr.update(value=None, visible=False)
            text, archive = export_zip(project, store, downloads, kind=kind, fmt=fmt, style=style, split=split,
                                       seed=seed, filters=filters)
            return text, gr.update(value=str(archive) if archive else None, visible=archive is not None)

        def run_adapter(version, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - how Gradio asks for one
            access.admin(request)
            text, archive = adapter_zip(store, downloads, version, lambda share, desc: progress(share, desc=desc))
            return text, gr.update(value=str(archive) if archive else None, visible=archive is not None)

        self.tab.select(choices, outputs=[self.ex_annotators, self.version], api_name=False)
        self.import_button.click(run_import, inputs=[self.files, self.fmt, self.kind, self.tags, self.on_error,
                                                     self.max_rejects],
                                 outputs=[self.import_result, self.rejects, self.files], api_name="import_files")
        self.export_button.click(run_export, inputs=[self.ex_kind, self.ex_format, self.ex_style, self.ex_split,
                                                     self.ex_seed, self.ex_annotators, self.ex_sources, self.ex_judges,
                                                     self.ex_since, self.ex_until, self.ex_review_votes, self.ex_pairs,
                                                     self.ex_min_margin, self.ex_ties, self.ex_min_votes,
                                                     self.ex_min_agreement, self.ex_exclude_ties, self.ex_smoothing],
                                 outputs=[self.export_result, self.export_file], api_name="export_dataset")
        self.adapter_button.click(run_adapter, inputs=self.version, outputs=[self.adapter_result, self.adapter_file],
                                  api_name="download_adapter")
