"""Small file helpers shared by every atomic write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_public(path: str | os.PathLike) -> None:
    """Give a temporary file (``tempfile.mkstemp`` makes it owner-only) the mode a normally created file
    would have, ``0o666`` minus the umask, before it is renamed into place."""
    os.chmod(path, 0o666 & ~_umask())


def atomic_write(path: str | os.PathLike, write, binary: bool = True) -> Path:
    """Write ``path`` all at once or not at all: ``write(f)`` fills a temporary file beside it, which then
    gets the usual file mode and is renamed over ``path``.  On any failure (or Ctrl-C) the temporary file
    is removed and an existing ``path`` is left untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
        make_public(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
