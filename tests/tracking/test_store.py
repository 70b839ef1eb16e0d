"""Tracking URI resolution, the UI command, flat params and the loss-curve figure (no MLflow runs)."""

from __future__ import annotations

from caloray.tracking import flatten_params, plot_loss_curves, resolve_tracking_uri, ui_command
from caloray.tracking.params import MAX_PARAM_CHARS


def test_tracking_uri_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri, artifacts = resolve_tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert artifacts == (tmp_path.resolve() / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert resolve_tracking_uri(tmp_path) == ("http://tracking:5000", None)
    assert resolve_tracking_uri(tmp_path, "sqlite:///x.db") == ("sqlite:///x.db", None)


def test_ui_command(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert ui_command(uri) == f"mlflow ui --backend-store-uri {uri}"
    assert ui_command(uri, tmp_path).endswith(
        f"--default-artifact-root {(tmp_path / 'mlartifacts').as_uri()}"
    )
    # a tracking server serves the UI itself: its address, without credentials
    assert ui_command("http://u:pw@mlflow:5000") == "open http://mlflow:5000 in a browser (MLflow tracking server)"


def test_flatten_params():
    flat = flatten_params(
        {"model": {"kind": "k", "kwargs": {"bins": 8, "voxel_layer": list(range(1000))}}, "x": 1}
    )
    assert flat["model.kind"] == "k" and flat["model.kwargs.bins"] == "8" and flat["x"] == "1"
    assert len(flat["model.kwargs.voxel_layer"]) == MAX_PARAM_CHARS
    assert flat["model.kwargs.voxel_layer"].endswith("…(truncated)")


def test_loss_curve_png(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 2.0, "val_loss": 2.5},
        {"epoch": 2, "train_loss": 1.0, "val_loss": 1.5},
    ]
    path = plot_loss_curves({"member 0": history, "member 1": history}, tmp_path / "curves.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_redact_uri_strips_credentials_only():
    from caloray.tracking.store import redact_uri

    cases = {
        "http://ray:s3cret@mlflow.caloray.svc.cluster.local:5000/x?y=1": "http://mlflow.caloray.svc.cluster.local:5000/x?y=1",
        "postgresql+psycopg2://mlflow:p%40ss@db:5432/mlflow": "postgresql+psycopg2://db:5432/mlflow",
        "http://token@[::1]:5000": "http://[::1]:5000",
        "https://user:pa:ss@host": "https://host",
        "http://mlflow:5000": "http://mlflow:5000",
        "sqlite:////tmp/mlflow.db": "sqlite:////tmp/mlflow.db",
    }
    for uri, expected in cases.items():
        assert redact_uri(uri) == expected, uri
    assert redact_uri(None) is None and redact_uri("") == ""
