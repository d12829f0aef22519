"""Atomic writes: stage beside the target, flush, then rename, so a crash leaves the old or the new.

One helper for every folder or file lmforge publishes (the tokenized-data cache, the built-in model
conversion, merged exports, JSON artifacts). A reader never sees half a cache, half a model or half
a JSON file; a save killed midway leaves only a hidden ``.<name>.tmp-*`` sibling, removed on failure.

Permissions follow the user's umask, as files written by any other tool do: ``tempfile.mkdtemp``
makes 0700 folders and safetensors writes 0600 files, which would make outputs private to their
owner (another user or a container could not read a model). Staged trees are chmodded to
``0777 & ~umask`` (folders, executables) and ``0666 & ~umask`` (files) before they are published.

Cost: one fsync pass over the staged files (seconds for multi-GB models on slow disks).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where Linux exposes it (/proc), else set and reset."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def apply_umask(path: Path, umask: int | None = None) -> None:
    """chmod one file or folder to the mode a plain ``open``/``mkdir`` would have given it."""
    mask = current_umask() if umask is None else umask
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return
    executable = stat.S_ISDIR(mode) or bool(mode & 0o111)
    os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def apply_umask_tree(root: Path, umask: int | None = None) -> None:
    """``apply_umask`` on ``root`` and everything below it."""
    mask = current_umask() if umask is None else umask
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            apply_umask(Path(folder) / name, mask)
    apply_umask(root, mask)


def fsync_tree(path: Path) -> None:
    """Flush every file, then every folder (children first), so a rename publishes data on disk."""
    for root, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            fsync_file(Path(root) / name)
        fsync_dir(Path(root))


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a folder so a rename or new entry inside it survives a crash (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and Windows) refuse fsync on folders
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(target: str | Path, *, replace: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes ``target`` in one rename.

    ``replace``: an existing ``target`` is swapped out (moved aside, then deleted, so one complete
    copy exists at every instant); when False and ``target`` appeared meanwhile (another process
    finished the same work first), the staged copy is dropped and ``target`` kept. On any error the
    staging folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
        apply_umask_tree(staging)
        fsync_tree(staging)
        if target.exists() and not replace:
            shutil.rmtree(staging)
            return
        publish(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish(staged: Path, target: Path) -> None:
    """Rename ``staged`` to ``target``; an existing ``target`` is moved aside first, then removed."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(staged, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, target)
    fsync_dir(target.parent)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a flushed temporary file and one rename."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, payload: Any, indent: int = 2) -> Path:
    """``atomic_write_text`` of ``payload`` as JSON (non-JSON values written with ``str``)."""
    return atomic_write_text(path, json.dumps(payload, indent=indent, default=str, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def umask_permissions(folder: str | Path) -> Iterator[None]:
    """Give what a save creates or rewrites directly inside ``folder`` the umask's permissions.

    For saves that write in place (``Trainer.save_model``): safetensors creates 0600 files. Only
    ``folder``'s own entries are compared (so ``output_dir: .`` costs one listing): a new or
    rewritten file, or a new sub-folder with everything in it. Entries that were there and did not
    change keep their mode (a user's own files).
    """
    folder = Path(folder)
    before = _entries(folder)
    try:
        yield
    finally:
        mask = current_umask()
        for path, identity in _entries(folder).items():
            if before.get(path) == identity:
                continue
            with contextlib.suppress(FileNotFoundError):  # a temporary file renamed meanwhile
                if path.is_dir() and not path.is_symlink():
                    if path not in before:
                        apply_umask_tree(path, mask)
                else:
                    apply_umask(path, mask)


def _entries(folder: Path) -> dict[Path, tuple[int, int]]:
    """Each entry's identity; one that vanishes while listed (another process's temporary file) is
    skipped."""
    if not folder.is_dir():
        return {}
    found: dict[Path, tuple[int, int]] = {}
    for path in folder.iterdir():
        with contextlib.suppress(FileNotFoundError):
            info = path.lstat()
            found[path] = (info.st_ino, info.st_mtime_ns)
    return found
