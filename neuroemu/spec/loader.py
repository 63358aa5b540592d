"""Read device cards and chip specs from YAML, resolving card names, with one-line errors.

Card names in a chip (``device: rram_hfo2``) are looked up, in order, in a ``devices/``
folder beside the chip's folder (the repository layout, so edits there are seen), then in
the library shipped with the package. A value ending in ``.yaml`` is a path relative to the
chip file. A mapping instead of a name is an inline card.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import NeuroemuWarning, SpecError, brief, capped
from ..units import format_quantity
from .base import NEED_UNITS
from .cards import DiodeCard, NeuronCard, ResistorCard
from .leaky import LeakyChipSpec
from .resistive import ChipSpec

DeviceCard = ResistorCard | DiodeCard | NeuronCard
AnyChipSpec = ChipSpec | LeakyChipSpec
YAML_SUFFIXES = (".yaml", ".yml")


# --------------------------------------------------------------------------- library
def library_root() -> Path:
    """Folder holding ``devices/`` and ``chips/``: package data in an installed wheel, the
    repository's top level in a source checkout or editable install."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "_library"
    if (shipped / "devices").is_dir():
        return shipped
    return package.parent


def library_dir(kind: str) -> Path:
    return library_root() / kind


def list_library(kind: str) -> list[Path]:
    """YAML files of the library folder ``kind`` (``devices`` or ``chips``), sorted."""
    folder = library_dir(kind)
    return sorted(p for p in folder.glob("*") if p.suffix in YAML_SUFFIXES)


def display_path(path: Path) -> str:
    """A path as the user should see it: relative to the working directory when inside it,
    else relative to the library (``chips/x.yaml``), else as given."""
    resolved = Path(path).resolve()
    for base in (Path.cwd().resolve(), library_root().resolve()):
        if resolved.is_relative_to(base):
            return str(resolved.relative_to(base))
    return str(path)


# --------------------------------------------------------------------------- YAML
#: The most aliases (``*name``) a YAML file may use.
MAX_ALIASES = 100
#: The most nodes (scalars, lists, mappings) the aliases of a YAML file may add to it, each
#: alias counting the nodes of what it repeats.
MAX_ALIAS_NODES = 10_000


