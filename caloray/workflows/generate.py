"""Workflow `generate`: sharded, resumable, validated generation from a trained model (`caloray.generate`)."""

from __future__ import annotations

from caloray.generate import GenerationConfig as Config
from caloray.generate import generate
from caloray.io.checks import check_shower_inputs
from caloray.workflows import Result

__all__ = ["Config", "run"]


def check_inputs(config: Config, *, check_values: bool = False) -> None:
    """The validation's reference files (readable, keys, shapes, the geometry's voxel count), before Ray starts."""
    from caloray.geometry import get_geometry, read_binning_xml

    if config.reference:
        geometry = None if config.geometry is None else (
            read_binning_xml if config.geometry.endswith(".xml") else get_geometry)(config.geometry)
        check_shower_inputs(config.reference, geometry=geometry, check_values=check_values)


def run(config: Config, *, progress: bool = True) -> Result:
    """Generate (or resume) into `config.out`; `passed` is the automatic validation's verdict (None: off);
    `detail`: the `GenerationResult`."""
    from caloray.tracking import ui_command

    result = generate(config, progress=progress)
    lines = [f"generated {result.n_generated} new showers ({result.showers_per_s:.4g} showers/s); "
             f"{result.n_showers} showers in {len(result.shards)} shard(s) in {result.out_dir}",
             f"manifest: {result.manifest_path}"]
    if result.validation is not None:
        lines.append((result.validation.folder / "summary.txt").read_text().rstrip())
    lines.append(f"MLflow run {result.mlflow_run_id} ({result.mlflow_status}); browse with: "
                 f"{ui_command(result.tracking_uri, result.out_dir)}")
    if result.validation_passed is False:
        lines.append("validation FAILED (showers kept; the MLflow run is marked FAILED)")
    metrics = {"n_showers": float(result.n_showers), "showers_per_s": result.showers_per_s}
    if result.validation_passed is not None:
        metrics["validation_passed"] = float(result.validation_passed)
    return Result(out=result.out_dir, metrics=metrics, paths={"shards": list(result.shards)},
                  summary="\n".join(lines), passed=result.validation_passed, detail=result)
