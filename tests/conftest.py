"""Helpers shared by the test files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_training(out: Path, until_epoch: int) -> subprocess.Popen:
    """Start a long training run of the XS chip writing ``out`` and return once the line of
    epoch ``until_epoch`` is printed (the epoch is then flushed to the run file)."""
    command = [sys.executable, "-m", "neuroemu.cli", "simulate", "xs_784x100"]
    command += ["--limit", "100", "--epochs", "500", "--batch-size", "50", "--out", str(out)]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # epoch lines go to stderr as they finish
        if line.startswith(f"epoch {until_epoch}/500"):
            break
    return proc


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    """``neuroemu ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "neuroemu.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
