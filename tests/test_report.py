"""Figures of a fusion result (mrusfusion.report)."""
import sys

import numpy as np
import pytest

import mrusfusion
from mrusfusion.report import figure_format, fusion_figure

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def case():
    sim = mrusfusion.simulate(mrusfusion.phantom((32, 32)), ratio=2, seed=0)
    return sim.mr, sim.us, mrusfusion.fuse(sim.mr, sim.us, max_iter=5)


def test_figure_has_six_panels(case):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    mr, us, res = case
    fig = fusion_figure(mr, us, res)
    assert isinstance(fig, Figure)
    assert isinstance(fig.canvas, FigureCanvasAgg)  # its own canvas, not pyplot's
    assert len(fig.axes) == 6
    assert res.message in fig._suptitle.get_text()
    assert fig.axes[5].get_yscale() == "log"
    shapes = [ax.images[0].get_array().shape for ax in fig.axes[:5]]
    assert shapes == [mr.shape, us.shape, res.x.shape, res.v.shape, res.x_init.shape]


def test_title_and_plain_objective_without_iterations(case):
    mr, us, _ = case
    res = mrusfusion.fuse(mr, us, max_iter=0)
    fig = fusion_figure(mr, us, res, title="my title")
    assert fig._suptitle.get_text() == "my title"
    assert fig.axes[5].get_yscale() == "linear"


def test_saves_png_atomically_and_refuses_overwrite(case, tmp_path):
    mr, us, res = case
    path = tmp_path / "fig.png"
    fusion_figure(mr, us, res, path)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no temporary file left

    with pytest.raises(FileExistsError, match="overwrite=True"):
        fusion_figure(mr, us, res, path, title="other")
    assert path.read_bytes() == data

    fusion_figure(mr, us, res, str(path), title="other", overwrite=True)
    assert path.read_bytes() != data and path.read_bytes()[:8] == PNG_SIGNATURE
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_other_formats_and_bad_paths(case, tmp_path):
    mr, us, res = case
    fusion_figure(mr, us, res, tmp_path / "fig.svg")
    assert b"<svg" in (tmp_path / "fig.svg").read_bytes()[:2000]
    with pytest.raises(ValueError, match="unsupported extension"):
        fusion_figure(mr, us, res, tmp_path / "fig.xyz")
    with pytest.raises(FileNotFoundError):
        fusion_figure(mr, us, res, tmp_path / "missing" / "fig.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg"]
    assert figure_format("a/b.PNG") == "png"


def test_missing_matplotlib_names_the_extra(case, monkeypatch):
    mr, us, res = case
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "mrusfusion\[plot\]"'):
        fusion_figure(mr, us, res)


def test_does_not_touch_global_matplotlib_state(case):
    import matplotlib

    mr, us, res = case
    before = dict(matplotlib.rcParams)
    fusion_figure(mr, us, res)
    after = dict(matplotlib.rcParams)
    assert before.keys() == after.keys()
    assert all(np.all(before[k] == after[k]) for k in before if k != "backend")


def _fake_volume_result(us_shape, seed=0):
    """A stand-in for a 3-D FusionResult: what the figure reads, nothing more."""
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    grid = np.indices(us_shape).sum(axis=0).astype(float)
    return SimpleNamespace(x=grid, v=grid + rng.random(us_shape), x_init=grid.copy(),
                           objective=[10.0, 5.0, 4.0, 3.9], message="fake 3-D result",
                           ratio=(2, 2, 4), link=SimpleNamespace(degree=3),
                           weights=SimpleNamespace(tau4=0.5), coupling_share=0.3,
                           link_explained=0.8)


def test_volume_figure_shows_three_orthogonal_slices(tmp_path):
    us_shape = (16, 12, 8)
    res = _fake_volume_result(us_shape)
    mr = np.random.default_rng(1).random((8, 6, 2))
    us = np.random.default_rng(2).random(us_shape)
    fig = fusion_figure(mr, us, res, tmp_path / "vol.png")
    assert (tmp_path / "vol.png").read_bytes()[:8] == PNG_SIGNATURE
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == 15  # 5 images x 3 planes
    shapes = sorted(ax.get_images()[0].get_array().shape for ax in images)
    # US-grid slices across axes 0, 1, 2 of (16, 12, 8), and the MR's of (8, 6, 2)
    for expected in ((12, 8), (16, 8), (16, 12), (6, 2), (8, 2), (8, 6)):
        assert expected in shapes
    titles = [ax.get_title() for ax in images]
    assert any("axis 0 = 8" in t for t in titles)  # through the centre by default
    assert any("axis 2 = 1" in t for t in titles)  # the MR voxel holding US voxel 4
    assert "fake 3-D result" in fig._suptitle.get_text()
    # A given voxel: the x panel across axis 0 at row 3 is x[3]
    fig = fusion_figure(mr, us, res, slice_index=(3, 5, 7))
    panel = next(ax for ax in fig.axes if ax.get_title().startswith("$x$ (MR domain), axis 0"))
    np.testing.assert_array_equal(panel.get_images()[0].get_array(), res.x[3])
    with pytest.raises(ValueError, match="slice_index"):
        fusion_figure(mr, us, res, slice_index=(16, 0, 0))
    with pytest.raises(ValueError, match="all 2-D or all"):
        fusion_figure(mr[0], us, res)
