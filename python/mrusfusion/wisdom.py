"""FFTW wisdom that persists: FFTW_MEASURE plans are measured once per machine, then reused.

FFTW_MEASURE chooses among FFT algorithms by timing them (about 1-2 s at 600x600 and 7 s at
2400x2400 on a 2-core machine) and keeps its choice as *wisdom*, keyed by size, dtype, thread
count, alignment and planner effort. This module keeps that wisdom in the user's cache folder,
so that a second process gets its MEASURE plans in milliseconds:

* the file is ``fftw-wisdom.json`` in ``platformdirs.user_cache_dir("mrusfusion")``; it holds
  one entry per machine (CPU model and features) and FFTW build, so a home folder shared by
  different machines serves each its own plans;
* it is read once per process, when the first plan above FFTW_ESTIMATE is made, and rewritten
  (temporary file + ``os.replace``) whenever planning learnt something new, after merging what
  other processes saved meanwhile;
* a corrupt, truncated or foreign file is ignored with a :class:`RuntimeWarning`, never an
  error, and replaced at the next save;
* ``MRUSFUSION_WISDOM=0`` (or ``off``, ``false``, ``no``) turns reading and writing off; any
  other value is the path of the file to use instead.

Without platformdirs the folder follows the XDG rules (``$XDG_CACHE_HOME/mrusfusion``, else
``~/.cache/mrusfusion``) on Linux and the BSDs, which is exactly what platformdirs gives there,
so installing it later does not move the file; on macOS and Windows, whose cache folders are
elsewhere, nothing is kept between processes rather than a guessed folder being littered.

Reproducibility: FFTW_ESTIMATE plans are made with FFTW's global wisdom emptied, so they never
pick up a measured plan (FFTW would otherwise use wisdom of a higher effort) and stay
bit-reproducible whatever ran before in the process. MEASURE plans are reproducible on one
machine for as long as its wisdom file is kept: every later process uses the plan the first one
measured. All planning of the package goes through :func:`planning`, which serialises it and
leaves FFTW's global wisdom as it found it.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pyfftw

__all__ = ["ENV_VAR", "FILE_NAME", "WisdomStatus", "wisdom_path", "planning", "status", "forget",
           "disabled"]

#: Environment variable: ``0``/``off``/``false``/``no`` disables the file, a path replaces it.
ENV_VAR = "MRUSFUSION_WISDOM"
#: Name of the wisdom file in the cache folder.
FILE_NAME = "fftw-wisdom.json"

_FORMAT = "mrusfusion FFTW wisdom 1"
_OFF = frozenset({"0", "off", "false", "no", "none"})
_PRECISIONS = ("double", "single", "long double")  # the order of pyfftw.export_wisdom()

Wisdom = Tuple[bytes, bytes, bytes]


@dataclass(frozen=True)
class WisdomStatus:
    """What the persistent wisdom did in this process.

    Attributes
    ----------
    path : pathlib.Path or None
        The wisdom file, or None when persistence is off or has no folder.
    loaded : bool
        The file was read and its entry for this machine imported into FFTW.
    imported : tuple of bool
        ``pyfftw.import_wisdom``'s success flags (double, single, long double) for that entry.
    imported_bytes : int
        Size of the wisdom imported from the file.
    learnt : int
        Plannings in this process that added wisdom (a plan measured rather than recalled).
    saved : int
        Times the file was written by this process.
    message : str
        One line on the state of the file.
    """

    path: Optional[Path]
    loaded: bool
    imported: Tuple[bool, bool, bool]
    imported_bytes: int
    learnt: int
    saved: int
    message: str


def _cache_folder() -> Optional[Path]:
    try:
        import platformdirs
    except ImportError:
        if sys.platform.startswith(("win", "cygwin", "darwin")):
            return None
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        # The XDG spec ignores relative paths, and platformdirs' Linux answer is this one.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
        return base / "mrusfusion"
    return Path(platformdirs.user_cache_dir("mrusfusion", appauthor=False))


def wisdom_path() -> Optional[Path]:
    """The wisdom file used now, or None when persistence is off.

    Returns
    -------
    pathlib.Path or None
        ``$MRUSFUSION_WISDOM`` if it names a file, None if it is ``0``/``off``/``false``/``no``,
        else ``fftw-wisdom.json`` in the user's cache folder (None where there is none).

    Examples
    --------
    >>> import os
    >>> from mrusfusion.wisdom import wisdom_path
    >>> os.environ["MRUSFUSION_WISDOM"] = "0"
    >>> wisdom_path() is None
    True
    >>> os.environ["MRUSFUSION_WISDOM"] = "/tmp/plans.json"
    >>> wisdom_path().name
    'plans.json'
    >>> del os.environ["MRUSFUSION_WISDOM"]
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    folder = _cache_folder()
    return None if folder is None else folder / FILE_NAME


