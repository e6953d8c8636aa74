"""Experiments built on the fusion: libraries with no command line of their own.

- :mod:`.sweep`: fusion over a grid of one or two weights (the paper's Fig. 8).
- :mod:`.reproduce`: the paper's simulated experiments, their tables and figures;
  :mod:`.cases` holds the experiments (:class:`~.cases.Case`) and the phantom's lesion regions.
- :mod:`.realistic`: fusion on realistic B-mode simulations against the truths and the
  best-tuned baselines (issue 14); :mod:`.measures` holds its measures.
- :mod:`.bench`: the benchmark suite.
- :mod:`.figures` draws the sweeps and the cases; :mod:`.tables` writes CSV and Markdown.

The ``mrusfusion reproduce``, ``sweep`` and ``bench`` commands (:mod:`mrusfusion.cli`) call
these modules; nothing here imports the command line.
"""
