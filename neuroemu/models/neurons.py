"""Neuron models written as Brian2 equations, read by Brian2 itself.

A neuron card (:class:`~neuroemu.spec.cards.NeuronCard`) holds equations such as

    dv/dt = (-g_L * v + I_syn) / C : volt
    rate = clip(v / v_r, 0, 1) : 1
    I_syn : amp

with its parameters in units. :class:`NeuronModel` hands them to Brian2's equation parser
and unit checker, and asks Brian2's state updaters (``euler`` or ``exponential_euler``)
for the update of one time step ``dt`` as abstract code, the same code Brian2 runs. That
code is rewritten here, by a whitelist over its syntax tree, as plain Python expressions
with every parameter a number in SI units; :mod:`neuroemu.kernels.leaky` compiles it into
Numba kernels over a batch. So the engine integrates exactly what Brian2 would, and a user
swaps the neuron by editing its equations.

Two roles of a neuron: a hidden neuron, whose ``I_syn`` is what the arrays drive into it,
and an output neuron, whose ``I_syn`` also carries the nudge of equilibrium propagation,
``I_syn = I_cross + g_nudge (v_target - v)`` (a conductance ``g_nudge`` to a source at the
target voltage, as on a resistive chip), so that Brian2's update treats it like any term.
"""

from __future__ import annotations

import ast
import functools
import logging
import math
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import one_line
from ..units import parse_any_quantity
from .diode import thermal_voltage

if TYPE_CHECKING:
    from ..spec.cards import NeuronCard

#: Brian2's names of the SI base units neuron parameters may have.
BRIAN2_UNITS = {
    "": "1",
    "S": "siemens",
    "V": "volt",
    "A": "amp",
    "s": "second",
    "F": "farad",
    "Ohm": "ohm",
    "K": "kelvin",
    "W": "watt",
    "J": "joule",
    "Hz": "hertz",
}

#: Functions of Brian2's equations the Numba engine provides (``neuroemu.kernels.leaky``).
FUNCTIONS = (
    "abs",
    "arccos",
    "arcsin",
    "arctan",
    "ceil",
    "clip",
    "cos",
    "cosh",
    "exp",
    "expm1",
    "exprel",
    "floor",
    "int",
    "log",
    "log10",
    "log1p",
    "sign",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
)
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf, "True": True, "False": False}

#: The names the arrays provide to a neuron of each role.
HIDDEN_INPUTS = ("I_syn",)
OUTPUT_INPUTS = ("I_cross", "g_nudge", "v_target")


class NeuronModelError(ValueError):
    """The equations cannot be used; ``key`` names the card field at fault."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class UpdateCode:
    """One time step of one neuron as Python statements ``target = expression``: locals end
    in ``_`` (``v_`` the membrane voltage, ``I_syn_`` the input), functions are the
    engine's ``_<name>``, parameters are numbers (SI)."""

    statements: tuple[tuple[str, str], ...]
    inputs: tuple[str, ...]


@functools.cache
def _brian2() -> Any:
    hook = sys.excepthook
    brian2 = _import_brian2()

    # Brian2 replaces the interpreter's exception hook with its own report; keep ours. It
    # also logs to the console and warns about objects never run; keep that quiet here.
    sys.excepthook = hook
    logging.getLogger("brian2").setLevel(logging.ERROR)
    brian2.prefs.codegen.target = "numpy"
    return brian2


def _import_brian2() -> Any:
    """Import brian2 from any thread.

    brian2 installs a SIGINT handler when imported, which only the main thread may do; a
    Dask worker runs each sweep point in another thread. There the import goes on and
    Ctrl-C keeps the handler the process already has."""
    if threading.current_thread() is threading.main_thread():
        import brian2

        return brian2
    install = signal.signal

    def keep_sigint(signum: int, handler: Any) -> Any:
        if signum == signal.SIGINT:
            return signal.getsignal(signum)
        return install(signum, handler)

    with _IMPORT_LOCK:
        signal.signal = keep_sigint  # type: ignore[assignment]
        try:
            import brian2
        finally:
            signal.signal = install
    return brian2


_IMPORT_LOCK = threading.Lock()


