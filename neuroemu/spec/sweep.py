"""Sweep specs: a base chip, axes of values at key paths into its spec, and seeds.

An axis path names a key of the chip spec as validated, with device cards inline, in the
notation of error messages: ``layers[0].device.n_levels``, ``inputs.gain``,
``training.learning_rate``; an axis's ``also`` lists further paths that take the same value
(the same card key in every layer), its dimension keeping the name of ``path``. Values are
written as in a chip YAML: a quantity with its unit (``0.5 uS``; a bare number at a key with
a unit is refused), and a random axis of a quantity gives ``low`` and ``high`` with their
unit (``{low: 100 uS, high: 1 mS, count: 4}``). Every point's spec is built and validated
before any point runs.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from ..errors import SpecError
from ..streams import SWEEP_AXES_SEED
from ..units import parse_any_quantity
from .base import Strict, Whole
from .loader import (
    AnyChipSpec,
    chip_from_dict,
    display_path,
    find_chip,
    iter_validate,
    read_yaml,
    validate,
)

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")

#: The most points a sweep may have (every value of every axis, times the seeds); each
#: point's spec is validated when the sweep is loaded.
MAX_POINTS = 100_000


class RandomValues(Strict):
    """``count`` values drawn uniformly (or log-uniformly) in ``[low, high]``: numbers, or
    quantities when ``low`` and ``high`` carry a unit (the same for both; the values are
    drawn in SI and written with that unit)."""

    low: float | str
    high: float | str
    count: Whole = Field(gt=0, le=MAX_POINTS)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RandomValues:
        low, high = self.bounds
        if self.unit is None:
            raise ValueError(
                f"low and high need the same unit (got {self.low!r} and {self.high!r})"
            )
        if not low < high:
            raise ValueError(f"need low < high (got {self.low}, {self.high})")
        if self.log and low <= 0:
            raise ValueError("log sampling needs low > 0")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` in SI."""
        return parse_any_quantity(self.low)[0], parse_any_quantity(self.high)[0]

    @property
    def unit(self) -> str | None:
        """The SI unit of ``low`` and ``high`` (``""`` for numbers), ``None`` if they differ."""
        units = {parse_any_quantity(self.low)[1], parse_any_quantity(self.high)[1]}
        return units.pop() if len(units) == 1 else None


class Axis(Strict):
    path: str
    also: list[str] = Field(
        default_factory=list,
        description="further key paths set to the same value at every point (the same "
        "card key in every layer); the axis keeps the name of path",
    )
    values: list[Any] | None = None
    random: RandomValues | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Axis:
        if (self.values is None) == (self.random is None):
            raise ValueError("give either values or random")
        if self.values is not None and not self.values:
            raise ValueError("values must not be empty")
        repeated = sorted({p for p in self.also if p == self.path or self.also.count(p) > 1})
        if repeated:
            raise ValueError(f"also: names {', '.join(repeated)} twice (with path or itself)")
        return self

    @property
    def paths(self) -> list[str]:
        """Every key path the axis sets: ``path``, then ``also``."""
        return [self.path, *self.also]

    @property
    def size(self) -> int:
        """The number of values of the axis."""
        if self.values is not None:
            return len(self.values)
        assert self.random is not None
        return self.random.count


