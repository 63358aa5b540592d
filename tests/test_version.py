"""The version: one number, from pyproject.toml through the installed package's metadata."""

from __future__ import annotations

import importlib.metadata

import pytest

import neuroemu
from neuroemu import version

from .conftest import run_cli


def test_version_is_the_installed_metadata():
    try:
        installed = importlib.metadata.version("neuroemu")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("neuroemu is not installed (source tree on PYTHONPATH only)")
    assert neuroemu.__version__ == version.__version__ == installed
    assert "__version__" in neuroemu.__all__
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"neuroemu {installed}"


def test_version_without_an_installed_package(monkeypatch):
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version, "version", missing)
    assert version.installed_version() == version.UNKNOWN == "0+unknown"
