"""Benchmarks for ipdpp: a pytest-benchmark suite and ``python -m benchmarks.compare``.

A development tool, run from the checkout and not installed. Run from there, Python puts the
checkout first on ``sys.path``, where ``ipdpp/`` is the source without its compiled extension;
the checkout is moved to the end, so that ``import ipdpp`` finds the built package (installed,
or on ``PYTHONPATH``) and ``benchmarks`` still resolves. Nothing heavy is imported here, so that
the comparison can pin thread pools before numpy loads.
"""

import os as _os
import sys as _sys

_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_front = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) == _checkout]
if _front:
    _sys.path[:] = [p for p in _sys.path if p not in _front] + [_checkout]
