"""Device models as plain numpy functions: the formulas the Numba kernels implement, the
reference the tests hold the kernels to, and the vectorised helpers the engine uses for
reports (diode power)."""

from .diode import diode_current, thermal_voltage

__all__ = ["diode_current", "thermal_voltage"]
