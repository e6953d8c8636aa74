"""The tissue model of the B-mode simulation (DESIGN.md section 14): classes from the MR
intensities, per-class backscatter and impedance, specular steps along the beam, thin layers."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["tissue_classes", "class_values", "backscatter_levels", "beam_derivative",
           "thin_layer"]


def tissue_classes(x: np.ndarray, n_classes: int) -> np.ndarray:
    """1-D k-means of the lightly smoothed intensities (Lloyd, started at quantiles), then a
    3x3 majority vote so that noise and texture do not make single-pixel tissues."""
    v = ndimage.gaussian_filter(x, 1.0, mode="wrap").ravel()
    centres = np.quantile(v, (np.arange(n_classes) + 0.5) / n_classes)
    for _ in range(100):
        centres = np.unique(centres)
        cuts = 0.5 * (centres[1:] + centres[:-1])
        lab = np.searchsorted(cuts, v)
        counts = np.bincount(lab, minlength=centres.size)
        sums = np.bincount(lab, weights=v, minlength=centres.size)
        new = sums[counts > 0] / counts[counts > 0]  # a cell left empty loses its class
        if new.size == centres.size and np.allclose(new, centres, rtol=0.0, atol=1e-12):
            break
        centres = new
    lab = lab.reshape(x.shape)
    k = int(lab.max()) + 1
    votes = np.stack([ndimage.uniform_filter((lab == c).astype(float), 3, mode="wrap")
                      for c in range(k)])
    return np.unique(np.argmax(votes, axis=0), return_inverse=True)[1].reshape(x.shape)


def class_values(given, name: str, k: int, draw) -> np.ndarray:
    if given is None:
        return draw()
    vals = np.asarray(given, dtype=np.float64).ravel()
    if vals.size != k or not np.all(np.isfinite(vals)) or np.any(vals <= 0):
        raise ValueError(f"`{name}` must hold {k} positive finite values (one per tissue class), "
                         f"got {np.asarray(given).tolist()!r}")
    return vals


def backscatter_levels(rng: np.random.Generator, k: int, range_db: float) -> np.ndarray:
    """Per-class amplitudes: evenly spaced dB levels dealt in a random order, jittered, so
    classes stay distinguishable and the order is not that of the MR intensities."""
    perm = rng.permutation(k)
    if k >= 3 and (np.all(np.diff(perm) > 0) or np.all(np.diff(perm) < 0)):
        perm[[0, 1]] = perm[[1, 0]]  # a monotone deal would make the link monotone
    step = range_db / max(k - 1, 1)
    level_db = -range_db + step * (perm + rng.uniform(-0.25, 0.25, k))
    return 10.0 ** (level_db / 20.0)


def beam_derivative(z: np.ndarray, u) -> np.ndarray:
    """Central difference of ``z`` along the beam ``u`` (one component per axis), periodic."""
    def central(axis: int) -> np.ndarray:
        return 0.5 * (np.roll(z, -1, axis=axis) - np.roll(z, 1, axis=axis))

    out = u[0] * central(0)
    for axis in range(1, len(u)):
        out = out + u[axis] * central(axis)
    return out


def thin_layer(labels: np.ndarray, width: int, u, n_layers: int):
    """The ``n_layers`` longest pieces of the band ``width`` px deep along the most frequent
    class interface met along the beam, on the side of the larger class: glue-like layers
    between two stacked tissues (thin curved sheets in a volume)."""
    axes = tuple(range(labels.ndim))
    step = tuple(int(round(c)) for c in u)
    if not any(step):
        step = tuple(int(a == int(np.argmax(np.abs(u)))) for a in axes)
    nxt = np.roll(labels, tuple(-c for c in step), axis=axes)
    a, b = labels.ravel(), nxt.ravel()
    diff = a != b
    if not diff.any():
        return np.zeros(labels.shape, bool), None
    k = int(labels.max()) + 1
    lo, hi = np.minimum(a[diff], b[diff]), np.maximum(a[diff], b[diff])
    counts = np.bincount(lo * k + hi, minlength=k * k)
    pair = divmod(int(np.argmax(counts)), k)
    sizes = np.bincount(labels.ravel(), minlength=k)
    host, other = (pair[0], pair[1]) if sizes[pair[0]] >= sizes[pair[1]] else (pair[1], pair[0])
    near = np.zeros(labels.shape, bool)
    other_mask = labels == other
    for d in range(1, width + 1):
        near |= np.roll(other_mask, tuple(d * c for c in step), axis=axes)
        near |= np.roll(other_mask, tuple(-d * c for c in step), axis=axes)
    mask = near & (labels == host)
    # short fragments (around specks of a noisy labelling) are not layers
    parts, n = ndimage.label(mask, structure=np.ones((3,) * labels.ndim))
    sizes = np.bincount(parts.ravel(), minlength=n + 1)[1:]
    keep = [c + 1 for c in np.argsort(-sizes, kind="stable")[:n_layers] if sizes[c] >= 8 * width]
    mask = np.isin(parts, keep)
    return mask, ((host, other) if mask.any() else None)
