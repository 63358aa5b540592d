"""``neuroemu validate``, ``neuroemu chips``, ``neuroemu devices``: the YAML library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("validate", help="check device cards, chip specs and sweep specs")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=validate)

    for kind in ("chips", "devices"):
        p = sub.add_parser(kind, help=f"list or show the {kind} of the library")
        p.add_argument("action", choices=("list", "show"))
        p.add_argument("name", nargs="?", metavar="NAME")
        p.set_defaults(func=library)


def validate(args: argparse.Namespace) -> int:
    from ..spec.sweep import iter_validate_all

    failed = 0
    for path, error in iter_validate_all([Path(p) for p in args.files]):
        if error is None:
            print(f"ok      {path}")
        else:
            failed += 1
            print(f"error   {error}", file=sys.stderr)
    return EXIT_USAGE if failed else 0


def library(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..spec.loader import find_card, list_library, load_card, load_chip

    kind = args.command  # "chips" or "devices"
    if args.action == "list":
        for path in list_library(kind):
            try:
                item = load_chip(path).spec if kind == "chips" else load_card(path)
                print(f"{path.stem:<28}{item.description}")
            except Exception as exc:
                print(f"{path.stem:<28}INVALID: {exc}")
        return 0
    if args.name is None:
        raise InputError(f"{kind} show: name a {kind[:-1]} (see `neuroemu {kind} list`)")
    if kind == "chips":
        from ..chip import build_chip

        loaded = load_chip(args.name)
        chip = build_chip(loaded.spec, source=loaded)
        print(loaded.text.rstrip())
        print(f"# built: {chip!r}")
        for crossbar in chip.crossbars:
            print(
                f"#   crossbar {crossbar.name}: {crossbar.shape[0]} x {crossbar.shape[1]}, "
                f"device {crossbar.device.name}"
            )
    else:
        path = find_card(args.name)
        load_card(path)
        print(path.read_text(encoding="utf-8").rstrip())
    return 0
