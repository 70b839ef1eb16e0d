"""Registered ensembles as MLflow `pyfunc` models: the task each kind serves, its signature and input example.

The model is logged as "models from code" (`pyfunc_code.py`, a caloray file that calls `set_model`), not as a
cloudpickled object: MLflow stores the file's text, and loading runs it, which imports `EnsemblePyfunc` from
the installed caloray. The weights are the artifact `ensemble.pt`, read by caloray's `load_model`
(`torch.load(weights_only=True)`), so nothing in a registered model is ever unpickled.

The task is chosen from what the ensemble's members can do (not from a list of kinds), so kinds added later
serve the task their capabilities allow:

- ``generate`` — the members make full showers alone (`caloray.generate.ShowerSampler` accepts them): input a
  column ``incident_energy_mev`` (MeV), param ``seed``; output showers (B, V) float32 MeV, identical to
  `caloray.generate.generate_showers(sampler, energies, seed, batch_size=B)` on the same checkpoint;
- ``calibrate`` — the members have a likelihood of shower features given E_inc (`log_prob_features`, e.g.
  Flow-I): input showers (B, V) MeV; output ``e_pred_mev``, ``z_lo_mev``, ``z_hi_mev`` (MeV) and ``flags``
  of the MLE calibration in float64 without dequantization noise (as `caloray.calibrate.calibrate_features`);
- ``regress`` — the members have `predict` (direct regression): input showers (B, V) MeV; output
  ``e_pred_mev``;
- none — e.g. a Flow-II that needs layer energies: the model is still logged and loadable, `predict` refuses.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from caloray.errors import CalorayError

#: The file MLflow runs to build the model ("models from code").
CODE_FILE = Path(__file__).with_name("pyfunc_code.py")
#: Artifact keys of the logged model.
WEIGHTS = "ensemble"
TASKS = ("generate", "calibrate", "regress")
ENERGY_COLUMN = "incident_energy_mev"
CALIBRATION_COLUMNS = ("e_pred_mev", "z_lo_mev", "z_hi_mev", "flags")


class PyfuncTaskError(CalorayError, ValueError):
    """A registered model is asked for a task its kind cannot serve, or is given malformed input."""


def _first_member(model: Any) -> Any:
    members = getattr(model, "members", None)
    return members[0] if members is not None else model


def pyfunc_task(model: Any) -> str | None:
    """The task `model` (an ensemble or single model) serves through pyfunc, by capability; None if none."""
    from caloray.generate.models import GenerationError, ShowerSampler

    try:
        ShowerSampler(model)
        return "generate"
    except GenerationError:
        pass
    member = _first_member(model)
    if callable(getattr(member, "log_prob_features", None)) and callable(getattr(member, "layer_energies", None)):
        return "calibrate"
    if callable(getattr(member, "predict", None)):
        return "regress"
    return None


def model_signature(task: str | None, n_voxels: int) -> Any:
    """The `ModelSignature` of `task` for showers of `n_voxels` voxels (None for no task)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec

    showers = TensorSpec(np.dtype(np.float64), (-1, n_voxels), "showers")
    if task == "generate":
        return ModelSignature(
            inputs=Schema([ColSpec(DataType.double, ENERGY_COLUMN)]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_voxels), "showers")]),
            params=ParamSchema([ParamSpec("seed", DataType.long, 0)]),
        )
    if task == "calibrate":
        columns = [ColSpec(DataType.double, name) for name in CALIBRATION_COLUMNS[:3]]
        return ModelSignature(
            inputs=Schema([showers]),
            outputs=Schema([*columns, ColSpec(DataType.long, "flags")]),
            params=ParamSchema([ParamSpec("energy_min_mev", DataType.double, None),
                                ParamSpec("energy_max_mev", DataType.double, None)]),
        )
    if task == "regress":
        return ModelSignature(inputs=Schema([showers]), outputs=Schema([ColSpec(DataType.double, "e_pred_mev")]))
    return None


def input_example(task: str | None, showers_mev: np.ndarray, incident_energies_mev: np.ndarray) -> Any:
    """A few held-out rows as the task's input: the incident energies (generate) or the showers (others)."""
    if task == "generate":
        return pd.DataFrame({ENERGY_COLUMN: np.asarray(incident_energies_mev, dtype=np.float64).reshape(-1)})
    if task in ("calibrate", "regress"):
        return np.asarray(showers_mev, dtype=np.float64)
    return None


# MLflow asks for `predict` type hints when the class is defined; the logged signature is the schema instead.
warnings.filterwarnings("ignore", message=".*Add type hints to the `predict` method", category=UserWarning)