class _Rewrite(ast.NodeTransformer):
    """Brian2 abstract code -> Python for the kernels (a whitelist of the syntax)."""

    def __init__(self, local: set[str], numbers: dict[str, float]):
        self.local = local
        self.numbers = numbers

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.local:
            return ast.copy_location(ast.Name(id=f"{node.id}_", ctx=node.ctx), node)
        if node.id in self.numbers:
            return ast.copy_location(ast.Constant(float(self.numbers[node.id])), node)
        if node.id in CONSTANTS:
            return ast.copy_location(ast.Constant(CONSTANTS[node.id]), node)
        raise NeuronModelError("equations", f"the engine cannot evaluate the name {node.id!r}")

    def visit_Call(self, node: ast.Call) -> ast.AST:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if name in ("rand", "randn", "poisson", "xi"):
            raise NeuronModelError("equations", "stochastic equations are not supported")
        if name not in FUNCTIONS or node.keywords:
            raise NeuronModelError("equations", f"function {name!r} is not supported")
        args = [self.visit(a) for a in node.args]
        return ast.copy_location(ast.Call(ast.Name(f"_{name}", ast.Load()), args, []), node)

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        # Written as calls so the same code runs on numpy arrays and in Numba.
        name = "_and" if isinstance(node.op, ast.And) else "_or"
        values = [self.visit(v) for v in node.values]
        out = values[0]
        for value in values[1:]:
            out = ast.Call(ast.Name(name, ast.Load()), [out, value], [])
        return ast.copy_location(out, node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Not):
            call = ast.Call(ast.Name("_not", ast.Load()), [self.visit(node.operand)], [])
            return ast.copy_location(call, node)
        return self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        if len(node.ops) == 1:
            return self.generic_visit(node)
        left = node.left  # a < b < c -> _and(a < b, b < c)
        parts: list[ast.expr] = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(ast.Compare(left, [op], [right]))
            left = right
        return self.visit(ast.copy_location(ast.BoolOp(ast.And(), parts), node))

    def generic_visit(self, node: ast.AST) -> ast.AST:
        allowed = (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.BoolOp,
            ast.Compare,
            ast.IfExp,
            ast.Constant,
            ast.operator,
            ast.unaryop,
            ast.boolop,
            ast.cmpop,
            ast.expr_context,
        )
        if not isinstance(node, allowed):
            raise NeuronModelError("equations", f"unsupported syntax {ast.unparse(node)!r}")
        return super().generic_visit(node)


def rewrite(code: str, local: set[str], numbers: dict[str, float]) -> str:
    """One Brian2 expression as a kernel expression (see :class:`_Rewrite`)."""
    tree = ast.parse(code.strip(), mode="eval")
    return ast.unparse(_Rewrite(local, numbers).visit(tree))


def _statements(abstract: str) -> list[tuple[str, str]]:
    out = []
    for line in abstract.splitlines():
        line = line.strip()
        if not line:
            continue
        target, _, expression = line.partition("=")
        out.append((target.strip(), expression.strip()))
    return out


