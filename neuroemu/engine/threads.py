"""How a settle uses the cores: BLAS threads for the matrix products, and threads that
settle the chunks of a batch side by side.

The engine holds BLAS to one thread for every product. A threaded BLAS product sums in
another order than a single-threaded one (OpenBLAS: different bits for a 128 x 784 x 500
product), so a result would depend on the machine's threads; and on a machine with a few
cores, shared with other work, BLAS threads that spin and wait on small products cost far
more than they share, and two pools of threads busy-waiting on the same cores slow each
other down. The engine's parallelism is its own: chunks of a batch on threads, rows of the
kernels on Numba's threads.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")


@functools.cache
def _controller() -> Any:
    """The BLAS libraries of the process: numpy's, and scipy's, which Numba's compiled
    products call (loaded first, so that it is seen)."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


#: How many :func:`one_blas_thread` blocks are open, and the limit they hold (BLAS's
#: threads are the process's: the limit stands while any block is open, in any thread).
_held = 0
_limit: Any = None
_lock = threading.Lock()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """A context in which every BLAS library of the process runs on one thread; inside
    another such block it costs nothing (a training step's settles run inside the
    epoch's)."""
    global _held, _limit
    with _lock:
        if _held == 0:
            _limit = _controller().limit(limits=1, user_api="blas")
        _held += 1
    try:
        yield
    finally:
        with _lock:
            _held -= 1
            if _held == 0:
                _limit.restore_original_limits()
                _limit = None


P = ParamSpec("P")
R = TypeVar("R")


def on_one_blas_thread(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run inside :func:`one_blas_thread`."""

    @functools.wraps(function)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        with one_blas_thread():
            return function(*args, **kwargs)

    return wrapped


def each(items: Sequence[T], work: Callable[[T], Any], threads: int) -> None:
    """``work(item)`` for every item, on ``threads`` threads (re-raising an item's error)."""
    if threads <= 1:
        for item in items:
            work(item)
    else:
        list(_pool(threads).map(work, items))


@functools.cache
def _pool(threads: int) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(threads, thread_name_prefix="neuroemu-settle")
