"""Atomic file creation: a file appears whole, with the usual permissions, or not at all.

Used by every writer of the package (images, figures, tables, JSON) so that an interrupted
run or a refused overwrite never leaves a half-written or clobbered file behind.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Optional

from .image import PathLike

__all__ = ["write_atomic"]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(
    path: PathLike,
    fill: Callable[[str], object],
    *,
    overwrite: bool = False,
    suffix: Optional[str] = None,
) -> Path:
    """Create ``path`` through ``fill(temporary_path)`` without ever leaving a partial file.

    ``fill`` writes the whole file at a temporary path in the target folder; the file is then
    flushed to disk and renamed into place (``os.replace``, or a hard link when ``overwrite`` is
    false, so that a file created meanwhile is never clobbered). On any failure the temporary
    file is removed and an existing target keeps its bytes. ``suffix`` (default: the target's)
    ends the temporary name, for writers that choose the format from it (``.nii.gz``).

    Parameters
    ----------
    path : str or os.PathLike
        The file to create.
    fill : callable
        ``fill(temporary_path)`` writes the complete file at ``temporary_path`` (a ``str``).
    overwrite : bool, default False
        Replace an existing ``path``. Without it an existing target is left untouched.
    suffix : str, optional
        End of the temporary file's name; default: the suffix of ``path``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder does not exist.
    IsADirectoryError
        If ``path`` is a folder.

    Notes
    -----
    The permissions are those of the file replaced, else ``0o666 & ~umask`` (the ones
    :func:`open` would give), not the ``0o600`` of :func:`tempfile.mkstemp`.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from mrusfusion.io import write_atomic
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = write_atomic(folder / "note.txt", lambda tmp: pathlib.Path(tmp).write_text("hi"))
    >>> path.read_text(), sorted(p.name for p in folder.iterdir())
    ('hi', ['note.txt'])
    >>> write_atomic(path, lambda tmp: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    FileExistsError: ...note.txt already exists; pass overwrite=True to replace it
    """
    target = Path(os.fspath(path)).expanduser()
    if target.is_dir():
        raise IsADirectoryError(f"{str(target)!r} is a directory")
    exists_msg = f"{target} already exists; pass overwrite=True to replace it"
    if target.exists() and not overwrite:
        raise FileExistsError(exists_msg)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist")
    suffix = target.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=folder)
    os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            mode = target.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)  # mkstemp's 0o600 would hide the file from other users
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # atomic and never clobbers a file created meanwhile
            except FileExistsError:
                raise FileExistsError(exists_msg) from None
            except OSError:  # filesystem without hard links
                if target.exists():
                    raise FileExistsError(exists_msg) from None
                os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target