class NeuronModel:
    """A neuron card read by Brian2, for one integration ``method`` and step ``dt`` (s).

    Attributes
    ----------
    parameters
        Every parameter in SI (``v_r`` and, with a diode, ``I_s``, ``n_diode``, ``V_T``).
    hidden, output
        :class:`UpdateCode` of one step of a hidden and of an output neuron.
    rate
        The rate as a Python expression of ``v_`` (dimensionless).
    v_r
        The rate's voltage scale (V).
    """

    def __init__(self, card: NeuronCard, method: str, dt: float):
        self.card = card
        self.method = method
        self.dt = float(dt)
        self.parameters, self.quantities = self._parameters(card)
        if "v_r" not in self.parameters:
            raise NeuronModelError("parameters", "must give v_r (V), the rate's voltage scale")
        self.v_r = self.parameters["v_r"]
        if not self.v_r > 0:
            raise NeuronModelError("parameters", f"v_r must be > 0 V (got {self.v_r} V)")
        self.equations = self._parse(card.equations)
        self._check_roles(self.equations)
        self.hidden = self._update(self.hidden_equations(), HIDDEN_INPUTS)
        self.output = self._update(self.output_equations(), OUTPUT_INPUTS)
        rate = self._substituted("rate")
        self.rate = rewrite(rate, {"v"}, {**self.parameters, **self._unit_names(rate)})

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _parameters(card: NeuronCard) -> tuple[dict[str, float], dict[str, Any]]:
        b2 = _brian2()
        values: dict[str, float] = {}
        quantities: dict[str, Any] = {}
        for name, text in card.parameters.items():
            if not name.isidentifier():
                raise NeuronModelError("parameters", f"{name!r} is not a valid name")
            try:
                value, unit = parse_any_quantity(text)
            except ValueError as exc:
                raise NeuronModelError(f"parameters.{name}", str(exc)) from None
            values[name] = value
            quantities[name] = value * (getattr(b2, BRIAN2_UNITS[unit]) if unit else 1)
        if card.diode is not None:
            d = card.diode
            assert d.i_s is not None and d.n is not None  # a validated shockley card
            taken = {"I_s", "n_diode", "V_T"} & set(values)
            if taken:
                raise NeuronModelError(
                    "parameters", f"{sorted(taken)} come from the diode card; remove them"
                )
            values.update(I_s=d.i_s, n_diode=d.n, V_T=thermal_voltage(d.temperature))
            quantities.update(I_s=d.i_s * b2.amp, n_diode=d.n, V_T=values["V_T"] * b2.volt)
        return values, quantities

    @staticmethod
    def _parse(text: str) -> Any:
        b2 = _brian2()
        try:
            return b2.Equations(text)
        except Exception as exc:  # Brian2 raises several kinds; its message says why
            raise NeuronModelError("equations", one_line(exc)) from None

    def _check_roles(self, eqs: Any) -> None:
        b2 = _brian2()
        if set(eqs.diff_eq_names) != {"v"}:
            raise NeuronModelError(
                "equations",
                f"need exactly one differential equation, for v (got {sorted(eqs.diff_eq_names)})",
            )
        if eqs["v"].dim != b2.volt.dim:
            raise NeuronModelError("equations", "v must be in volt")
        if "I_syn" not in eqs.parameter_names or eqs["I_syn"].dim != b2.amp.dim:
            raise NeuronModelError("equations", "need the input current as 'I_syn : amp'")
        if (
            "rate" not in eqs.subexpr_names
            or eqs["rate"].dim != b2.units.fundamentalunits.DIMENSIONLESS
        ):
            raise NeuronModelError("equations", "need the rate as 'rate = ... : 1'")
        extra = set(eqs.parameter_names) - {"I_syn"}
        if extra:
            raise NeuronModelError(
                "equations",
                f"per-neuron variables {sorted(extra)} are not supported: give them as parameters",
            )
        for reserved in (*OUTPUT_INPUTS, "dt", "t"):
            if reserved in eqs.names or reserved in self.parameters:
                raise NeuronModelError("equations", f"the name {reserved!r} is reserved")

    def hidden_equations(self) -> Any:
        """The card's equations (``I_syn`` driven by the arrays)."""
        return self.equations

    def output_equations(self) -> Any:
        """The card's equations with ``I_syn = I_cross + g_nudge (v_target - v)``."""
        b2 = _brian2()
        kept = [eq for eq in self.equations.ordered if eq.varname != "I_syn"]
        nudge = b2.Equations(
            """I_syn = I_cross + g_nudge * (v_target - v) : amp
            I_cross : amp
            g_nudge : siemens
            v_target : volt"""
        )
        return b2.Equations(kept) + nudge

    def _update(self, eqs: Any, inputs: tuple[str, ...]) -> UpdateCode:
        """Brian2's abstract code of one step, after its unit check, rewritten."""
        b2 = _brian2()
        try:
            group = b2.NeuronGroup(
                1,
                eqs,
                method=self.method,
                namespace=dict(self.quantities),
                dt=self.dt * b2.second,
                name="neuroemu_check*",
            )
            group.equations.check_units(group, run_namespace={})
            group.state_updater.update_abstract_code(run_namespace={})
            abstract = group.state_updater.abstract_code
        except Exception as exc:  # units, unknown names, a method that does not apply
            raise NeuronModelError("equations", one_line(exc)) from None
        statements = _statements(abstract)
        local = {"v", *inputs, *(target for target, _ in statements)}
        numbers = {**self.parameters, "dt": self.dt, **self._unit_names(abstract)}
        rewritten = tuple(
            (f"{target}_", rewrite(expression, local, numbers)) for target, expression in statements
        )
        return UpdateCode(statements=rewritten, inputs=inputs)

    @staticmethod
    def _unit_names(code: str) -> dict[str, float]:
        """Brian2 unit names in ``code`` (``mV`` in ``v > 10*mV``) as their SI values."""
        b2 = _brian2()
        out = {}
        for node in ast.walk(ast.parse("\n".join(e for _, e in _statements(code)) or "0")):
            if isinstance(node, ast.Name):
                unit = getattr(b2.units, node.id, None)
                if isinstance(unit, b2.Unit):
                    out[node.id] = float(unit)
        return out

    def _substituted(self, name: str) -> str:
        """A subexpression's code with the subexpressions it uses written out."""
        code = str(self.equations[name].expr.code)
        for _ in range(len(self.equations.subexpr_names)):
            tree = ast.parse(code, mode="eval")
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            inner = names & (set(self.equations.subexpr_names) - {name})
            if not inner:
                return code
            for sub in inner:
                sub_code = f"({self.equations[sub].expr.code})"
                code = ast.unparse(_Substitute(sub, sub_code).visit(tree))
                tree = ast.parse(code, mode="eval")
        return code

    # ------------------------------------------------------------------ numpy evaluation
    def step_numpy(self, v: np.ndarray, inputs: dict[str, Any], role: str = "hidden"):
        """One step in numpy (the slow, obvious form; for checks and references)."""
        code = self.hidden if role == "hidden" else self.output
        scope: dict[str, Any] = {**NUMPY_FUNCTIONS, "v_": np.asarray(v, dtype=np.float64)}
        for name in code.inputs:
            scope[f"{name}_"] = inputs[name]
        for target, expression in code.statements:
            scope[target] = eval(expression, {"__builtins__": {}}, scope)
        return np.asarray(scope["v_"], dtype=np.float64)

    def rate_numpy(self, v: np.ndarray) -> np.ndarray:
        scope = {**NUMPY_FUNCTIONS, "v_": np.asarray(v, dtype=np.float64)}
        return np.asarray(eval(self.rate, {"__builtins__": {}}, scope), dtype=np.float64)

    def stability(
        self, v_max: float | None = None, nudges: tuple[float, ...] = (), points: int = 401
    ) -> float:
        """The largest ``|d v(t+dt) / d v(t)|`` of one step of an isolated neuron (no input
        from the arrays) for ``v`` in ``[-v_max, v_max]`` (default ``1.25 v_r``): hidden
        when ``nudges`` is empty, else as an output nudged by each conductance of
        ``nudges`` (S) toward ``v_max``. Above 1 the step amplifies errors and the dynamics
        blow up."""
        v_max = 1.25 * self.v_r if v_max is None else float(v_max)
        v = np.linspace(-v_max, v_max, points)
        h = 1e-6 * v_max
        zero = np.zeros_like(v)
        cases: list[tuple[dict[str, Any], str]] = [({"I_syn": zero}, "hidden")]
        if nudges:
            cases = [
                ({"I_cross": zero, "g_nudge": g, "v_target": zero + v_max}, "output")
                for g in nudges
            ]
        worst = 0.0
        with np.errstate(all="ignore"):
            for inputs, role in cases:
                slopes = []
                for step in (h, 2 * h):
                    up = self.step_numpy(v + step, inputs, role)
                    down = self.step_numpy(v - step, inputs, role)
                    slopes.append((up - down) / (2 * step))
                if not np.all(np.isfinite(slopes[0])):
                    return math.inf
                # A gate that switches makes the step jump, not slope: a difference quotient
                # that halves when the step doubles straddles a jump; leave those points out.
                smooth = np.abs(slopes[0] - slopes[1]) <= 0.1 * np.abs(slopes[0]) + 1e-9
                worst = max(worst, float(np.max(np.abs(slopes[0][smooth]), initial=0.0)))
        return worst