class _AliasError(yaml.composer.ComposerError):
    """Aliases a file may not use (:class:`_StrictLoader`)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one, and
    aliases beyond :data:`MAX_ALIASES` or expanding the file by more than
    :data:`MAX_ALIAS_NODES` nodes (a file that repeats a list of lists by aliases, level by
    level, grows exponentially), and aliases of a node inside itself."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._alias_nodes = 0
        self._open: set[str] = set()  # anchors of the collections being composed
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            return super().compose_node(parent, index)
        self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        anchor = event.anchor
        where = event.start_mark
        if anchor in self._open:
            raise _AliasError(None, None, f"alias *{anchor} repeats a node inside itself", where)
        node = self.anchors.get(anchor)
        if node is None:
            return  # PyYAML reports the unknown anchor
        self._aliases += 1
        self._alias_nodes += self._size(node)
        if self._aliases > MAX_ALIASES:
            raise _AliasError(
                None, None, f"more than {MAX_ALIASES} aliases; write the values out", where
            )
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise _AliasError(
                None,
                None,
                f"aliases expand the file by more than {MAX_ALIAS_NODES} values "
                f"(*{anchor} alone repeats {self._size(node)}); write the values out",
                where,
            )

    def _size(self, node: yaml.Node) -> int:
        """Nodes of ``node`` with everything under it, aliases expanded."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a YAML mapping; return it and the exact text. Errors name the file and line."""
    shown = display_path(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"{shown}: is a folder, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{shown}: cannot read ({exc})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except _AliasError as exc:
        mark = exc.problem_mark
        raise SpecError(
            f"{shown}: YAML aliases at line {mark.line + 1}, column {mark.column + 1}: "
            f"{exc.problem}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{shown}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{shown}: expected a mapping of keys at the top level")
    return data, text


# --------------------------------------------------------------------------- errors
def format_location(loc: tuple[int | str, ...]) -> str:
    """``('layers', 1, 'device', 'g_max') -> 'layers[1].device.g_max'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


#: What pydantic puts in an error's location for the member of a union it tried.
_MEMBER_TAGS = {"float", "int", "str", "bool", "list", "dict", "tuple", "none"}


def _is_member_tag(part: int | str) -> bool:
    """Whether a part of a validation error's location names a union member or a
    validator (``float``, ``tuple[float, ...]``, ``function-after[...]``), not a key."""
    return isinstance(part, str) and (part in _MEMBER_TAGS or not part.isidentifier())


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys the model at ``loc`` (the parent of an unknown key) accepts."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return None
        annotation = fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def validation_message(
    source: str, model: type[BaseModel], error: ValidationError, prefix: tuple = ()
) -> str:
    """The first validation error as ``source: key.path: reason`` on one line; ``prefix`` is
    where the validated mapping sits in its file."""
    errors = error.errors()
    # A mistyped key is both unknown and, under its right name, missing: name it first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(part for part in first["loc"] if not _is_member_tag(part))
    message = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        message = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        close = difflib.get_close_matches(str(loc[-1]), allowed or [], n=1)
        if close:
            message += f"; did you mean {close[0]}?"
    elif first["type"] == "missing":
        message = "missing required key"
    elif "input" in first and first["type"].endswith(("_type", "_parsing")):
        message = f"{message} (got {brief(first['input'])})"
    where = format_location(prefix + loc)
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    text = f"{source}: {where + ': ' if where else ''}{message}{suffix}"
    return capped(" ".join(text.split()))


def validate(
    model: type[BaseModel],
    data: dict[str, Any],
    source: str,
    prefix: tuple = (),
    need_units: bool = False,
) -> Any:
    """``data`` validated as ``model``; with ``need_units`` (what a user wrote) every
    quantity must carry its unit (:data:`~neuroemu.spec.base.NEED_UNITS`), else bare numbers
    are SI. A :class:`~neuroemu.errors.SpecError` names ``source``, the key and the reason."""
    try:
        return model.model_validate(data, context=NEED_UNITS if need_units else None)
    except ValidationError as exc:
        raise SpecError(validation_message(source, model, exc, prefix)) from None


# --------------------------------------------------------------------------- cards
_CARD_MODELS: dict[str, type[BaseModel]] = {
    "resistor": ResistorCard,
    "diode": DiodeCard,
    "neuron": NeuronCard,
}


def card_from_dict(
    data: dict[str, Any],
    source: str,
    prefix: tuple = (),
    card_dir: Path | None = None,
    texts: dict[str, str] | None = None,
    need_units: bool = False,
) -> DeviceCard:
    """Validate a card given as a mapping; a neuron card's ``diode`` name resolves in
    ``card_dir`` (the card's own folder), then in the library, and its equations are read
    by Brian2 (syntax and units). ``texts``, when given, receives the YAML text of every
    card this one names (see :func:`_resolve_card`). With ``need_units`` (what a user
    wrote) every quantity must carry its unit; otherwise bare numbers are SI."""
    kind = data.get("kind")
    if kind not in _CARD_MODELS:
        where = format_location((*prefix, "kind"))
        known = ", ".join(_CARD_MODELS)
        raise SpecError(f"{source}: {where}: must be one of {known} (got {kind!r})")
    if kind == "neuron" and isinstance(data.get("diode"), str | dict):
        data = dict(data)
        loc = (*prefix, "diode")
        data["diode"] = _resolve_card(
            data["diode"], "diode", None, source, loc, card_dir, texts, need_units
        )
    card = validate(_CARD_MODELS[kind], data, source, prefix, need_units)
    if isinstance(card, NeuronCard):
        check_neuron(card, "euler", 1e-9, source, prefix)
    return card


def check_neuron(card: NeuronCard, method: str, dt: float, source: str, prefix: tuple = ()) -> Any:
    """Read a neuron card's equations with Brian2 for ``method`` and ``dt`` (s); Brian2's
    own message, with the key path, on failure. Returns the model."""
    from ..models.neurons import NeuronModelError, neuron_model

    try:
        return neuron_model(card, method, dt)
    except NeuronModelError as exc:
        where = format_location((*prefix, *exc.key.split(".")))
        raise SpecError(f"{source}: {where}: {exc}") from None


def load_card(path: str | os.PathLike[str]) -> DeviceCard:
    """Load and validate one device card file."""
    return _card_file(Path(path), None)


def _card_file(path: Path, texts: dict[str, str] | None) -> DeviceCard:
    """Load a card file; ``texts`` (when given) receives its exact text under the card's
    name, and those of the cards it names."""
    data, text = read_yaml(path)
    source, folder = display_path(path), path.resolve().parent
    card = card_from_dict(data, source, card_dir=folder, texts=texts, need_units=True)
    if texts is not None:
        texts[card.name] = text
    return card


def find_card(name: str, chip_dir: Path | None = None, card_dir: Path | None = None) -> Path:
    """The file of the device card called ``name`` (see the module docstring for order;
    ``card_dir``, the folder of a card naming another, is looked in first)."""
    if name.endswith(YAML_SUFFIXES):
        for base in ([chip_dir] if chip_dir else []) + [Path.cwd()]:
            if (base / name).is_file():
                return base / name
        raise SpecError(f"{name}: no such device card file")
    folders = [card_dir] if card_dir else []
    folders += ([chip_dir.parent / "devices"] if chip_dir else []) + [library_dir("devices")]
    for folder in folders:
        for suffix in YAML_SUFFIXES:
            if (folder / f"{name}{suffix}").is_file():
                return folder / f"{name}{suffix}"
    known = ", ".join(p.stem for p in list_library("devices"))
    raise SpecError(f"no device card named {name!r} (known: {known})")


def _resolve_card(
    value: Any,
    kind: str,
    chip_dir: Path | None,
    source: str,
    loc: tuple[int | str, ...],
    card_dir: Path | None = None,
    texts: dict[str, str] | None = None,
    need_units: bool = False,
) -> Any:
    """The card a chip (or a neuron card) names or gives inline. ``texts``, when given,
    receives each card's YAML under its name: the exact text of its file, or for an inline
    card, which has none, the YAML dump of its mapping. A card file's quantities always need
    their units, an inline card's with ``need_units``."""
    where = format_location(loc)
    if isinstance(value, str):
        try:
            path = find_card(value, chip_dir, card_dir)
        except SpecError as exc:
            raise SpecError(f"{source}: {where}: {exc}") from None
        card = _card_file(path, texts)
    elif isinstance(value, dict):
        inline_dir = card_dir or (None if chip_dir is None else chip_dir.parent / "devices")
        mapping = {"kind": kind, "name": f"inline {where}", **value}
        card = card_from_dict(mapping, source, loc, inline_dir, texts, need_units)
        if texts is not None:
            texts[card.name] = yaml.safe_dump(mapping, sort_keys=False)
    else:
        return value  # let pydantic report the wrong type
    if card.kind != kind:
        raise SpecError(
            f"{source}: {where}: card {card.name!r} is a {card.kind}, expected a {kind}"
        )
    return card


# --------------------------------------------------------------------------- chips
@dataclass(frozen=True)
class LoadedChip:
    """A validated chip spec with where it came from and its exact text, and the YAML of
    every device card it uses by card name (for run files): the exact text of each card
    file, or for an inline card the YAML dump of its mapping."""

    spec: AnyChipSpec
    path: Path | None
    text: str
    cards: dict[str, str] = field(default_factory=dict)


def find_chip(name_or_path: str | os.PathLike[str]) -> Path:
    """A chip file: an existing path, else a chip of the library by name."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if path.suffix not in YAML_SUFFIXES and path.parent == Path("."):
        for suffix in YAML_SUFFIXES:
            candidate = library_dir("chips") / f"{path.name}{suffix}"
            if candidate.is_file():
                return candidate
        known = ", ".join(p.stem for p in list_library("chips"))
        raise SpecError(f"{name_or_path}: no such chip file or library chip (known: {known})")
    raise SpecError(f"{name_or_path}: no such file")


def chip_from_dict(
    data: dict[str, Any],
    source: str = "<chip>",
    chip_dir: Path | None = None,
    texts: dict[str, str] | None = None,
    need_units: bool = False,
) -> AnyChipSpec:
    """Validate a chip given as a mapping; card names resolve beside ``chip_dir``. A
    mapping with ``kind: leaky`` is a :class:`LeakyChipSpec`, any other a
    :class:`ChipSpec`. ``texts``, when given, receives the YAML of every card by name.

    With ``need_units`` (a mapping a user wrote: a YAML file, ``Chip.from_dict``) every
    quantity must carry its unit (``5 uS``; a bare ``5`` is refused); without it a bare
    number is SI, as in a validated spec's own JSON form (``model_dump(mode="json")``, what
    run files keep)."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{source}: expected a mapping of keys, got {type(data).__name__}")
    data = dict(data)
    if data.get("kind") == "leaky":
        return _leaky_chip(data, source, chip_dir, texts, need_units)
    keys = {"device": "resistor", "diode": "diode"}
    _resolve_layer_cards(data, keys, chip_dir, source, texts, need_units)
    spec = validate(ChipSpec, data, source, need_units=need_units)
    warn_first_updates(spec, source)
    return spec


