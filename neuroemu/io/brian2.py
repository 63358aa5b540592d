"""The reference simulator of a leaky chip: the same network built from Brian2's own
objects and run by Brian2 (runtime code generation to ``numpy`` or ``cython``, or the
``cpp_standalone`` device).

Every sample of a batch is one copy of the network, connected only within itself:

- the input rows are a ``NeuronGroup`` of ``batch * n_inputs`` neurons with a constant
  ``rate : 1`` set to the DAC'd inputs ``chip.dac(x)``;
- free layer ``k`` (hidden layers, then the output) is a ``NeuronGroup`` of
  ``batch * nodes`` neurons (neuron ``b * nodes + j`` is node ``j`` of sample ``b``) with the
  card's equations, its input current made of Brian2 summed variables and a constant bias:

      I_syn = I_fwd + I_bwd + I_bias                                    (A)

  in place of the card's ``I_syn : amp`` parameter (a hidden neuron), or
  ``I_cross = I_fwd + I_bias`` (A) in place of ``I_cross : amp`` in
  ``NeuronModel.output_equations()`` (the output neuron, whose
  ``I_syn = I_cross + g_nudge * (v_target - v)`` carries the nudge, with per-neuron
  ``g_nudge = beta`` (S) and ``v_target`` (V));
- every device array is a ``Synapses`` object between the copies of its two layers, one
  synapse per device, with its weight ``w = G - G_ref`` (S, ``G_ref = (g_min + g_max) / 2``
  of the array's card) and the summed variables

      I_fwd_post = w * read_voltage * rate_pre : amp (summed)   (forward array)
      I_bwd_pre = w * read_voltage * rate_post : amp (summed)   (the same array read
                                                                 backwards, symmetric chip)
      I_bwd_post = w * read_voltage * rate_pre : amp (summed)   (feedback array, asymmetric)

- ``I_bias = read_voltage * (b - G_ref)`` (A) per neuron from its bias device ``b`` (S),
  read at a rate of 1.

The weights and biases are computed here from the chip's conductances and cards, not from
:meth:`~neuroemu.chip.leaky.LeakyChip.network`, so the comparison with
:func:`neuroemu.engine.leaky.run` also checks the engine's arrays.

Scheduling. Brian2 runs a summed variable's updater in the ``groups`` slot with the order of
its target group minus one, so with every group at order 0 all the currents are computed
from the rates at the start of the step before any state updater advances ``v``, which is
the step of the Numba engine. A ``StateMonitor`` (slot ``start``) records ``v`` before the
step at ``t = 0, dt, ..., (steps - 1) dt``; the state after the last step is the groups'
``v`` after the run, so a trajectory has ``steps + 1`` states like the engine's trace.

The objects have fixed names (``neuroemu_layer0``, ...), so the same chip gives the same
generated code from call to call and Brian2's caches (cython's compiled extensions, the
standalone project's object files) are reused. ``cpp_standalone`` switches Brian2's device
for the call (build, then run) and back to the runtime device after it; it builds in one
temporary folder per process, removed at exit.
"""

from __future__ import annotations

import atexit
import gc
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..chip.leaky import LeakyChip
from ..engine.states import check_target, initial_voltages
from ..errors import InputError
from ..models.neurons import _brian2
from ..models.synapse import reference

#: The Brian2 targets :func:`simulate` accepts: ``prefs.codegen.target`` of the runtime
#: device, or the C++ standalone device.
RUNTIMES = ("numpy", "cython", "cpp_standalone")

#: Names this backend adds to the neuron's equations and namespace.
RESERVED = ("I_fwd", "I_bwd", "I_bias", "w", "read_voltage")


