"""Progress display for long solves: a callback that draws a bar (tqdm) or prints a line.

The engine only calls callbacks; this module turns iterations into text on a stream.
"""
from __future__ import annotations

import sys
from typing import Optional, TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    """A callback that shows the iteration count and ``psi`` on ``file`` (stderr by default).

    Uses tqdm when it is installed (``pip install "mrusfusion[progress]"``), else prints one
    line every ``every`` iterations. Use as ``fuse(..., callback=ProgressBar(total=500))`` or
    as a context manager; :meth:`close` ends the bar.

    Parameters
    ----------
    total : int
        Expected number of iterations (the cap).
    desc : str
        Label of the bar.
    file : file-like, optional
        Stream to write to; default ``sys.stderr``.
    every : int
        Print interval without tqdm.
    unit : str
        What is counted (``"it"``; ``"pair"`` for a batch, see :meth:`advance`).
    """

    def __init__(self, total: int, *, desc: str = "fuse", file: Optional[TextIO] = None,
                 every: int = 10, unit: str = "it"):
        self.file = sys.stderr if file is None else file
        self.desc, self.every = desc, max(1, int(every))
        self.total, self.count = total, 0
        self.bar = None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.file)

    def __call__(self, state) -> None:
        psi = float(state.objective)
        if self.bar is not None:
            self.bar.set_postfix(psi=f"{psi:.6g}", refresh=False)
            self.bar.update(1)
        elif state.iteration % self.every == 0:
            print(f"{self.desc}: iteration {state.iteration}, psi = {psi:.8g}", file=self.file)

    def advance(self, label: str = "") -> None:
        """Count one finished item (a pair of a batch), naming it."""
        self.count += 1
        if self.bar is not None:
            self.bar.set_postfix_str(label, refresh=False)
            self.bar.update(1)
        else:
            print(f"{self.desc}: {self.count}/{self.total} {label}".rstrip(), file=self.file,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