def _cpu_fields() -> dict:
    fields = {"machine": platform.machine(), "processor": platform.processor()}
    with contextlib.suppress(OSError, UnicodeDecodeError):
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                name, _, value = line.partition(":")
                name = name.strip()
                if name in ("model name", "flags", "Features", "CPU part") and name not in fields:
                    fields[name] = value.strip()
    return fields


@functools.lru_cache(maxsize=1)
def _machine_key() -> Tuple[str, str]:
    """A key for this CPU and FFTW build, and a short human description of them."""
    # The first line of exported wisdom carries FFTW's version and the checksums of its solver
    # set: FFTW refuses wisdom from another build, so such a build must not share an entry.
    headers = [w.split(b"\n", 1)[0].decode("ascii", "replace") for w in pyfftw.export_wisdom()]
    cpu = _cpu_fields()
    text = "\n".join([f"{k}: {v}" for k, v in sorted(cpu.items())] + headers)
    about = " ".join(v for v in (cpu["machine"], cpu.get("model name", cpu["processor"])) if v)
    version = headers[0].split(" ")[0].lstrip("(") if headers[0] else "fftw"
    return hashlib.sha256(text.encode()).hexdigest()[:16], f"{about}, {version}"


class _Store:
    """The package's wisdom, kept apart from FFTW's global state between plannings."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.memory: Optional[Wisdom] = None  # the file's entry plus what this process measured
        self.source: Optional[Path] = None  # the file `memory` was read from
        self.read_done = False
        self.imported: Tuple[bool, bool, bool] = (False, False, False)
        self.imported_bytes = 0
        self.learnt = 0
        self.saved = 0
        self.message = "no plan above FFTW_ESTIMATE made yet"
        self.save_warned = False

    def _read_entry(self, path: Path) -> Tuple[dict, Optional[Wisdom], Optional[str]]:
        """The file's document, this machine's entry, and why the file is unusable (or None).

        A missing file, or one without an entry for this machine, is no problem."""
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return {}, None, None
        except (OSError, UnicodeDecodeError) as exc:
            return {}, None, f"it cannot be read ({exc})"
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if not (isinstance(doc, dict) and doc.get("format") == _FORMAT
                and isinstance(doc.get("machines"), dict)):
            return {}, None, "it is not an mrusfusion wisdom file (corrupt, truncated or foreign)"
        entry = doc["machines"].get(_machine_key()[0])
        if entry is None:
            return doc, None, None
        if not (isinstance(entry, dict)
                and all(isinstance(entry.get(p), str) for p in _PRECISIONS)):
            return doc, None, "its entry for this machine is malformed"
        return doc, tuple(entry[p].encode("ascii", "replace") for p in _PRECISIONS), None

    def _ignore(self, path: Path, reason: str) -> None:
        self.message = (f"mrusfusion ignores the FFTW wisdom file {path} because {reason}; "
                        "plans are measured afresh and the file is replaced when they are saved.")
        warnings.warn(self.message, RuntimeWarning, stacklevel=2)

    def _load(self, path: Optional[Path]) -> None:
        """Read ``path`` into memory, once per process (again only if the path changes)."""
        if self.read_done and path == self.source:
            return
        self.source, self.read_done = path, True
        self.imported, self.imported_bytes = (False, False, False), 0
        if path is None:
            self.message = f"persistence off ({ENV_VAR}=0 or no cache folder)"
            return
        _, entry, problem = self._read_entry(path)
        if problem is not None:
            self._ignore(path, problem)
            return
        if entry is None:
            self.message = f"no wisdom for this machine in {path} yet"
            return
        pyfftw.forget_wisdom()
        d, f, l = (bool(ok) for ok in pyfftw.import_wisdom(entry))
        flags = (d, f, l)
        # A precision the build lacks exports b"" and never imports; the others must all succeed.
        expected = tuple(bool(w) for w in pyfftw.export_wisdom())
        if any(e and not f for e, f in zip(expected, flags)):
            pyfftw.forget_wisdom()
            self._ignore(path, "FFTW refused its entry for this machine (corrupt, or from "
                               "another FFTW build)")
            return
        merged = pyfftw.export_wisdom()
        if self.memory is not None:  # plans measured earlier in this process keep priority
            pyfftw.import_wisdom(self.memory)
            merged = pyfftw.export_wisdom()
        self.memory = merged
        self.imported, self.imported_bytes = flags, sum(len(w) for w in entry)
        self.message = f"imported {self.imported_bytes} bytes of wisdom from {path}"

    def _save(self, path: Path, learnt: Wisdom) -> None:
        """Merge ``learnt`` into the file's current entry and replace the file atomically."""
        from .io.atomic import write_atomic  # io is a lower floor; imported only when saving

        doc, current, _ = self._read_entry(path)
        pyfftw.forget_wisdom()
        if current is not None:
            pyfftw.import_wisdom(current)
        # Imported last, so this process's own choices win over another's for the same problem.
        pyfftw.import_wisdom(learnt)
        merged = pyfftw.export_wisdom()
        key, about = _machine_key()
        machines = dict(doc.get("machines", {}))
        machines[key] = {"about": about,
                         **{p: w.decode("ascii") for p, w in zip(_PRECISIONS, merged)}}
        text = json.dumps({"format": _FORMAT, "machines": machines}, indent=1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                         overwrite=True)
        except OSError as exc:
            if not self.save_warned:
                self.save_warned = True
                self.message = (f"mrusfusion could not save FFTW wisdom to {path} ({exc}); "
                                "plans will be measured again by the next process.")
                warnings.warn(self.message, RuntimeWarning, stacklevel=2)
            return
        self.memory = merged
        self.saved += 1
        self.message = f"saved {sum(len(w) for w in merged)} bytes of wisdom to {path}"


