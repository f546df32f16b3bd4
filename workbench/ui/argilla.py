"""Argilla in the browser, for admins (the Project tab): a task as an Argilla dataset folder (a zip to load with
`rg.Dataset.from_disk`), an uploaded Argilla folder (a zip of `Dataset.to_disk` or of a downloaded `to_hub`
repository) imported as a task, and push / pull against the team's Argilla server. Each is the CLI's own path
(`workbench argilla export|import|push|pull`): the same checks, one transaction, the same one-line errors.

The server and its key come from the workbench server's environment (ARGILLA_API_URL, ARGILLA_API_KEY), never
from the page, so an admin's browser never holds or sends the key."""

from __future__ import annotations

import os
import shutil
import zipfile
from datetime import datetime
from pathlib import Path, PurePosixPath

import gradio as gr

from workbench.argilla import ArgillaFormatError, export_task, import_dataset
from workbench.config import Project
from workbench.errors import WorkbenchError
from workbench.store import Store
from workbench.ui.access import Access
from workbench.ui.data import comma_list, upload_folder
from workbench.ui.downloads import Downloads, safe_name, size_text, zip_folder
from workbench.ui.render import code, inline

MAX_ZIP_MEMBERS = 10_000  # an Argilla folder holds a handful of files; a zip of thousands is not one


def server_line() -> str:
    url = os.environ.get("ARGILLA_API_URL")
    if url and os.environ.get("ARGILLA_API_KEY"):
        return f"Argilla server: {code(url)} (ARGILLA_API_URL; its key from ARGILLA_API_KEY)."
    return ("No Argilla server configured: push and pull need ARGILLA_API_URL and ARGILLA_API_KEY set where the "
            "workbench runs. Folders work without one.")


# ------------------------------------------------------------------ out
def export_zip(store: Store, downloads: Downloads, task: str | None, version: str | None,
               users: str | None = None) -> tuple[str, Path | None]:
    """The task in Argilla's to_disk layout, zipped: (the result line, the zip). `users`: a users file (Argilla
    ids -> names) that gives annotators their Argilla ids back."""
    if not task:
        return "Choose a task first.", None
    folder = downloads.new()
    name = f"{safe_name(task)}-argilla-{datetime.now():%Y%m%d-%H%M%S}"
    try:
        report = export_task(store, task, folder / name, version=version or None, users_file=users or None)
    except WorkbenchError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return f"**Not exported:** {inline(str(exc).replace(f'{folder}{os.sep}', ''))}", None
    archive, _ = zip_folder(folder / name, folder / f"{name}.zip", name)
    shutil.rmtree(folder / name)
    return (f"**Exported** task {code(task)} as an Argilla dataset: {report.records} records, {report.responses} "
            f"responses, {report.suggestions} suggestions, {report.users} users; {size_text(archive.stat().st_size)} "
            f"zipped. Unzip it and load it with {code('rg.Dataset.from_disk(FOLDER, client=client)')}."), archive


def push(store: Store, task: str | None, workspace: str, name: str) -> str:
    from workbench.argilla import live

    if not task:
        return "Choose a task first."
    try:
        return inline(live.push(store, live.Server.configured(), task, workspace=workspace.strip() or None,
                                name=name.strip() or None))
    except WorkbenchError as exc:
        return f"**Not pushed:** {inline(str(exc))}"


