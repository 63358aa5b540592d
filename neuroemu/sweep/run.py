"""Running a sweep on Dask distributed: one chip per point, finished points skipped."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import failpoints
from ..errors import NeuroemuError, one_line
from ..io.sweepfile import DONE, FIGURES, open_for_sweep
from ..spec.sweep import LoadedSweep

#: Each worker process runs one point at a time on one thread of each pool.
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def run_point(
    spec_data: dict[str, Any],
    seed: int,
    mode: str,
    epochs: int | None,
    dataset: str | None,
    limit: int | None,
    times: list[float] | None = None,
) -> dict[str, Any]:
    """Build one point's chip from its spec, train it (``mode == "train"``) and evaluate
    it on the test part, by :func:`neuroemu.simulate`; return the figures the sweep file
    records. Runs in a worker process."""
    from ..chip import build_chip
    from ..run.simulate import simulate
    from ..spec.loader import chip_from_dict

    failpoints.reach("sweep.point")
    start = time.perf_counter()
    chip = build_chip(chip_from_dict(spec_data, "<sweep point>"), seed=seed)
    run = simulate(
        chip,
        dataset=dataset,
        epochs=epochs if mode == "train" else 0,
        limit=limit,
        infer_at=times or None,
        test_every=0,  # the sweep file records the trained chip's figures only
    )
    last = run.history[-1]
    figures = {name: last[name] for name in FIGURES if name in last}
    if times:
        figures["error_after_programming"] = [entry["error"] for entry in run.infer_at]
    figures["wall_time_s"] = time.perf_counter() - start  # the whole point's
    return figures


def connect(scheduler: str | None = None, workers: int = 2) -> tuple[Any, Any]:
    """A Dask client: of the scheduler at ``scheduler``, or of a new local cluster of
    ``workers`` processes (one thread each). Returns ``(client, cluster or None)``.

    A bad address, a scheduler that cannot be reached and a server that answers but does
    not speak Dask's protocol are each one :class:`~neuroemu.errors.NeuroemuError` naming
    ``--scheduler`` and the reason."""
    from dask.distributed import Client, LocalCluster

    if scheduler is None:
        try:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env=WORKER_ENV,
            )
        except (OSError, TimeoutError) as exc:
            raise NeuroemuError(
                f"--workers {workers}: cannot start a local cluster ({exc})"
            ) from None
        return Client(cluster), cluster
    check_address(scheduler)
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT), None
    except (OSError, TimeoutError) as exc:
        raise NeuroemuError(f"--scheduler {scheduler}: cannot connect ({one_line(exc)})") from None
    except Exception as exc:  # something answered, but not in Dask's protocol
        raise NeuroemuError(
            f"--scheduler {scheduler}: something answers there, but not a Dask scheduler "
            f"(reading its reply: {type(exc).__name__}: {one_line(exc)[:80]})"
        ) from None


#: How long to wait for a scheduler to answer.
CONNECT_TIMEOUT = "10s"


def check_address(scheduler: str) -> None:
    """Refuse an address Dask cannot read (``notanaddress``, no port, an unknown protocol)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        protocol, location = parse_address(scheduler)
        if protocol not in backends:
            known = ", ".join(sorted(backends))
            raise ValueError(f"unknown protocol {protocol!r}; known: {known}")
        if protocol in ("tcp", "tls", "ws", "wss"):
            host, port = parse_host_port(location)
            if not host:
                raise ValueError("no host")
            if not 0 < int(port) < 65536:
                raise ValueError(f"port {port} is not in 1..65535")
    except ValueError as exc:
        raise NeuroemuError(
            f"--scheduler {scheduler}: not a scheduler address ({exc}); give "
            "tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786"
        ) from None


def run_sweep(
    sweep: LoadedSweep,
    out: str | os.PathLike[str],
    client: Any,
    *,
    progress: Callable[[int, int, int], None] | None = None,
) -> dict[str, int]:
    """Run every unfinished point of ``sweep`` on ``client`` and record each in ``out`` as
    it finishes (a failed point is recorded with its error; the others go on).

    ``progress(done, failed, total)`` after each point. Returns the counts of points:
    total, run, skipped (already done), failed.
    """
    from dask.distributed import as_completed

    with open_for_sweep(out, sweep) as results:
        pending = [index for index in sweep.points() if results.status[index] != DONE]
        total = len(sweep.points())
        counts = {"total": total, "run": 0, "skipped": total - len(pending), "failed": 0}
        futures = {}
        s = sweep.spec
        for index in pending:
            spec = sweep.point_spec(index).model_dump(mode="json")
            args = (spec, s.seeds[index[-1]], s.mode, s.epochs, s.dataset, s.limit, s.times)
            futures[client.submit(run_point, *args, pure=False)] = index
        for future in as_completed(futures):
            index = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a failed point must not stop the rest
                results.record(index, None, f"{type(exc).__name__}: {one_line(exc)}")
                counts["failed"] += 1
            else:
                results.record(index, result)
                counts["run"] += 1
            failpoints.reach("sweep.record")
            if progress is not None:
                progress(counts["run"] + counts["skipped"], counts["failed"], total)
    return counts


def default_output(sweep: LoadedSweep) -> Path:
    return Path(f"{sweep.spec.name}.h5")
