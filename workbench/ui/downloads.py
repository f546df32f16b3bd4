"""The files the server makes for admins to download (an export, a rejects file, a model version's adapter),
kept in one folder the server owns; the guard (workbench/ui/guard.py) serves files under it to signed-in
admins and no other file to anyone.

The folder is a fresh one under Gradio's cache (so Gradio serves each file in place instead of copying it),
each download in its own random subfolder. A subfolder is removed an hour after it was made (when the next
download is made), the whole folder when the server exits."""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

# How long a download link works: long enough to click it, short enough that big exports do not pile up.
DOWNLOAD_TTL_S = 3600
# Already compressed: stored as they are in a zip (deflating a multi-GB safetensors file gains nothing).
STORED = {".safetensors", ".bin", ".pt", ".pth", ".gguf", ".gz", ".zip", ".parquet", ".zst", ".png", ".jpg"}


class Downloads:
    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def create(cls, parent: str | Path) -> Downloads:
        """A new folder under `parent` (Gradio's cache), private to this process's user, removed at exit."""
        Path(parent).mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="workbench-downloads-", dir=parent)).resolve()
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        return cls(root)

    def new(self) -> Path:
        """A fresh, empty subfolder for one download (its name is random, so no link can be guessed)."""
        self.prune()
        folder = self.root / secrets.token_hex(16)
        folder.mkdir(mode=0o700)
        return folder

    def prune(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for child in self.root.iterdir():
            try:
                if now - child.stat().st_mtime > DOWNLOAD_TTL_S:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                continue

    def copy(self, path: Path) -> Path:
        """A copy of `path` (a rejects file) in a fresh subfolder, under the same name."""
        return Path(shutil.copy2(path, self.new() / path.name))


def safe_name(text: str) -> str:
    """A file name part from a project name or a version id: letters, digits, '.', '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-")[:80] or "download"


def zip_folder(src: Path, dest: Path, top: str, progress: Callable[[int, int], None] | None = None) -> tuple[Path, int]:
    """Zip the regular files under `src` (links are left out: a link could lead anywhere on the server) into
    `dest`, under one folder `top`; returns (dest, the number of files). `progress(done, total)` per file."""
    files = sorted(Path(folder) / name for folder, _, names in os.walk(src)  # does not enter linked folders
                   for name in names if not (Path(folder) / name).is_symlink() and (Path(folder) / name).is_file())
    with zipfile.ZipFile(dest, "w", allowZip64=True) as zf:
        for n, path in enumerate(files, 1):
            method = zipfile.ZIP_STORED if path.suffix.lower() in STORED else zipfile.ZIP_DEFLATED
            zf.write(path, f"{top}/{path.relative_to(src).as_posix()}", compress_type=method)
            if progress:
                progress(n, len(files))
    os.chmod(dest, 0o600)
    return dest, len(files)


def size_text(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
