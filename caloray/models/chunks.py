"""Row chunks of a batch shared among threads on CPU, each running single-threaded torch operations.

For element-wise work on small chunks this uses two cores better than torch's intra-op threads: those split every
operation across cores (each core then works on data in the other's cache, and on an oversubscribed machine every
operation waits for the slowest thread) or, below torch's grain size, do not split it at all.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch


def for_each_chunk(fn: Callable[[slice], None], n_rows: int, chunk: int, workers: int | None = None,
                   device: torch.device | str = "cpu") -> None:
    """Call `fn(rows)` for the consecutive row slices of `chunk` rows covering [0, `n_rows`).

    On CPU with `workers` > 1 (default: torch's intra-op thread count) the slices are dealt round-robin to that many
    threads, and torch's intra-op thread count is 1 for the duration of the call (restored after; the setting is
    process-wide, so other threads using torch meanwhile run single-threaded too). `fn` must only write its own
    rows, and its result must not depend on the thread (true of torch's CPU operations). Grad mode is that of the
    caller; an exception in any chunk is raised here.
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    starts = range(0, n_rows, chunk)
    workers = torch.get_num_threads() if workers is None else int(workers)
    workers = max(1, min(workers, len(starts))) if torch.device(device).type == "cpu" else 1
    if workers == 1:
        for start in starts:
            fn(slice(start, start + chunk))
        return
    grad = torch.is_grad_enabled()

    def run(worker: int) -> None:
        with torch.set_grad_enabled(grad):
            for start in starts[worker::workers]:
                fn(slice(start, start + chunk))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, range(workers)))
    finally:
        torch.set_num_threads(threads)