class SweepSpec(Strict):
    name: str
    chip: str
    mode: Literal["train", "infer"] = "infer"
    epochs: Whole | None = Field(None, ge=0)
    dataset: str | None = None
    limit: Whole | None = Field(None, gt=0)
    axes: list[Axis] = Field(min_length=1)
    seeds: list[Annotated[Whole, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    infer_at: list[str] = Field(
        default_factory=list,
        description="times after programming (1s, 1h, 1d, 1y) at which each point is also "
        "evaluated with programming noise, drift and read noise: a 'time' dimension",
    )

    @model_validator(mode="after")
    def _durations(self) -> SweepSpec:
        from ..units import parse_duration

        for index, text in enumerate(self.infer_at):
            try:
                parse_duration(text)
            except ValueError as exc:
                raise ValueError(f"infer_at[{index}]: {exc}") from None
        return self

    @property
    def times(self) -> list[float]:
        from ..units import parse_duration

        return [parse_duration(text) for text in self.infer_at]


def split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    for match in _PART.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", "."):
            raise ValueError(f"cannot read key path {path!r}")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if position != len(path) or not parts:
        raise ValueError(f"cannot read key path {path!r}")
    return parts


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at ``path`` in ``data``; say which part fails and what exists there."""
    parts = split_path(path)
    node: Any = data
    walked = ""
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = walked or "the chip spec"
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                size = len(node) if isinstance(node, list) else "no list"
                raise ValueError(f"{walked}[{part}]: no such item ({here} has {size} items)")
            walked += f"[{part}]"
        else:
            if not isinstance(node, dict):
                raise ValueError(f"{walked}.{part}: {here} is not a mapping (it is {node!r})")
            if part not in node:
                close = difflib.get_close_matches(part, sorted(node), n=3)
                if close:
                    hint = f"did you mean {' or '.join(close)}?"
                else:
                    hint = f"it has: {', '.join(sorted(node))}"
                raise ValueError(f"{part}: no key {part!r} in {here} ({hint})")
            walked += ("." if walked else "") + part
        if last:
            node[part] = value
        else:
            node = node[part]


def axis_values(axis: Axis, rng: np.random.Generator) -> list[Any]:
    if axis.values is not None:
        return list(axis.values)
    r = axis.random
    assert r is not None
    low, high = r.bounds
    if r.log:
        values = np.exp(rng.uniform(np.log(low), np.log(high), r.count)).tolist()
    else:
        values = rng.uniform(low, high, r.count).tolist()
    return [f"{v!r} {r.unit}" for v in values] if r.unit else values


class LoadedSweep:
    """A validated sweep: its axes' values and every point's chip spec."""

    def __init__(self, spec: SweepSpec, base: AnyChipSpec, source: str, text: str, values: list):
        self.spec = spec
        self.base = base
        self.source = source
        self.text = text
        self.values = values  # per axis, the values in file order

    @property
    def shape(self) -> tuple[int, ...]:
        return (*[len(v) for v in self.values], len(self.spec.seeds))

    def points(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*[range(n) for n in self.shape]))

    def point_spec(self, index: tuple[int, ...]) -> AnyChipSpec:
        """The chip spec of point ``index``: the base chip with each axis's value set. The
        axis values are what the user wrote, so a quantity must carry its unit (the base
        chip's quantities are written with theirs)."""
        data = self.base.to_dict()
        for axis_no, (axis, values) in enumerate(zip(self.spec.axes, self.values, strict=True)):
            for path in axis.paths:
                set_path(data, path, copy.deepcopy(values[index[axis_no]]))
        where = ", ".join(
            f"{a.path}={v[i]!r}"
            for a, v, i in zip(self.spec.axes, self.values, index, strict=False)
        )
        return chip_from_dict(data, f"{self.source} (point {where})", need_units=True)


def load_sweep(path: str | Path) -> LoadedSweep:
    """Load a sweep spec, check every axis path and validate every point's chip."""
    path = Path(path)
    data, text = read_yaml(path)
    source = display_path(path)
    spec: SweepSpec = validate(SweepSpec, data, source, need_units=True)
    chip_path = Path(spec.chip)
    if not chip_path.is_absolute() and (path.parent / chip_path).exists():
        chip_path = path.parent / chip_path
    chip_file = find_chip(chip_path)
    chip_data, _ = read_yaml(chip_file)
    base = chip_from_dict(
        chip_data, display_path(chip_file), chip_file.resolve().parent, need_units=True
    )
    if spec.mode == "train" and base.training is None:
        raise SpecError(f"{source}: mode: train, but chip {base.name} has no training section")
    sizes = [axis.size for axis in spec.axes]
    points = math.prod(sizes) * len(spec.seeds)
    if points > MAX_POINTS:
        shape = " x ".join(str(n) for n in [*sizes, len(spec.seeds)])
        raise SpecError(
            f"{source}: axes: {points} points ({shape}, the last the seeds); a sweep has at "
            f"most {MAX_POINTS}"
        )
    rng = np.random.default_rng(SWEEP_AXES_SEED)
    values = [axis_values(axis, rng) for axis in spec.axes]
    sweep = LoadedSweep(spec, base, source, text, values)
    probe = base.model_dump(mode="json")
    for number, (axis, axis_vals) in enumerate(zip(spec.axes, values, strict=True)):
        for key, path in [
            ("path", axis.path),
            *((f"also[{k}]", p) for k, p in enumerate(axis.also)),
        ]:
            try:
                set_path(probe, path, axis_vals[0])
            except ValueError as exc:
                raise SpecError(f"{source}: axes[{number}].{key}: {exc}") from None
    for index in sweep.points():
        sweep.point_spec(index)  # raises SpecError naming the point
    return sweep


def iter_validate_all(paths: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """Validate device cards, chip specs and sweep specs (a mapping with ``axes``: every
    point's chip is validated too); yield ``(path, error message or None)``."""
    for path in paths:
        try:
            data, _ = read_yaml(path)
        except SpecError as exc:
            yield path, str(exc)
            continue
        if not (isinstance(data, dict) and "axes" in data):
            yield from iter_validate([path])
            continue
        try:
            load_sweep(path)
        except SpecError as exc:
            yield path, str(exc)
        else:
            yield path, None
