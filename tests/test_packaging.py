"""The wheel installs ``ipdpp`` and ``ipdpp_train`` and nothing with a generic name."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("name", ["training", "benchmarks"])
def test_generic_names_are_not_installed(name: str, tmp_path) -> None:
    # A user's own ``training`` or ``benchmarks`` module must never be shadowed by ours.
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is not None)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=False)
    assert result.returncode == 0, f"an installed top-level package named {name!r} was found"


def test_pipeline_installs_under_its_own_name(tmp_path) -> None:
    code = "import ipdpp_train, ipdpp; print(ipdpp_train.__name__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "ipdpp_train"
