"""The Examples sections of the public docstrings run as doctests."""
import doctest
import importlib

import pytest

MODULES = ["fusion", "link.base", "link.features", "link.global_link", "link.local_link",
           "link.selection",
           "operators", "simulate", "metrics.fidelity", "metrics.similarity", "metrics.contrast",
           "metrics.profiles",
           "weights", "weights.correlation", "weights.gcv", "weights.scale", "weights.sure",
           "weights.misfit", "report", "baselines", "data", "data.phantom3d", "io",
           "fourier", "experiments.sweep", "experiments.reproduce", "experiments.cases",
           "experiments.figures", "experiments.tables", "experiments.realistic",
           "experiments.measures", "result", "batch.engine", "batch.manifest"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"mrusfusion.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