class EnsemblePyfunc(mlflow.pyfunc.PythonModel):
    """The pyfunc face of a registered caloray ensemble (see the module docstring for the tasks).

    `model_config` (set when logging): ``task``, ``energy_min_mev``/``energy_max_mev`` (the training range,
    the default calibration range). Nothing but this class's name is serialized.
    """

    # No type hints on load_context/predict: MLflow reads predict's hints as a schema and warns on `Any`;
    # the signature logged with the model is the schema.
    def load_context(self, context):
        from caloray.models import load_model

        self.config = dict(context.model_config or {})
        self.task = self.config.get("task")
        self.model = load_model(context.artifacts[WEIGHTS], expected_kind="ensemble").eval()

    def predict(self, context, model_input, params=None):
        params = params or {}
        if self.task == "generate":
            return self._generate(model_input, int(params.get("seed") or 0))
        if self.task in ("calibrate", "regress"):
            showers = _showers(model_input)
            return self._calibrate(showers, params) if self.task == "calibrate" else self._regress(showers)
        raise PyfuncTaskError(f"a {getattr(self.model, 'member_kind', '?')!r} ensemble serves no pyfunc task "
                              f"({', '.join(TASKS)}); load it with caloray.tracking.load instead")

    def _generate(self, model_input: Any, seed: int) -> np.ndarray:
        from caloray.generate.models import ShowerSampler, generate_showers

        if isinstance(model_input, pd.DataFrame):
            if ENERGY_COLUMN not in model_input:
                raise PyfuncTaskError(f"generate: input lacks the column {ENERGY_COLUMN!r}")
            model_input = model_input[ENERGY_COLUMN].to_numpy()
        energies = np.asarray(model_input, dtype=np.float64).reshape(-1)
        return generate_showers(ShowerSampler(self.model), energies, seed, batch_size=max(1, len(energies)))

    def _calibrate(self, showers: np.ndarray, params: dict[str, Any]) -> pd.DataFrame:
        import torch

        from caloray.calibrate.engine import calibrate_features, shower_features

        e_min = params.get("energy_min_mev") or self.config.get("energy_min_mev")
        e_max = params.get("energy_max_mev") or self.config.get("energy_max_mev")
        if e_min is None or e_max is None:
            raise PyfuncTaskError("calibrate: the model records no training energy range; pass the params "
                                  "energy_min_mev and energy_max_mev")
        model = self.model.double()
        with torch.no_grad():
            features = shower_features(model, torch.as_tensor(showers, dtype=torch.float64))
            result = calibrate_features(model, features, float(e_min), float(e_max))
        return pd.DataFrame({"e_pred_mev": result.e_pred.numpy(), "z_lo_mev": result.z_lo.numpy(),
                             "z_hi_mev": result.z_hi.numpy(), "flags": result.flags.numpy().astype(np.int64)})

    def _regress(self, showers: np.ndarray) -> pd.DataFrame:
        import torch

        model = self.model.double()
        with torch.no_grad():
            e_pred = model.predict({"showers": torch.as_tensor(showers, dtype=torch.float64)})
        return pd.DataFrame({"e_pred_mev": e_pred.numpy()})


def _showers(model_input: Any) -> np.ndarray:
    """(B, V) float64 showers from a tensor input (array, or a dict/DataFrame holding "showers")."""
    if isinstance(model_input, dict):
        model_input = model_input.get("showers")
    if isinstance(model_input, pd.DataFrame):
        model_input = np.stack(model_input.iloc[:, 0].to_numpy())
    showers = np.asarray(model_input, dtype=np.float64)
    if showers.ndim != 2:
        raise PyfuncTaskError(f"expected showers of shape (B, V), got {showers.shape}")
    return showers


@contextmanager
def _logging_conditions(folder: Path) -> Iterator[None]:
    """What `Model.log` needs around it, restored afterwards:

    - no uv project detection (`MLFLOW_UV_AUTO_DETECT=false`): caloray passes its own pip requirements, and the
      detection reads the working directory;
    - a working directory that exists: Ray may remove a job's unpacked `working_dir` while its driver still runs
      (seen on the local cluster after the training workers ended), and MLflow calls `os.getcwd()` while logging.
      Only then the block runs in `folder`.
    """
    previous_uv = os.environ.get("MLFLOW_UV_AUTO_DETECT")
    os.environ["MLFLOW_UV_AUTO_DETECT"] = "false"
    try:
        os.getcwd()
    except FileNotFoundError:  # the lost folder cannot be re-entered afterwards: `folder` stays the cwd
        os.chdir(folder)
    try:
        yield
    finally:
        if previous_uv is None:
            os.environ.pop("MLFLOW_UV_AUTO_DETECT", None)
        else:
            os.environ["MLFLOW_UV_AUTO_DETECT"] = previous_uv


def log_pyfunc_model(tracking_uri: str, run_id: str, folder: Path, model: Any, *, name: str,
                     example_showers: np.ndarray, example_energies: np.ndarray,
                     energy_range_mev: tuple[float, float] | None, pip_requirements: list[str]) -> Any:
    """Log `folder` (holding ensemble.pt and the description files) as an MLflow pyfunc model of `run_id`.

    Returns MLflow's `ModelInfo` (`model_uri` is ``models:/<model id>``). The files of `folder` become the
    model's artifacts, so a registered version carries its manifest, configs and weights together.
    """
    import mlflow
    from mlflow.models import Model

    from caloray.tracking.store import using_tracking_uri

    task = pyfunc_task(model)
    n_voxels = int(example_showers.shape[1])
    config: dict[str, Any] = {"task": task}
    if energy_range_mev is not None and all(np.isfinite(energy_range_mev)):
        config |= {"energy_min_mev": float(energy_range_mev[0]), "energy_max_mev": float(energy_range_mev[1])}
    artifacts = {WEIGHTS if p.name == "ensemble.pt" else p.name: str(p) for p in sorted(folder.iterdir())
                 if p.is_file()}
    with using_tracking_uri(tracking_uri), _logging_conditions(folder):
        return Model.log(
            artifact_path=None, name=name, flavor=mlflow.pyfunc, run_id=run_id, python_model=str(CODE_FILE),
            artifacts=artifacts, model_config=config, signature=model_signature(task, n_voxels),
            input_example=input_example(task, example_showers, example_energies),
            pip_requirements=pip_requirements,
        )
