"""A driver-side progress bar over all members' epochs, fed by the checkpoints they write."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tqdm import tqdm


class TrainingProgress:
    """Polls `<storage>/member-*/epoch-*/history.json` and advances one bar of members × epochs.

    Workers' own logs stay quiet; the bar shows finished epochs and the latest validation loss.
    Use as a context manager around the members' fits.
    """

    def __init__(self, storage: Path, members: int, epochs: int, interval_s: float = 2.0, enabled: bool = True):
        self.storage = storage
        self.total = members * epochs
        self.interval_s = interval_s
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: tqdm | None = None

    def _epochs_done(self) -> tuple[int, str]:
        done, latest, latest_time = 0, "", -1.0
        for member in sorted(self.storage.glob("member-*")):
            histories = sorted(member.glob("epoch-*/history.json"))
            if not histories:
                continue
            try:
                history = json.loads(histories[-1].read_text())
            except (OSError, ValueError):
                continue  # being written right now
            entries = history.get("history", history) if isinstance(history, dict) else history
            done += len(entries)
            mtime = histories[-1].stat().st_mtime
            if entries and mtime > latest_time:
                latest_time = mtime
                latest = f"{member.name} val_loss {entries[-1].get('val_loss', float('nan')):.4f}"
        return min(done, self.total), latest

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._refresh()

    def _refresh(self) -> None:
        if self._bar is None:
            return
        done, latest = self._epochs_done()
        self._bar.n = done
        self._bar.set_postfix_str(latest, refresh=False)
        self._bar.refresh()

    def __enter__(self) -> TrainingProgress:
        if self.enabled:
            self._bar = tqdm(total=self.total, desc="train (member-epochs)", unit="epoch")
            self._thread = threading.Thread(target=self._run, daemon=True, name="caloray-train-progress")
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._refresh()
        if self._bar is not None:
            self._bar.close()
