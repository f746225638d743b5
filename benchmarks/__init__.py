"""Benchmarks for ipdpp: a pytest-benchmark suite and ``python -m benchmarks.compare``.

Modules: :mod:`benchmarks.baselines` (plain numpy / PyTorch k-DPP samplers),
:mod:`benchmarks.backends` (ipdpp, the baselines and DPPy behind one interface),
:mod:`benchmarks.compare` (the comparison command), :mod:`benchmarks.report` (tables, JSON,
plots). Nothing heavy is imported here, so that the comparison can pin thread pools first.
"""
