"""Row chunks shared among single-threaded threads: every row once, the caller's settings kept, errors raised."""

from __future__ import annotations

import pytest
import torch

from caloray.models.chunks import for_each_chunk


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_every_row_is_visited_once_and_the_thread_count_is_restored(workers):
    torch.set_num_threads(2)
    visits = torch.zeros(1000, dtype=torch.long)
    seen = []

    def fn(rows: slice) -> None:
        seen.append((torch.get_num_threads(), torch.is_grad_enabled()))
        visits[rows] += 1

    with torch.no_grad():
        for_each_chunk(fn, 1000, 64, workers)
    assert torch.equal(visits, torch.ones_like(visits))
    assert len(seen) == 16 and not any(grad for _, grad in seen)
    if workers > 1:  # workers run their operations single-threaded
        assert {threads for threads, _ in seen} == {1}
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)


def test_an_error_in_a_chunk_is_raised_and_the_thread_count_restored():
    torch.set_num_threads(2)

    def fn(rows: slice) -> None:
        if rows.start == 128:
            raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        for_each_chunk(fn, 512, 64, workers=2)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        for_each_chunk(fn, 10, 0)
