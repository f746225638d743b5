"""Benchmarks for ipdpp: a pytest-benchmark suite and ``python -m benchmarks.compare``.

Run from the checkout (not installed). Python then puts the checkout first on ``sys.path``,
where ``ipdpp/`` is the source without its compiled extension, so the checkout is moved last:
``import ipdpp`` finds the built package. Nothing heavy is imported here (see compare.py).
"""

import os as _os
import sys as _sys

_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_front = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) == _checkout]
if _front:
    _sys.path[:] = [p for p in _sys.path if p not in _front] + [_checkout]