def _free_equations(chip: LeakyChip, output: bool, backward: bool) -> Any:
    """A free layer's Brian2 equations: the card's with its input (``I_syn`` of a hidden
    neuron, ``I_cross`` of an output neuron) made of the arrays' summed currents (A)."""
    b2 = _brian2()
    model = chip.model
    eqs = model.output_equations() if output else model.hidden_equations()
    name = "I_cross" if output else "I_syn"
    kept = [eq for eq in eqs.ordered if eq.varname != name]
    terms = "I_fwd + I_bwd + I_bias" if backward else "I_fwd + I_bias"
    lines = [f"{name} = {terms} : amp", "I_fwd : amp", "I_bias : amp (constant)"]
    if backward:
        lines.append("I_bwd : amp")
    return b2.Equations(kept) + b2.Equations("\n".join(lines))


def _connect(synapses: Any, batch: int, rows: int, cols: int) -> None:
    """All-to-all from ``rows`` presynaptic to ``cols`` postsynaptic neurons within each of
    the ``batch`` copies (neuron ``b * size + index``)."""
    offsets = np.arange(batch)[:, None, None]
    i = offsets * rows + np.arange(rows)[None, :, None]
    j = offsets * cols + np.arange(cols)[None, None, :]
    i, j = np.broadcast_arrays(i, j)
    synapses.connect(i=i.ravel(), j=j.ravel())


def _weights(
    synapses: Any, conductance: np.ndarray, g_ref: float, batch: int, standalone: bool
) -> None:
    """Set every synapse's ``w = G - G_ref`` (S) from its device in ``conductance`` (rows
    presynaptic, columns postsynaptic). The runtime device is asked which devices its
    synapses are, whatever order it stores them in; the standalone device cannot say before
    its run and creates them in the order :func:`_connect` gives."""
    if standalone:
        synapses.w_[:] = np.tile((conductance - g_ref).ravel(), batch)
        return
    rows, cols = conductance.shape
    pre = np.asarray(synapses.i[:]) % rows
    post = np.asarray(synapses.j[:]) % cols
    synapses.w_[:] = conductance[pre, post] - g_ref


_STANDALONE: list[str] = []


