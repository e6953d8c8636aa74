"""``mrusfusion register``: files in, registered US and the transform as JSON out."""
import json
import math

import numpy as np
import pytest

from mrusfusion import cli, io
from mrusfusion.registration import target_registration_error
from test_registration import moved_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("reg")
    mr, us, true = moved_pair([math.radians(4.0), 2.5, -1.5], "rigid")
    return d, mr, us, true


def test_register_command_writes_the_image_and_the_transform(pair, capsys):
    d, mr, us, true = pair
    np.save(d / "mr.npy", mr)
    np.save(d / "us.npy", us)
    out = d / "us_reg.npy"
    status = cli.main(["register", str(d / "mr.npy"), str(d / "us.npy"), "-o", str(out),
                       "--valid-mask", str(d / "valid.npy")])
    assert status == 0, capsys.readouterr().err
    record = json.loads((d / "us_reg.transform.json").read_text())
    mat = np.array(record["matrix"])
    assert record["transform"] == "rigid" and record["success"]
    assert target_registration_error(mat, true, us.shape, scale=2) < 0.25
    assert "matrix_mm" not in record and "matrix_world_mm" not in record
    reg, valid = np.load(out), np.load(d / "valid.npy") > 0
    assert reg.shape == us.shape and 0 < valid.sum() < valid.size
    assert np.all(reg[~valid] == 0)
    # an existing output is refused without --overwrite
    assert cli.main(["register", str(d / "mr.npy"), str(d / "us.npy"), "-o", str(out)]) == 2


def test_register_command_gives_nifti_transforms_in_world_mm(pair, capsys):
    pytest.importorskip("nibabel")
    d, mr, us, true = pair
    aff_us = np.diag([0.5, 0.25, 1.0, 1.0])
    aff_us[:3, 3] = [-10.0, 4.0, 2.0]
    aff_mr = aff_us.copy()
    aff_mr[:2, :2] *= 2
    io.save(d / "mr.nii.gz", mr, affine=aff_mr, spacing=(1.0, 0.5))
    io.save(d / "us.nii.gz", us, affine=aff_us, spacing=(0.5, 0.25))
    out = d / "us_nifti.nii.gz"
    assert cli.main(["register", str(d / "mr.nii.gz"), str(d / "us.nii.gz"), "-o", str(out),
                     "--transform", "translation", "-q"]) == 0, capsys.readouterr().err
    record = json.loads((d / "us_nifti.transform.json").read_text())
    mat, world = np.array(record["matrix"]), np.array(record["matrix_world_mm"])
    # the same point, in pixels and in mm: world(o) maps to world(matrix o)
    o = np.array([10.0, 20.0, 0.0, 1.0])
    p = np.array([*(mat @ [10.0, 20.0, 1.0])[:2], 0.0, 1.0])
    np.testing.assert_allclose(world @ (aff_us @ o), aff_us @ p, atol=1e-9)
    assert io.load(out).data.shape == us.shape


def test_register_command_with_a_us_mask(pair, capsys):
    d, mr, us, true = pair
    fan = np.zeros(us.shape)
    fan[4:, 6:-6] = 1
    np.save(d / "fan.npy", fan)
    np.save(d / "mr3.npy", mr)
    np.save(d / "us3.npy", us)
    assert cli.main(["register", str(d / "mr3.npy"), str(d / "us3.npy"), "-o",
                     str(d / "r3.npy"), "--us-mask", str(d / "fan.npy"), "--valid-mask",
                     str(d / "v3.npy"), "-q"]) == 0, capsys.readouterr().err
    record = json.loads((d / "r3.transform.json").read_text())
    assert target_registration_error(np.array(record["matrix"]), true, us.shape, scale=2) < 0.25
    assert cli.main(["register", str(d / "mr3.npy"), str(d / "us3.npy"), "-o",
                     str(d / "r4.npy"), "--us-mask", str(d / "mr3.npy")]) == 2
    assert "--us-mask must have the shape" in capsys.readouterr().err


def test_register_command_refuses_bad_input(pair, capsys):
    d, mr, us, _ = pair
    bad = us.copy()
    bad[0, 0] = np.nan
    np.save(d / "bad.npy", bad)
    np.save(d / "mr2.npy", mr)
    status = cli.main(["register", str(d / "mr2.npy"), str(d / "bad.npy"), "-o",
                       str(d / "x.npy")])
    assert status == 2 and "NaN" in capsys.readouterr().err


def test_register_command_on_volumes(tmp_path, capsys):
    import mrusfusion as mf
    from scipy import ndimage
    from mrusfusion.registration import matrix

    x = mf.phantom3d((24, 24, 20))
    true = matrix("translation", np.array([1.5, -2.0, 1.0]), (np.array(x.shape) - 1) / 2)
    us = ndimage.affine_transform(0.3 + 0.8 * x - 0.5 * x**2, np.linalg.inv(true), order=3,
                                  mode="nearest")
    np.save(tmp_path / "mr.npy", x)
    np.save(tmp_path / "us.npy", us)
    assert cli.main(["register", str(tmp_path / "mr.npy"), str(tmp_path / "us.npy"), "-o",
                     str(tmp_path / "out.npy"), "--transform", "translation", "-q"]) == 0, \
        capsys.readouterr().err
    record = json.loads((tmp_path / "out.transform.json").read_text())
    assert np.array(record["matrix"]).shape == (4, 4)
    assert target_registration_error(np.array(record["matrix"]), true, x.shape) < 0.25
    assert np.load(tmp_path / "out.npy").shape == x.shape
