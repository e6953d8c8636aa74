"""Tables of the experiments: CSV and Markdown text, written atomically."""
from __future__ import annotations

import csv
import io as _io
import math
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..io import write_atomic

__all__ = ["format_value", "csv_text", "markdown_table", "write_text", "jsonable"]


def format_value(value, digits: Optional[int] = None) -> str:
    """One table cell: ``true``/``false``, integers as is, floats with ``digits`` significant
    digits (default: ``repr``, which round-trips), ``nan``, ``inf`` and ``-inf`` spelled out.

    Examples
    --------
    >>> [format_value(v, 3) for v in (True, 7, 0.123456, float("-inf"))]
    ['true', '7', '0.123', '-inf']
    """
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v) if digits is None else format(v, f".{digits}g")
    return str(value)


def csv_text(rows: Sequence[dict], *, digits: Optional[int] = None) -> str:
    """CSV of ``rows`` (dicts with the keys of the first one, in its order), ``\\n`` line ends.

    Parameters
    ----------
    rows : sequence of dict
        One dict per line; the first one's keys are the header.
    digits : int, optional
        Significant digits of the floats (default: all, see :func:`format_value`).

    Returns
    -------
    str
        A header line and one line per row; ``""`` when ``rows`` is empty.

    Examples
    --------
    >>> print(csv_text([{"tau4": 0.1, "converged": True}, {"tau4": 1.0, "converged": False}]),
    ...       end="")
    tau4,converged
    0.1,true
    1.0,false
    """
    if not rows:
        return ""
    buf = _io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = list(rows[0])
    writer.writerow(columns)
    for row in rows:
        writer.writerow([format_value(row[c], digits) for c in columns])
    return buf.getvalue()


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]],
                   left: int = 1) -> List[str]:
    """The lines of a Markdown table; the first ``left`` columns (text) align left, the others
    (numbers) right.

    Examples
    --------
    >>> print("\\n".join(markdown_table(["method", "PSNR"], [["fused x", "31.20"]])))
    | method | PSNR |
    |---|---:|
    | fused x | 31.20 |
    """
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def write_text(path, text: str, *, overwrite: bool = False) -> Path:
    """Write ``text`` (UTF-8, line ends as given) to ``path`` through
    :func:`mrusfusion.io.write_atomic`: never a partial file, an existing one kept unless
    ``overwrite``. Returns the path written."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


def jsonable(obj):
    """``obj`` in plain JSON types: NumPy scalars and arrays as Python ones, non-finite floats
    as strings (``"nan"``), dataclasses and objects with ``as_dict`` as dicts, others as repr.

    Examples
    --------
    >>> jsonable({"tau": np.float32(0.5), "shape": (2, 3), "psnr": float("nan")})
    {'tau': 0.5, 'shape': [2, 3], 'psnr': 'nan'}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else str(float(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "as_dict"):
        return jsonable(obj.as_dict())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    return repr(obj)
