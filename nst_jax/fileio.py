"""Small file helpers shared by every atomic write."""

from __future__ import annotations

import os


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_public(path: str | os.PathLike) -> None:
    """Give a temporary file (``tempfile.mkstemp`` makes it owner-only) the mode a normally created file
    would have, ``0o666`` minus the umask, before it is renamed into place."""
    os.chmod(path, 0o666 & ~_umask())
