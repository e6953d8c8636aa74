"""The pairs of a batch: a manifest file, or pairs given in Python.

A manifest is a CSV file with a header row. Columns ``mr`` and ``us`` (paths, in any format
:func:`mrusfusion.io.load` reads) are required; ``name``, ``mask``, ``ratio``, ``mr_truth`` and
``us_truth`` are optional. Relative paths are relative to the manifest's folder. A pair's
``name`` (default: the US file's name without its extensions) names its outputs, so names must
be unique and safe as file names.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Optional, Union

import numpy as np

__all__ = ["Pair", "read_manifest", "as_pairs", "COLUMNS", "REQUIRED"]

REQUIRED = ("mr", "us")
COLUMNS = ("name", "mr", "us", "mask", "ratio", "mr_truth", "us_truth")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
Source = Union[str, Path, np.ndarray]


@dataclass(frozen=True, eq=False)
class Pair:
    """One MR/US pair of a batch.

    Attributes
    ----------
    name : str
        Names the outputs ``<name>_x<ext>`` and ``<name>_v<ext>``.
    mr, us : path or ndarray
        The images (arrays are fused as given and written as ``.npy``).
    mask, mr_truth, us_truth : path or ndarray, optional
        US field of view, and ground truths for metrics in the summary.
    ratio : int, optional
        Decimation ratio (default: from the spacings or the shapes).
    """

    name: str
    mr: Source
    us: Source
    mask: Optional[Source] = None
    ratio: Optional[int] = None
    mr_truth: Optional[Source] = None
    us_truth: Optional[Source] = None


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".nii.gz", ".nii", ".npy", ".npz", ".mat", ".png", ".tif", ".tiff", ".dcm"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return path.stem


def _check_names(pairs: List[Pair]) -> List[Pair]:
    seen = set()
    for p in pairs:
        if not isinstance(p.name, str) or not _SAFE.match(p.name):
            raise ValueError(f"pair name {p.name!r} is not usable as a file name (letters, "
                             "digits, '.', '_' and '-', not starting with a symbol)")
        if p.name in seen:
            raise ValueError(f"two pairs are named {p.name!r}; their outputs would collide "
                             "(give a `name` column)")
        seen.add(p.name)
    return pairs


def _ratio(text: str, where: str) -> Optional[int]:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{where}: `ratio` must be a positive integer, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{where}: `ratio` must be a positive integer, got {value}")
    return value


def read_manifest(path: Union[str, Path]) -> List[Pair]:
    """Read a manifest CSV (see the module notes).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of Pair
        In file order, paths resolved against the manifest's folder.

    Raises
    ------
    FileNotFoundError
        If the manifest does not exist.
    ValueError
        If a required column is missing, a row lacks ``mr`` or ``us``, a ``ratio`` is not a
        positive integer, or names collide or are not file-name safe.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "m.csv").write_text("mr,us,ratio\\na/mr1.nii.gz,a/us1.nii.gz,2\\n")
    >>> p = read_manifest(d / "m.csv")[0]
    >>> p.name, p.ratio, p.us == d / "a" / "us1.nii.gz"
    ('us1', 2, True)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {str(path)!r} not found")
    base = path.resolve().parent
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in fields]
        if missing:
            raise ValueError(f"manifest {str(path)!r} lacks the column(s) {', '.join(missing)}; "
                             f"it needs {', '.join(REQUIRED)} (optional: "
                             f"{', '.join(c for c in COLUMNS if c not in REQUIRED)})")
        pairs = []
        for k, raw in enumerate(reader, start=2):
            row = {(key or "").strip(): (val or "").strip() for key, val in raw.items()}
            where = f"{path.name} line {k}"
            if not row.get("mr") or not row.get("us"):
                raise ValueError(f"{where}: `mr` and `us` must both be given")

            def resolve(key: str, row=row) -> Optional[Path]:
                value = row.get(key, "")
                return (base / value) if value else None

            us = resolve("us")
            assert us is not None
            pairs.append(Pair(name=row.get("name") or _stem(us), mr=resolve("mr") or Path(),
                              us=us, mask=resolve("mask"),
                              ratio=_ratio(row.get("ratio", ""), where),
                              mr_truth=resolve("mr_truth"), us_truth=resolve("us_truth")))
    if not pairs:
        raise ValueError(f"manifest {str(path)!r} has no rows")
    return _check_names(pairs)


def as_pairs(pairs: Any) -> List[Pair]:
    """Pairs from a manifest path, :class:`Pair` objects, mappings with the manifest's keys, or
    ``(mr, us)`` tuples (named ``pair000``, ``pair001``, ...).

    Raises
    ------
    TypeError
        If an item is none of these.
    ValueError
        As :func:`read_manifest`, or if there is no pair.
    """
    if isinstance(pairs, (str, Path)):
        return read_manifest(pairs)
    out: List[Pair] = []
    items: Iterable = pairs
    for k, item in enumerate(items):
        if isinstance(item, Pair):
            out.append(item)
        elif isinstance(item, dict):
            unknown = set(item) - set(COLUMNS)
            if unknown or not all(c in item for c in REQUIRED):
                raise ValueError(f"pair {k}: keys must include {REQUIRED} and be among {COLUMNS}, "
                                 f"got {sorted(item)}")
            out.append(Pair(**{"name": f"pair{k:03d}", **item}))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(Pair(f"pair{k:03d}", item[0], item[1]))
        else:
            raise TypeError(f"pair {k} must be a Pair, a dict or an (mr, us) tuple, got "
                            f"{type(item).__name__}")
    if not out:
        raise ValueError("`pairs` is empty")
    return _check_names(out)