# ------------------------------------------------------------------ in
def unpack(archive: Path, dest: Path, max_bytes: int) -> Path:
    """Extract an uploaded zip into `dest` and return the dataset folder in it (the one holding .argilla/).
    Refuses what no Argilla folder is: a member outside the folder (an absolute path or '..'), a link, more
    than MAX_ZIP_MEMBERS files, or more than `max_bytes` once inflated (a zip bomb)."""
    shown = archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise ArgillaFormatError(f"{shown}: not a zip file (zip the dataset folder, or upload the zip a "
                                 "download gave you)") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise ArgillaFormatError(f"{shown}: {len(members):,} files in the zip; an Argilla folder holds a few")
        total = 0
        for m in members:
            path = PurePosixPath(m.filename.replace("\\", "/"))
            if path.is_absolute() or ".." in path.parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise ArgillaFormatError(f"{shown}: {m.filename!r} would land outside the dataset folder")
            total += m.file_size
            if total > max_bytes:
                raise ArgillaFormatError(f"{shown}: more than {size_text(max_bytes)} once unzipped "
                                         "(max_upload_bytes)")
        dest.mkdir(parents=True, mode=0o700)
        for m in members:  # file_size is what the zip says; read at most that much of each member
            target = dest / PurePosixPath(m.filename.replace("\\", "/"))
            if m.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, target.open("wb") as out:
                data = src.read(m.file_size + 1)
                if len(data) > m.file_size:
                    raise ArgillaFormatError(f"{shown}: {m.filename!r} is larger than the zip says")
                out.write(data)
    found = sorted({p.parent.parent for p in dest.rglob(".argilla/settings.json")}, key=lambda p: len(p.parts))
    if not found:
        raise ArgillaFormatError(f"{shown}: no .argilla/settings.json in the zip (zip the whole folder that "
                                 "Dataset.to_disk wrote, or the whole downloaded to_hub repository)")
    return found[0]


def import_zip(project: Project, store: Store, path: str | None, *, task: str, prompt_field: str, tags: str,
               users: str | None = None) -> str:
    """Import an uploaded Argilla folder (zipped) as `workbench argilla import` does: all of it, or nothing.
    `users`: a users file that names the annotators (Argilla ids -> names), as `--users`."""
    if not path:
        return "Choose a zip of an Argilla dataset folder first."
    upload = Path(path)
    folder = upload_folder(project)
    tag_list = comma_list(tags)
    inside = f"{folder / 'zip'}{os.sep}"  # an error names a file as it is in the zip, not the server's copy
    try:
        dataset = unpack(upload, folder / "zip", project.config.max_upload_bytes)
        report = import_dataset(store, dataset, task=task.strip() or None, prompt_field=prompt_field.strip() or None,
                                tags=tag_list, users_file=users or None)
    except WorkbenchError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return f"**Nothing imported:** {inline(str(exc).replace(inside, ''))}"
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.move(upload, folder / upload.name)  # the project keeps what it imported, as data.py does
    return "\n".join([f"**Imported** {inline(upload.name)}:", "", *(f"- {inline(line)}"
                                                                    for line in report.summary().splitlines())])


def pull(store: Store, name: str, *, workspace: str, task: str, prompt_field: str, tags: str) -> str:
    from workbench.argilla import live

    if not name.strip():
        return "Give the dataset's name on the server first."
    tag_list = comma_list(tags)
    try:
        report = live.pull(store, live.Server.configured(), name.strip(), workspace=workspace.strip() or None,
                           task=task.strip() or None, prompt_field=prompt_field.strip() or None, tags=tag_list)
    except WorkbenchError as exc:
        return f"**Nothing pulled:** {inline(str(exc))}"
    return "\n".join([f"**Pulled** {inline(name.strip())}:", "",
                      *(f"- {inline(line)}" for line in report.summary().splitlines())])


