"""ipdpp: exact, fast sampling from determinantal point processes."""
from . import _core

__all__: list[str] = []
