"""Files and directories readable by their owner only: the data directory is 0700, files 0600.

Everything in the data directory is sensitive (wrapped keys, token hashes, personal text in
the views, attachments, the signing key), so nothing there is created readable by others.
SQLite gives a database's `-wal` and `-shm` files the mode of the database file itself, so
creating the database file 0600 before SQLite opens it covers those too. Files and folders
that an earlier release made with the default umask are tightened when opened.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Make `path` (and missing parents) a directory only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def secure_data_dir(path: Path) -> Path:
    """The data directory, 0700, with what an earlier release left in it tightened too.

    Only its own entries are visited (not the blob tree): a folder's 0700 already keeps
    everyone else out of what is below it.
    """
    private_dir(path)
    for entry in path.iterdir():
        if entry.is_symlink():
            continue
        with contextlib.suppress(FileNotFoundError):  # a temporary file, gone meanwhile
            _tighten(entry, DIR_MODE if entry.is_dir() else FILE_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a file only its owner can read (an empty one if new).

    Also tightens a SQLite database's `-wal`/`-shm` files if an earlier run left them open.
    Its folder is made if missing (0700), but an existing one is left as it is.
    """
    _parent(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _tighten(path, FILE_MODE)
    for suffix in ("-wal", "-shm", "-journal"):
        sidecar = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            _tighten(sidecar, FILE_MODE)
    return path


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to `path` readable by its owner only, replacing it atomically.

    `exclusive` refuses to replace an existing file (FileExistsError).
    """
    _parent(path)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        return
    with writing_private(path) as file:
        file.write(data)


@contextlib.contextmanager
def writing_private(path: Path) -> Iterator[BinaryIO]:
    """A file to write piece by piece, readable by its owner only; it replaces `path`
    atomically when the block ends, and is thrown away if the block fails."""
    _parent(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)


def _tighten(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 != mode:
        os.chmod(path, mode)
