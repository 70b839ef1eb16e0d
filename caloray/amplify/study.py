"""The amplification study: repetitions as Ray tasks, MSE curves, amplification factors, tables, plots, MLflow.

One repetition (pure function `run_repetition`, deterministic per (seed, repetition)): draw `n_train` truth
events; fit the 5-parameter mixture; train K flows; sample `generated_sizes` events from every generator and
record the quantile MSE for each N_q; read each generator's asymptotic MSE off its curve by fitting
MSE(N) = a + b/N (the paper's plateau), and also compute it exactly from the model's quantile probabilities.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from caloray.amplify.config import MODELS, AmplificationConfig
from caloray.amplify.fit import fit_two_gaussians
from caloray.amplify.generator import EnsembleGenerator, FlowGenerator, Generator, ResampleGenerator, train_flow
from caloray.amplify.metrics import fit_mse_curve, quantile_fractions, quantile_mse, summarize_amplification
from caloray.config import to_dict

DEFAULT_OUT = "outputs/amplification"
_REFERENCE = "truth"  # truth samples of each generated size: a Monte Carlo check of the analytic truth line


@dataclass
class RepetitionResult:
    """Rows of one repetition: `curves` (MSE per generated size) and `asymptotes` (per model and N_q)."""

    repetition: int
    curves: list[dict[str, Any]]
    asymptotes: list[dict[str, Any]]
    final_losses: list[float]
    seconds: float


@dataclass
class AmplificationResult:
    """What `run_amplification` produced: tidy tables, output paths, notes, wall time."""

    summary: list[dict[str, Any]]
    asymptotes: list[dict[str, Any]]
    curves: list[dict[str, Any]]
    paths: dict[str, Path]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    repetition_seconds: list[float] = field(default_factory=list)
    mlflow_run_id: str | None = None

    def factor(self, model: str, n_quantiles: int) -> float:
        """Amplification factor (curve method) of `model` at `n_quantiles`."""
        for row in self.summary:
            if row["model"] == model and row["n_quantiles"] == n_quantiles:
                return float(row["amplification"])
        raise KeyError((model, n_quantiles))


def _seeds(config: AmplificationConfig, repetition: int) -> dict[str, np.random.SeedSequence]:
    root = np.random.SeedSequence([config.seed, repetition])
    data, members, *per_model = root.spawn(2 + len(MODELS) + 1)
    return {"data": data, "members": members} | dict(zip((*MODELS, _REFERENCE), per_model, strict=True))


def run_repetition(config: AmplificationConfig, repetition: int) -> RepetitionResult:
    """One independent repetition of the study (no Ray inside; deterministic per (seed, repetition))."""
    t0 = time.perf_counter()
    torch.set_num_threads(max(1, config.torch_threads))
    seeds = _seeds(config, repetition)
    truth = config.truth.model()
    edges = {q: truth.quantile_edges(q) for q in config.n_quantiles}
    train = truth.sample(config.n_train, np.random.default_rng(seeds["data"]))

    generators: dict[str, Generator] = {}
    if "fit" in config.models:
        generators["fit"] = fit_two_gaussians(train, truth.low, truth.high).model
    final_losses: list[float] = []
    if "flow" in config.models or "ensemble" in config.models:
        k = config.ensemble_members if "ensemble" in config.models else 1
        flows = []
        for seed in seeds["members"].generate_state(k, dtype=np.uint64):
            flow, losses = train_flow(train, config.flow, int(seed))
            flows.append(FlowGenerator(flow))
            final_losses.append(losses[-1] if losses else float("nan"))
        if "flow" in config.models:
            generators["flow"] = flows[0]
        if "ensemble" in config.models:
            generators["ensemble"] = EnsembleGenerator(flows)
    if "resample" in config.models:
        generators["resample"] = ResampleGenerator(train)
    generators[_REFERENCE] = truth

    curves: list[dict[str, Any]] = []
    asymptotes: list[dict[str, Any]] = []
    for name, gen in generators.items():
        rng = np.random.default_rng(seeds[name])
        mse = {q: [] for q in config.n_quantiles}
        for size in config.generated_sizes:
            sample = gen.sample(size, rng)
            for q in config.n_quantiles:
                value = quantile_mse(quantile_fractions(sample, edges[q]))
                mse[q].append(value)
                curves.append({"repetition": repetition, "model": name, "n_quantiles": q, "n_generated": size,
                               "mse": value})
        if name == _REFERENCE:
            continue
        for q in config.n_quantiles:
            a, b = fit_mse_curve(config.generated_sizes, mse[q])
            exact = quantile_mse(gen.quantile_probabilities(edges[q]))
            asymptotes.append({"repetition": repetition, "model": name, "n_quantiles": q, "mse_curve": a,
                               "curve_slope": b, "mse_exact": exact})
    if "sample" in config.models:  # the training events themselves: no curve, their MSE is the asymptote
        for q in config.n_quantiles:
            value = quantile_mse(quantile_fractions(train, edges[q]))
            asymptotes.append({"repetition": repetition, "model": "sample", "n_quantiles": q, "mse_curve": value,
                               "curve_slope": 0.0, "mse_exact": value})
    return RepetitionResult(repetition, curves, asymptotes, final_losses, time.perf_counter() - t0)


def run_repetitions(config: AmplificationConfig) -> list[RepetitionResult]:
    """All repetitions: one Ray task each (1 CPU) when `use_ray`, else in this process."""
    if not config.use_ray:
        return [run_repetition(config, r) for r in range(config.repetitions)]
    import ray

    from caloray.runtime import init_ray

    init_ray()
    task = ray.remote(num_cpus=1)(run_repetition)
    return ray.get([task.remote(config, r) for r in range(config.repetitions)])


def summarize(config: AmplificationConfig, asymptotes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, N_q): amplification from the curve plateau and from exact probabilities."""
    rows = []
    for model in [m for m in MODELS if m in config.models]:
        for q in config.n_quantiles:
            sel = [r for r in asymptotes if r["model"] == model and r["n_quantiles"] == q]
            if not sel:
                continue
            curve = summarize_amplification([r["mse_curve"] for r in sel], q, config.n_train)
            exact = summarize_amplification([r["mse_exact"] for r in sel], q, config.n_train)
            rows.append({
                "model": model, "n_quantiles": q, "n_train": config.n_train, "repetitions": curve.repetitions,
                "amplification": curve.factor, "amplification_err": curve.factor_err,
                "equivalent_events": curve.equivalent_events, "mse_asymptotic": curve.mse_mean,
                "mse_asymptotic_sem": curve.mse_sem, "amplification_rep_mean": curve.rep_mean,
                "amplification_rep_std": curve.rep_std, "amplification_exact": exact.factor,
                "amplification_exact_err": exact.factor_err,
            })
    return rows