#: How far the estimate of a first update (:meth:`ChipSpec.first_updates`, an order of
#: magnitude) may exceed a device's range before the learning rate is warned of.
ESTIMATE_MARGIN = 10.0


def warn_first_updates(spec: ChipSpec, source: str) -> None:
    """Warn (:class:`~neuroemu.errors.NeuroemuWarning`) of each crossbar whose estimated
    first update exceeds its devices' range :data:`ESTIMATE_MARGIN` times: its learning rate
    would throw every device to a bound at the first step. Training measures the first
    update itself (:func:`neuroemu.learning.train.check_first_update`)."""
    for name, rate, change, span in spec.first_updates():
        if change > ESTIMATE_MARGIN * span:
            warnings.warn(
                f"{source}: training.learning_rate: {rate:g} for {name} would move a device "
                f"by about {format_quantity(change, 'S')} in the first update, "
                f"{change / span:.3g} times its range ({format_quantity(span, 'S')}; estimated "
                "as lr u^2 V_t^2 / G at the layer's node conductance G); take a smaller rate",
                NeuroemuWarning,
                stacklevel=2,
            )


def _resolve_layer_cards(
    data: dict[str, Any],
    keys: dict[str, str],
    chip_dir: Path | None,
    source: str,
    texts: dict[str, str] | None = None,
    need_units: bool = False,
) -> None:
    """Replace the card names under ``keys`` (key -> card kind) of every layer of ``data``
    by their cards, in place."""
    layers = data.get("layers")
    if not isinstance(layers, list):
        return  # let pydantic report the wrong type
    resolved = []
    for index, layer in enumerate(layers):
        if isinstance(layer, dict):
            layer = dict(layer)
            for key, kind in keys.items():
                if layer.get(key) is not None:
                    loc = ("layers", index, key)
                    layer[key] = _resolve_card(
                        layer[key], kind, chip_dir, source, loc, None, texts, need_units
                    )
        resolved.append(layer)
    data["layers"] = resolved