# ------------------------------------------------------------------ the section
class ArgillaSection:
    """Layout first (inside the Project tab), then `wire` once every tab exists."""

    def __init__(self, project: Project, store: Store, access: Access, tab: gr.Tab, downloads: Downloads):
        self.project, self.store, self.access, self.tab, self.downloads = project, store, access, tab, downloads
        with gr.Accordion("Argilla", open=False, elem_id="argilla-section"):
            self.server = gr.Markdown(server_line(), elem_id="argilla-server")
            with gr.Row():
                self.task = gr.Dropdown([], label="Task", elem_id="argilla-task")
                self.version = gr.Dropdown([""], value="", label="Suggest this model version's replies (none: the "
                                           "task's own)", elem_id="argilla-version")
                self.workspace = gr.Textbox(label="Workspace on the server (empty: its default)",
                                            elem_id="argilla-workspace")
                self.name = gr.Textbox(label="Push: dataset name (empty: the task's)", elem_id="argilla-name")
            with gr.Row():
                self.export_button = gr.Button("Download as an Argilla folder", elem_id="argilla-export")
                self.push_button = gr.Button("Push to the server", elem_id="argilla-push")
            self.out_result = gr.Markdown(elem_id="argilla-out-result")
            self.out_file = gr.File(label="Download", interactive=False, visible=False, elem_id="argilla-file")
            gr.Markdown("**Bring a dataset in**: upload a zip of its folder, or pull it by name from the server.")
            with gr.Row():
                self.upload = gr.File(label="Argilla dataset folder, zipped", file_count="single", type="filepath",
                                      file_types=[".zip"], elem_id="argilla-upload")
                self.users = gr.File(label="Users (optional, JSON: Argilla user ids -> names, or the users API's "
                                     "list): names the annotators in and gives them their ids back out",
                                     file_count="single", type="filepath", file_types=[".json"],
                                     elem_id="argilla-users")
            with gr.Row():
                self.pull_name = gr.Textbox(label="Pull: the dataset's name on the server", elem_id="argilla-pull-name")
                self.into = gr.Textbox(label="Into task (empty: the dataset's name)", elem_id="argilla-into")
                self.prompt_field = gr.Textbox(label="Prompt field (empty: guessed)", elem_id="argilla-prompt-field")
                self.tags = gr.Textbox(label="Tag the new prompts (comma separated)", elem_id="argilla-tags")
            with gr.Row():
                self.import_button = gr.Button("Import the zip", variant="primary", elem_id="argilla-import")
                self.pull_button = gr.Button("Pull from the server", elem_id="argilla-pull")
            self.in_result = gr.Markdown(elem_id="argilla-in-result")

    def wire(self) -> None:
        project, store, access, downloads = self.project, self.store, self.access, self.downloads

        def choices(request: gr.Request):
            access.admin(request)
            versions = [v["id"] for v in store.stats()["model_versions"] if v["stage"] != "reward"]
            return (gr.update(choices=[(t.name, t.name) for t in store.tasks()]), gr.update(choices=["", *versions]),
                    server_line())

        def run_export(task, version, users, request: gr.Request):
            access.admin(request)
            text, archive = export_zip(store, downloads, task, version, users)
            return text, gr.update(value=str(archive) if archive else None, visible=archive is not None)

        def run_push(task, workspace, name, request: gr.Request):
            access.admin(request)
            return push(store, task, workspace or "", name or ""), gr.update(value=None, visible=False)

        def run_import(path, users, into, prompt_field, tags, request: gr.Request):
            access.admin(request)
            return import_zip(project, store, path, task=into or "", prompt_field=prompt_field or "",
                              tags=tags or "", users=users), None

        def run_pull(name, workspace, into, prompt_field, tags, request: gr.Request):
            access.admin(request)
            return pull(store, name or "", workspace=workspace or "", task=into or "",
                        prompt_field=prompt_field or "", tags=tags or "")

        self.tab.select(choices, outputs=[self.task, self.version, self.server], api_name=False)
        self.export_button.click(run_export, inputs=[self.task, self.version, self.users],
                                 outputs=[self.out_result, self.out_file],
                                 api_name="argilla_export")
        self.push_button.click(run_push, inputs=[self.task, self.workspace, self.name],
                               outputs=[self.out_result, self.out_file], api_name="argilla_push")
        self.import_button.click(run_import, inputs=[self.upload, self.users, self.into, self.prompt_field,
                                                       self.tags],
                                 outputs=[self.in_result, self.upload], api_name="argilla_import")
        self.pull_button.click(run_pull, inputs=[self.pull_name, self.workspace, self.into, self.prompt_field,
                                                 self.tags], outputs=self.in_result, api_name="argilla_pull")
