"""Writing what the user asked for without ever leaving half a file: temp file, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from fitvstape.errors import InputError


@contextmanager
def atomic_open(path: Path, mode: str) -> Iterator[IO[Any]]:
    """Write to a temp file in ``path``'s folder, then rename it over ``path`` in one step."""
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            if hasattr(os, "fchmod"):  # POSIX: mkstemp makes 0600; use a new file's usual mode
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
