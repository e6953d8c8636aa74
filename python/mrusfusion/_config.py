"""Thread settings and the build report (``show_config``, ``mrusfusion info``).

One setting controls both the OpenMP kernels and the pyFFTW transforms: the ``threads=``
argument of an entry point, else :func:`set_num_threads`, else the environment variable
``MRUSFUSION_NUM_THREADS``, else all cores available to this process, one per
:data:`PIXELS_PER_THREAD` pixels of the problem at most.
"""
from __future__ import annotations

import os
import platform
import sys
from typing import Optional

_ENV = "MRUSFUSION_NUM_THREADS"
_override: Optional[int] = None
#: By default a problem gets one thread per this many fine-grid pixels (and at least one). On a
#: 2-core machine a PALM iteration at 128x128 took 3.7 times longer on 2 threads than on 1, and
#: 1.2 times longer at 256x256, while 384x384 gained 1.14 times and 512x512 1.4 times: waking
#: threads costs more than small images give them to do.
PIXELS_PER_THREAD = 65536


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _check_threads(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        hasattr(value, "__index__")
    ):
        raise TypeError(f"`{name}` must be a positive integer, got {value!r}")
    n = int(value)
    if n < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {n}")
    cap = max_threads()
    if n > cap:
        # 10000 threads on 2 cores took 18 s for one iteration, and under a memory cap libgomp
        # exited the interpreter when it could not create them: refuse rather than try.
        raise ValueError(f"`{name}` must be at most {cap} ({OVERSUBSCRIPTION} threads per core "
                         f"available to this process), got {n}")
    return n


#: Threads allowed per available core: a little oversubscription can hide I/O or a busy core,
#: far more only adds scheduling and per-thread buffers.
OVERSUBSCRIPTION = 4


def max_threads() -> int:
    """The largest thread count accepted: :data:`OVERSUBSCRIPTION` per available core."""
    return OVERSUBSCRIPTION * _available_cores()


def set_num_threads(n: Optional[int]) -> None:
    """Set the default thread count of OpenMP kernels and FFTs (``None`` restores the default).

    Parameters
    ----------
    n : int or None
        Number of threads, at least 1.
    """
    global _override
    _override = None if n is None else _check_threads(n, "n")


def get_num_threads(threads: Optional[int] = None, pixels: Optional[int] = None) -> int:
    """Resolve a thread count.

    Parameters
    ----------
    threads : int, optional
        Explicit request (as given to an entry point's ``threads=``). Takes precedence.
    pixels : int, optional
        Size of the problem (fine-grid pixels). Only the automatic default uses it.

    Returns
    -------
    int
        ``threads`` if given, else the value of :func:`set_num_threads`, else
        ``$MRUSFUSION_NUM_THREADS``, else the number of cores available to this process,
        capped at one thread per :data:`PIXELS_PER_THREAD` pixels when ``pixels`` is given.

    Raises
    ------
    ValueError
        If ``threads`` or the environment variable is not a positive integer.
    """
    if threads is not None:
        return _check_threads(threads, "threads")
    if _override is not None:
        return _override
    env = os.environ.get(_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"environment variable {_ENV} must be a positive integer, "
                             f"got {env!r}") from None
        return _check_threads(n, _ENV)
    cores = _available_cores()
    if pixels is not None:
        return max(1, min(cores, int(pixels) // PIXELS_PER_THREAD))
    return cores


def config() -> dict:
    """The build and runtime configuration as a dictionary (what :func:`show_config` prints)."""
    import numpy
    import scipy

    from . import _core
    from ._version import __version__

    info = dict(_core.build_info())
    try:
        import pyfftw

        fft = {"backend": "pyFFTW", "version": pyfftw.__version__}
    except ImportError:  # pragma: no cover - pyfftw is a hard dependency
        fft = {"backend": "numpy.fft", "version": numpy.__version__}
    threads = get_num_threads()
    return {
        "mrusfusion": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "compiler": info["compiler"],
        "cxx_flags": info["cxx_flags"].strip(),
        "build_type": info["build_type"],
        "simd": info.get("simd", "baseline"),
        "openmp": info["openmp"],
        "openmp_version": info["openmp_version"],
        "threads": threads,
        "threads_source": "MRUSFUSION_NUM_THREADS" if os.environ.get(_ENV) else "cores available",
        "fft_backend": fft["backend"],
        "fft_version": fft["version"],
        "fft_threads": threads,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
    }


def show_config(file=None) -> None:
    """Print the package version, the compiler and flags of the C++ core, OpenMP and FFT status,
    thread counts, and NumPy and SciPy versions.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default ``sys.stdout``).
    """
    c = config()
    lines = [
        f"mrusfusion {c['mrusfusion']} (Python {c['python']}, {c['platform']})",
        f"  C++ core   : {c['compiler']}, {c['build_type']}, flags: {c['cxx_flags']}",
        f"  kernels    : {c['simd']} build (MRUSFUSION_SIMD=baseline forces the portable one)",
        "  OpenMP     : "
        f"{'on (version ' + str(c['openmp_version']) + ')' if c['openmp'] else 'off'}"
        f", {c['threads']} thread(s) [{c['threads_source']}]",
        f"  FFT        : {c['fft_backend']} {c['fft_version']}, {c['fft_threads']} thread(s)",
        f"  NumPy      : {c['numpy']}",
        f"  SciPy      : {c['scipy']}",
    ]
    print("\n".join(lines), file=file or sys.stdout)