_STORE = _Store()


@contextlib.contextmanager
def planning(effort: str) -> Iterator[None]:
    """Context in which to create pyFFTW plans with the planner flag ``effort``.

    For FFTW_ESTIMATE, FFTW's wisdom is emptied for the duration, so the plans are the same in
    every process. For the higher efforts, the package's wisdom (the file's, read on first use,
    and what this process measured) is imported, and whatever planning adds is kept and saved.
    FFTW's global wisdom is restored on exit. Plannings are serialised: FFTW's planner is not
    thread-safe and pyFFTW's wisdom functions do not take its planning lock.

    Parameters
    ----------
    effort : str
        ``"FFTW_ESTIMATE"``, ``"FFTW_MEASURE"``, ``"FFTW_PATIENT"`` or ``"FFTW_EXHAUSTIVE"``.

    Yields
    ------
    None

    Examples
    --------
    >>> import numpy as np, pyfftw
    >>> from mrusfusion.wisdom import planning
    >>> a = pyfftw.empty_aligned((32, 32))
    >>> b = pyfftw.empty_aligned((32, 17), dtype=np.complex128)
    >>> with planning("FFTW_ESTIMATE"):
    ...     plan = pyfftw.FFTW(a, b, axes=(0, 1), flags=("FFTW_ESTIMATE",))
    """
    store = _STORE
    with store.lock:
        ambient = pyfftw.export_wisdom()
        pyfftw.forget_wisdom()
        try:
            if effort == "FFTW_ESTIMATE":
                yield
                return
            path = wisdom_path()
            store._load(path)
            pyfftw.forget_wisdom()
            if store.memory is not None:
                pyfftw.import_wisdom(store.memory)
            before = pyfftw.export_wisdom()
            yield
            after = pyfftw.export_wisdom()
            if after != before:
                store.learnt += 1
                store.memory = after
                if path is not None:
                    store._save(path, after)
        finally:
            pyfftw.forget_wisdom()
            pyfftw.import_wisdom(ambient)


def status() -> WisdomStatus:
    """What the persistent wisdom did in this process (for diagnostics and tests).

    Returns
    -------
    WisdomStatus

    Examples
    --------
    >>> from mrusfusion.wisdom import status
    >>> status().saved >= 0
    True
    """
    s = _STORE
    with s.lock:
        path = s.source if s.read_done else wisdom_path()
        return WisdomStatus(path, s.imported_bytes > 0, s.imported, s.imported_bytes,
                            s.learnt, s.saved, s.message)


def forget() -> None:
    """Forget the wisdom held in this process (the file is kept; it is read again on next use).

    For timing a first planning, together with ``MRUSFUSION_WISDOM=0``.

    Examples
    --------
    >>> from mrusfusion.wisdom import forget, status
    >>> forget()
    >>> status().learnt
    0
    """
    with _STORE.lock:
        pyfftw.forget_wisdom()
        _STORE.reset()


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Context in which plans above FFTW_ESTIMATE are measured as on a machine's first run.

    On entry this process's wisdom is forgotten (:func:`forget`) and ``MRUSFUSION_WISDOM=0`` set,
    so no file is read or written; on exit the variable is restored and what was measured inside
    is forgotten. For timing a first planning (``mrusfusion bench``); the environment is
    process-wide, so do not plan in other threads meanwhile.

    Yields
    ------
    None

    Examples
    --------
    >>> from mrusfusion.wisdom import disabled, wisdom_path
    >>> with disabled():
    ...     print(wisdom_path())
    None
    """
    before = os.environ.get(ENV_VAR)
    forget()
    os.environ[ENV_VAR] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = before
        forget()