def _leaky_chip(
    data: dict[str, Any],
    source: str,
    chip_dir: Path | None,
    texts: dict[str, str] | None,
    need_units: bool,
) -> LeakyChipSpec:
    if "neuron" in data and data["neuron"] is not None:
        where = ("neuron",)
        data["neuron"] = _resolve_card(
            data["neuron"], "neuron", chip_dir, source, where, None, texts, need_units
        )
    keys = {"device": "resistor", "backward_device": "resistor"}
    _resolve_layer_cards(data, keys, chip_dir, source, texts, need_units)
    spec = validate(LeakyChipSpec, data, source, need_units=need_units)
    dynamics = spec.dynamics
    model = check_neuron(spec.neuron, dynamics.method, dynamics.dt, source, ("neuron",))
    # The voltages a neuron must cross: its rate's range and the target, with a margin.
    training = spec.training
    v_max = 1.25 * max(model.v_r, training.target_voltage if training else 0.0)
    growth = max(model.stability(v_max), model.stability(v_max, (0.0,)))
    if not growth <= 1.0 + 1e-9:
        raise SpecError(
            f"{source}: dynamics.dt: {dynamics.dt:g} s is too large for stable "
            f"{dynamics.method} steps of neuron {spec.neuron.name!r} (for |v| up to "
            f"{v_max:g} V one step multiplies a deviation of v by up to {growth:.3g} > 1); "
            "take a smaller dt"
        )
    if training is not None:
        both = training.algorithm == "ep-centred" or training.random_sign
        nudges = (training.beta, -training.beta) if both else (training.beta,)
        growth = model.stability(v_max, nudges)
        if not growth <= 1.0 + 1e-9:
            signs = "+-" if both else ""
            raise SpecError(
                f"{source}: training.beta: nudging the outputs by {signs}"
                f"{format_quantity(training.beta, 'S')} makes {dynamics.method} steps of "
                f"{dynamics.dt:g} s unstable (one step multiplies a deviation of v by up to "
                f"{growth:.3g} > 1); take a smaller beta or dt"
            )
    return spec


def load_chip(name_or_path: str | os.PathLike[str]) -> LoadedChip:
    """Load and validate a chip spec file (or a library chip by name)."""
    path = find_chip(name_or_path)
    data, text = read_yaml(path)
    cards: dict[str, str] = {}
    spec = chip_from_dict(data, display_path(path), path.resolve().parent, cards, need_units=True)
    return LoadedChip(spec=spec, path=path, text=text, cards=cards)


def iter_validate(paths: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """Validate files of either kind; yield ``(path, error message or None)``."""
    for path in paths:
        try:
            data, _ = read_yaml(path)
            source, folder = display_path(path), path.resolve().parent
            if "kind" in data and data["kind"] != "leaky":
                card_from_dict(data, source, card_dir=folder, need_units=True)
            else:
                chip_from_dict(data, source, folder, need_units=True)
        except SpecError as exc:
            yield path, str(exc)
        else:
            yield path, None
