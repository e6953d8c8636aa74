"""``mrusfusion simulate`` and ``mrusfusion fuse`` on volumes (issue 15), run in-process."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import mrusfusion

from mrusfusion import cli, io
from mrusfusion.cli.common import per_axis, ratio_value


def main(*args) -> int:
    return cli.main([str(a) for a in args])


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrusfusion: error: "), lines
    return lines[0]


def test_ratio_and_per_axis_option_values():
    assert ratio_value("2") == 2
    assert ratio_value("2,2,4") == (2, 2, 4)
    assert ratio_value("4x1") == (4, 1)
    for bad in ("0", "2,0,2", "a", "1,2,3,4", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="2,2,4"):
            ratio_value(bad)
    assert per_axis([1.0, 2.0, 3.0], "--x") == (1.0, 2.0, 3.0)
    with pytest.raises(ValueError, match="--x takes 2 or 3 values"):
        per_axis([1.0], "--x")


def test_simulate_writes_a_volume_pair(tmp_path, capsys):
    out = tmp_path / "vol"
    assert main("simulate", out, "--shape", 16, 16, 16, "--ratio", "2,2,4", "--seed", 2) == 0
    assert "MR 8x8x4" in capsys.readouterr().out
    mr, us = np.load(out / "mr.npy"), np.load(out / "us.npy")
    assert mr.shape == (8, 8, 4) and us.shape == (16, 16, 16)
    info = json.loads((out / "simulation.json").read_text())
    assert info["ratio"] == [2, 2, 4] and info["psf_shape"] == [9, 9, 9]
    assert info["mr_snr_db"] == pytest.approx(info["target_mr_snr_db"])
    # --3d alone gives the default volume; --3d with two sizes is refused.
    assert main("simulate", tmp_path / "bad", "--3d", "--shape", 16, 16) == 2
    assert "three --shape values" in one_error_line(capsys)


def _volume_files(tmp_path, us_affine):
    """A small NIfTI volume pair with anisotropic voxels: ratios (2, 2, 4) from the spacings."""
    pytest.importorskip("nibabel")
    rng = np.random.default_rng(0)
    us = rng.random((16, 16, 16))
    mr = us[::2, ::2, ::4].copy()
    mr_aff = us_affine.copy()
    mr_aff[:3, :3] = us_affine[:3, :3] * np.array([2.0, 2.0, 4.0])
    mr_p = io.save(tmp_path / "mr.nii.gz", mr, affine=mr_aff, volume=True)
    us_p = io.save(tmp_path / "us.nii.gz", us, affine=us_affine, volume=True)
    return mr_p, us_p


def test_fuse_takes_volumes_with_ratios_from_the_spacings(tmp_path, capsys):
    us_affine = np.diag([0.5, 0.5, 1.0, 1.0])
    us_affine[:3, 3] = (10.0, -4.0, 2.0)
    mr_p, us_p = _volume_files(tmp_path, us_affine)
    out = tmp_path / "x.nii.gz"
    status = main("fuse", mr_p, us_p, "-o", out, "--max-iter", 2, "--json", tmp_path / "x.json")
    captured = capsys.readouterr()
    assert "ratio 2,2,4 (from spacings)" in captured.out
    assert status == 0, captured.err
    fused = io.load(out, volume=True)  # on the US grid with its affine
    assert fused.shape == (16, 16, 16)
    np.testing.assert_allclose(fused.meta["affine"], us_affine)
    assert json.loads((tmp_path / "x.json").read_text())["ratio"] == [2, 2, 4]
    # The same as the library on the same arrays, with the US voxel size as `spacing`.
    mr = io.load(mr_p, volume=True)
    us = io.load(us_p, volume=True)
    expected = mrusfusion.fuse(mr.data, us.data, ratio=(2, 2, 4), spacing=(0.5, 0.5, 1.0),
                               max_iter=2, scan_direction=(1.0, 0.0, 0.0))
    np.testing.assert_allclose(fused.data, expected.x, rtol=1e-6, atol=1e-6 * abs(
        expected.x).max())


def test_fuse_refuses_bad_volume_options_before_computing(tmp_path, capsys):
    mr_p, us_p = _volume_files(tmp_path, np.diag([0.5, 0.5, 1.0, 1.0]))
    assert main("fuse", mr_p, us_p, "-o", tmp_path / "x.png") == 2
    assert "cannot be written to PNG" in one_error_line(capsys)
    assert main("fuse", mr_p, us_p, "-o", tmp_path / "x.npy", "--us-spacing", 0.5, 0.5) == 2
    assert "--us-spacing: `spacing` must be 3 positive finite numbers" in one_error_line(capsys)
    assert main("fuse", mr_p, us_p, "-o", tmp_path / "x.npy", "--ratio", "2,2,2") == 2
    assert "contradicts" in one_error_line(capsys)
    # Spacings 1 x 1 x 2.5 against 0.5 x 0.5 x 1: refused, naming the spacings.
    assert main("fuse", mr_p, us_p, "-o", tmp_path / "x.npy", "--mr-spacing", 1, 1, 2.5) == 2
    line = one_error_line(capsys)
    assert "(1, 1, 2.5) mm" in line and "--resample-us" in line
    # One slice of each is a 2-D pair again.
    assert main("fuse", mr_p, us_p, "-o", tmp_path / "s.npy", "--mr-slice", 0, "--us-slice", 0,
                "--ratio", 2, "--max-iter", 1, "-q") == 0
    assert np.load(tmp_path / "s.npy").shape == (16, 16)


def test_fuse_restricts_to_the_us_field_of_view(tmp_path, capsys):
    # A 2-D pair whose US fills a disc in a zero-padded grid.
    rng = np.random.default_rng(1)
    us = 0.2 + 0.6 * rng.random((32, 32))
    i, j = np.indices(us.shape)
    us[(i - 16) ** 2 + (j - 16) ** 2 > 14**2] = 0.0
    mr = rng.random((16, 16)) + 0.5
    np.save(tmp_path / "mr.npy", mr)
    np.save(tmp_path / "us.npy", us)
    assert main("fuse", tmp_path / "mr.npy", tmp_path / "us.npy", "-o", tmp_path / "x.npy",
                "--fov-threshold", 1e-6, "--max-iter", 2, "--json", tmp_path / "x.json") == 0
    assert "field of view: " in capsys.readouterr().out
    info = json.loads((tmp_path / "x.json").read_text())
    inside = ((i - 16) ** 2 + (j - 16) ** 2 <= 14**2).mean()
    assert info["field_of_view_fraction"] == pytest.approx(inside)
    assert main("fuse", tmp_path / "mr.npy", tmp_path / "us.npy", "-o", tmp_path / "y.npy",
                "--fov-threshold", 5) == 2
    assert "threshold" in one_error_line(capsys)
