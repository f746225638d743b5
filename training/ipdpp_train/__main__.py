"""``python -m ipdpp_train`` and the ``ipdpp-train`` console script."""

from __future__ import annotations

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