class _Substitute(ast.NodeTransformer):
    def __init__(self, name: str, code: str):
        self.name = name
        self.tree = ast.parse(code, mode="eval").body

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return self.tree if node.id == self.name else node


def _np_int(x: Any) -> Any:
    return np.trunc(np.asarray(x, dtype=np.float64))


def _np_exprel(x: Any) -> Any:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x == 0, 1.0, np.expm1(x) / np.where(x == 0, 1.0, x))


NUMPY_FUNCTIONS: dict[str, Any] = {
    "_and": np.logical_and,
    "_or": np.logical_or,
    "_not": np.logical_not,
    "_abs": np.abs,
    "_arccos": np.arccos,
    "_arcsin": np.arcsin,
    "_arctan": np.arctan,
    "_ceil": np.ceil,
    "_clip": np.clip,
    "_cos": np.cos,
    "_cosh": np.cosh,
    "_exp": np.exp,
    "_expm1": np.expm1,
    "_exprel": _np_exprel,
    "_floor": np.floor,
    "_int": _np_int,
    "_log": np.log,
    "_log10": np.log10,
    "_log1p": np.log1p,
    "_sign": np.sign,
    "_sin": np.sin,
    "_sinh": np.sinh,
    "_sqrt": np.sqrt,
    "_tan": np.tan,
    "_tanh": np.tanh,
}


_MODELS: dict[tuple[str, str, float], NeuronModel] = {}


def neuron_model(card: NeuronCard, method: str, dt: float) -> NeuronModel:
    """The (cached) :class:`NeuronModel` of a card, method and step."""
    key = (card.model_dump_json(), method, float(dt))
    if key not in _MODELS:
        _MODELS[key] = NeuronModel(card, method, dt)
    return _MODELS[key]