def _notes(config: AmplificationConfig, summary: list[dict[str, Any]]) -> list[str]:
    notes = []
    if config.repetitions < 10:
        notes.append(f"only {config.repetitions} repetitions: the spec asks for ≥ 10 for quoted uncertainties")
    q = max(config.n_quantiles)
    for row in summary:
        if row["model"] == "ensemble" and row["n_quantiles"] == q and not row["amplification"] > 1:
            notes.append(
                f"ensemble amplification at {q} quantiles is {row['amplification']:.3g} ≤ 1: the flows add less "
                "information than their training events (too few steps/members, or over-fitting; see the curves)")
    return notes


def _write_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_amplification(config: AmplificationConfig, out_dir: str | Path = DEFAULT_OUT) -> AmplificationResult:
    """Run the study and write curves.csv, repetitions.csv, summary.csv/.txt, amplification.json, config.yaml,
    provenance.json and plots/ into `out_dir`; log them to MLflow when `config.tracking_uri` is set."""
    from caloray.amplify.plots import plot_amplification, plot_mse_curves
    from caloray.provenance import write_provenance
    from caloray.tables import format_table

    t0 = time.perf_counter()
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    reps = sorted(run_repetitions(config), key=lambda r: r.repetition)
    curves = [row for r in reps for row in r.curves]
    asymptotes = [row for r in reps for row in r.asymptotes]
    summary = summarize(config, asymptotes)
    notes = _notes(config, summary)
    seconds = time.perf_counter() - t0

    paths = {
        "curves": _write_csv(curves, out / "curves.csv"),
        "repetitions": _write_csv(asymptotes, out / "repetitions.csv"),
        "summary": _write_csv(summary, out / "summary.csv"),
    }
    title = (f"Amplification over {config.n_train} training events "
             f"({config.repetitions} repetitions; factor = equivalent truth events / n_train)")
    columns = ("model", "n_quantiles", "amplification", "amplification_err", "equivalent_events",
               "amplification_exact", "amplification_rep_std")
    text = format_table([{k: row[k] for k in columns} for row in summary], title=title)
    text += "".join(f"\nnote: {n}" for n in notes)
    paths["table"] = out / "summary.txt"
    paths["table"].write_text(text + "\n")
    print(text, flush=True)
    paths["config"] = out / "config.yaml"
    paths["config"].write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    record = {
        "definition": "amplification = truth events with expected quantile MSE equal to the generator's "
                      "asymptotic quantile MSE, divided by n_train; truth MSE(N) = (1 - 1/N_q) / (N_q N)",
        "config": to_dict(config), "summary": summary, "repetitions": asymptotes, "notes": notes,
        "seconds": seconds, "repetition_seconds": [r.seconds for r in reps],
        "flow_final_losses": {r.repetition: r.final_losses for r in reps},
    }
    paths["json"] = out / "amplification.json"
    paths["json"].write_text(json.dumps(record, indent=1))
    paths["mse_plot"] = plot_mse_curves(config, curves, asymptotes, summary, out / "plots" / "mse_vs_events.png")
    paths["amplification_plot"] = plot_amplification(summary, out / "plots" / "amplification.png")
    paths["provenance"] = write_provenance(out / "provenance.json", config, stage="amplification")
    result = AmplificationResult(summary, asymptotes, curves, paths, notes, seconds, [r.seconds for r in reps])
    if config.tracking_uri:
        from caloray.amplify.tracking import log_study

        result.mlflow_run_id = log_study(config, result, out)
    return result