def _standalone_folder() -> str:
    """This process's folder for Brian2's C++ standalone project (removed at exit)."""
    if not _STANDALONE:
        folder = tempfile.mkdtemp(prefix="neuroemu-brian2-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _STANDALONE.append(folder)
    return _STANDALONE[0]


def _enter_standalone() -> None:
    """Switch Brian2 to its C++ standalone device, building in this process's folder."""
    b2 = _brian2()
    # Free the objects of earlier builds that reference cycles keep alive: their names
    # would push this build's code objects to new names (``..._codeobject_1``), new files
    # and a full recompilation.
    gc.collect()
    b2.set_device(
        "cpp_standalone", build_on_run=True, directory=_standalone_folder(), with_output=False
    )


def _leave_standalone() -> None:
    """Clear the standalone device and return to the device used before it."""
    b2 = _brian2()
    b2.device.reinit()
    from brian2.devices.device import reset_device

    reset_device()


@dataclass
class Simulation:
    """A built Brian2 network of a leaky chip, ready to :meth:`run` once.

    Attributes
    ----------
    network
        The ``brian2.Network`` (inputs, free layers, arrays, monitors).
    groups
        The free layers' ``NeuronGroup``s, hidden layers then output.
    monitors
        One ``StateMonitor`` of ``v`` per free layer.
    batch, sizes, steps, dt
        Samples (copies), nodes per free layer, steps of ``dt`` (s) to run.
    target_runtime
        Brian2's code generation target for the run, or ``"cpp_standalone"``.
    loop_seconds
        After :meth:`run`: the wall time of Brian2's main loop alone (s), without building
        the objects and generating or compiling their code.
    """

    network: Any
    groups: list[Any]
    monitors: list[Any]
    batch: int
    sizes: list[int]
    steps: int
    dt: float
    target_runtime: str
    loop_seconds: float | None = None

    def run(self) -> list[np.ndarray]:
        """Run the network for ``steps * dt`` and return, per free layer, ``v`` (V) of
        shape (steps + 1, batch, nodes): the states after 0..steps steps."""
        b2 = _brian2()
        standalone = self.target_runtime == "cpp_standalone"
        previous = b2.prefs.codegen.target
        if not standalone:
            b2.prefs.codegen.target = self.target_runtime
        try:
            self.network.run(self.steps * self.dt * b2.second, namespace={})
            self.loop_seconds = float(b2.device._last_run_time)
            out = []
            for group, monitor, nodes in zip(self.groups, self.monitors, self.sizes, strict=True):
                recorded = np.asarray(monitor.v_)  # (neurons, steps), before each step
                if recorded.shape[1] != self.steps:
                    raise RuntimeError(
                        f"Brian2 recorded {recorded.shape[1]} states, expected {self.steps}"
                    )
                states = np.concatenate([recorded.T, np.asarray(group.v_)[None, :]])
                out.append(states.reshape(self.steps + 1, self.batch, nodes))
        finally:
            b2.prefs.codegen.target = previous
            if standalone:
                _leave_standalone()
        return out


def build(
    chip: LeakyChip,
    x: Any,
    beta: float = 0.0,
    target: Any = None,
    *,
    steps: int | None = None,
    init: Any = None,
    target_runtime: str = "numpy",
) -> Simulation:
    """Build the Brian2 network of ``chip`` for inputs ``x`` (see the module docs); the
    arguments are those of :func:`simulate`."""
    _brian2()  # imported quietly before anything of Brian2's
    if target_runtime not in RUNTIMES:
        raise InputError(
            f"target_runtime: must be one of {', '.join(RUNTIMES)} (got {target_runtime!r})"
        )
    if target_runtime == "cython":
        from brian2.codegen.runtime.cython_rt import CythonCodeObject

        if not CythonCodeObject.is_available():
            raise InputError(
                "target_runtime: cython is not available (needs Cython and a C compiler)"
            )
    x = chip.check_inputs(x)
    batch = x.shape[0]
    if batch < 1:
        raise InputError("x: needs at least one sample")
    dynamics = chip.spec.dynamics
    beta = float(beta)
    if steps is None:
        steps = dynamics.free_steps if beta == 0 else dynamics.nudged_steps
    if int(steps) != steps or steps < 1:
        raise InputError(f"steps: must be an integer >= 1 (got {steps})")
    steps = int(steps)
    targets = check_target(beta, target, batch, chip.layer_sizes[-1])
    sizes = chip.layer_sizes
    v0 = initial_voltages(init, sizes, batch, np.dtype(np.float64))

    model = chip.model
    taken = set(RESERVED) & (set(model.equations.names) | set(model.quantities))
    if taken:
        raise InputError(f"neuron {chip.spec.neuron.name}: the names {sorted(taken)} are reserved")
    standalone = target_runtime == "cpp_standalone"
    if standalone:
        _enter_standalone()
    try:
        network, groups, monitors = _objects(chip, x, beta, targets, v0, standalone)
    except BaseException:
        if standalone:
            _leave_standalone()
        raise
    return Simulation(network, groups, monitors, batch, sizes, steps, dynamics.dt, target_runtime)


def _objects(
    chip: LeakyChip,
    x: np.ndarray,
    beta: float,
    targets: np.ndarray | None,
    v0: list[np.ndarray],
    standalone: bool,
) -> tuple[Any, list[Any], list[Any]]:
    """The Brian2 network, its free layers' groups and their monitors (module docs)."""
    b2 = _brian2()
    model = chip.model
    dynamics = chip.spec.dynamics
    batch = x.shape[0]
    sizes = chip.layer_sizes
    n = len(sizes)
    read = chip.spec.inputs.read_voltage
    namespace = {**model.quantities, "read_voltage": read * b2.volt}
    clock = b2.Clock(dt=dynamics.dt * b2.second, name="neuroemu_clock")
    method = dynamics.method

    source = b2.NeuronGroup(
        batch * chip.n_inputs, "rate : 1 (constant)", clock=clock, name="neuroemu_inputs"
    )
    source.rate_ = np.asarray(chip.dac(x), dtype=np.float64).ravel()

    backward = [chip.backward_index(k) is not None for k in range(n)]
    if chip.spec.synapses == "symmetric":
        backward = [k + 1 < n for k in range(n)]
    groups = []
    for k, nodes in enumerate(sizes):
        output = k == n - 1
        group = b2.NeuronGroup(
            batch * nodes,
            _free_equations(chip, output, backward[k]),
            method=method,
            namespace=namespace,
            clock=clock,
            order=0,  # every group at one order: all currents, then all updates (see docs)
            name=f"neuroemu_layer{k}",
        )
        group.v_ = v0[k].ravel()
        bias = chip.bias_conductance[k][0] - reference(chip.bias_devices[k])
        group.I_bias_ = np.tile(read * bias, batch)
        if output:
            group.g_nudge_ = beta
            group.v_target_ = 0.0 if targets is None else targets.ravel()
        groups.append(group)

    arrays = []
    symmetric = chip.spec.synapses == "symmetric"
    for k in range(n):  # forward array k: layer k - 1 (or the inputs) into layer k
        crossbar = chip.crossbars[k]
        pre = source if k == 0 else groups[k - 1]
        model_text = (
            "w : siemens (constant)\nI_fwd_post = w * read_voltage * rate_pre : amp (summed)"
        )
        if symmetric and k > 0:  # read backwards into layer k - 1
            model_text += "\nI_bwd_pre = w * read_voltage * rate_post : amp (summed)"
        syn = b2.Synapses(
            pre, groups[k], model_text, namespace=namespace, clock=clock, name=f"neuroemu_array{k}"
        )
        _connect(syn, batch, *crossbar.conductance.shape)
        _weights(syn, crossbar.conductance, reference(crossbar.device), batch, standalone)
        arrays.append(syn)
    for k in range(n):  # feedback arrays of an asymmetric chip: layer k + 1 into layer k
        index = chip.backward_index(k)
        if index is None:
            continue
        crossbar = chip.crossbars[index]
        syn = b2.Synapses(
            groups[k + 1],
            groups[k],
            "w : siemens (constant)\nI_bwd_post = w * read_voltage * rate_pre : amp (summed)",
            namespace=namespace,
            clock=clock,
            name=f"neuroemu_feedback{k}",
        )
        _connect(syn, batch, *crossbar.conductance.shape)
        _weights(syn, crossbar.conductance, reference(crossbar.device), batch, standalone)
        arrays.append(syn)

    monitors = [
        b2.StateMonitor(g, "v", record=True, clock=clock, name=f"neuroemu_monitor{k}")
        for k, g in enumerate(groups)
    ]
    network = b2.Network(source, *groups, *arrays, *monitors, name="neuroemu_network")
    return network, groups, monitors


def simulate(
    chip: LeakyChip,
    x: Any,
    beta: float = 0.0,
    target: Any = None,
    *,
    steps: int | None = None,
    init: Any = None,
    target_runtime: str = "numpy",
) -> list[np.ndarray]:
    """Run ``chip`` for inputs ``x`` in Brian2 and return its voltage trajectories.

    Parameters
    ----------
    chip
        A leaky chip.
    x
        Inputs (batch, n_inputs) in [0, 1], as for :func:`neuroemu.engine.leaky.run`.
    beta, target
        Nudging conductance (S) of the output neurons toward ``target`` (V), (batch,
        outputs); 0 for the free phase.
    steps
        Steps of ``dt``; default ``dynamics.free_steps`` (free) or ``nudged_steps``.
    init
        Starting membrane voltages (an :class:`~neuroemu.engine.settle.Equilibrium` or a
        list of (batch, nodes) arrays, V), else rest (0 V).
    target_runtime
        Brian2's code generation target, ``"numpy"`` or ``"cython"``, or
        ``"cpp_standalone"`` (Brian2's C++ standalone device, compiled for the call).

    Returns
    -------
    list of numpy.ndarray
        Per free layer (hidden layers, then output), ``v`` (V) of shape
        (steps + 1, batch, nodes), the states after 0..steps steps: the layout of the
        engine's ``trace.voltages``.
    """
    return build(chip, x, beta, target, steps=steps, init=init, target_runtime=target_runtime).run()
