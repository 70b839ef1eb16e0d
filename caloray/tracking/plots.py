"""Loss-curve figures, drawn with the Agg canvas (no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_loss_curves(histories: Mapping[str, Sequence[Mapping[str, float]]], path: str | Path) -> Path:
    """Train (dashed) and validation (solid) loss per epoch for each labelled history; writes a PNG."""
    figure = Figure(figsize=(6.0, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for i, (label, history) in enumerate(histories.items()):
        epochs = [row["epoch"] for row in history]
        color = f"C{i % 10}"
        axes.plot(epochs, [row["train_loss"] for row in history], "--", color=color, label=f"{label} train")
        axes.plot(epochs, [row["val_loss"] for row in history], "-", color=color, label=f"{label} validation")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
