"""How a settle uses the cores: BLAS threads for the matrix products, and threads that
settle the chunks of a batch side by side.

On a machine with a few cores, shared with other work, BLAS threads that spin and wait on
small products cost far more than they share, and two pools of threads busy-waiting on the
same cores slow each other down: the engine holds BLAS to one thread wherever its products
are small or its own threads run, and keeps BLAS as configured for the one large product.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

#: Below this many multiply-adds (batch x rows x columns) a product is too small for a
#: second BLAS thread to pay for waking it; see :func:`sweep_threads`.
SMALL_PRODUCT = 1 << 22

T = TypeVar("T")


@functools.cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread."""
    return _controller().limit(limits=1, user_api="blas")


def sweep_threads(largest_product: int) -> Any:
    """The BLAS threads for the sweeps of a batch in one chunk, whose largest per-sweep
    product has ``largest_product`` multiply-adds: one when it is small
    (:data:`SMALL_PRODUCT`), else BLAS as configured."""
    if largest_product < SMALL_PRODUCT:
        return one_blas_thread()
    return contextlib.nullcontext()


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
