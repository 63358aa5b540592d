"""The version of neuroemu, as pyproject.toml declares it: read from the installed
package's metadata, or ``0+unknown`` when the package is not installed (the source tree
put on ``PYTHONPATH``)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: What :data:`__version__` says when no installed package names the version.
UNKNOWN = "0+unknown"


def installed_version() -> str:
    """The version of the installed package ``neuroemu``, or :data:`UNKNOWN`."""
    try:
        return version("neuroemu")
    except PackageNotFoundError:
        return UNKNOWN


__version__ = installed_version()
