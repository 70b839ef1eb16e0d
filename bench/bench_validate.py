"""Size of the validation tests under H0 and the seed scatter of FGD∞ (prints figures, no asserts).

    python -m bench --only validate            # 400 H0 repetitions per (case, statistic)
    python -m bench --only validate --quick    # 200 repetitions

Rows "validate/size": rejection rate at α = 0.05 and 0.01 over H0 repetitions (fresh samples and seeds each)
of three p-values, on Gaussian and zero-inflated lognormal features (d = 3, batch 24, 99 null values):
- "gate": the calibrated test that gates (held-out experiment against the permutation null of its rows);
- "bootstrap-held-out": the same held-out experiment against a bootstrap null drawn with replacement from the
  other reference rows (a reference of 2 batches, as in a generation run's validation): the alternative the
  calibrated test does not use, shown for its size;
- "median_p": the thesis summary (median alternative replicate against the bootstrap null), not a test.
Binomial standard deviation of a rate: sqrt(α(1 − α)/repetitions).
Rows "validate/fgd-inf": standard deviation over 30 subsampling seeds of FGD∞ on one sample pair (population
value 0.08), for the old single nested path and the spec's definition, and the reported fit uncertainty.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
import torch

from caloray.stats import get_statistic
from caloray.stats.frechet import extrapolate_to_infinite_n, fgd, fgd_inf_fit
from caloray.validate import ExperimentDesign, null_and_alternative, p_value, summarize
from caloray.validate.replicates import held_out_test
from caloray.validate.sampling import held_out_rows

Row = tuple[str, float, str]
BATCH, D, N_NULL = 24, 3, 99
STATISTICS = ("mean-ks", "sks", "swd", "mmd", "fgd", "fgd-inf")
MIX = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]])


def gaussian(rng: np.random.Generator, rows: int) -> np.ndarray:
    return rng.normal(size=(rows, D)) @ MIX


def zero_inflated_lognormal(rng: np.random.Generator, rows: int) -> np.ndarray:
    values = rng.lognormal(mean=2.0, sigma=1.5, size=(rows, D))
    return np.where(rng.random((rows, D)) < np.array([0.3, 0.5, 0.7]), 0.0, values)


CASES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "gaussian": gaussian, "zero-inflated-lognormal": zero_inflated_lognormal}


def bootstrap_held_out_p(reference: np.ndarray, candidate: np.ndarray, statistic: str, design: ExperimentDesign
                         ) -> float:
    """The held-out experiment against N_NULL pairs drawn with replacement from the reference rows not held out."""
    x_rows, y_rows = held_out_rows(design, len(reference), len(candidate))
    pooled = np.concatenate([reference, candidate])
    rest = np.setdiff1d(np.arange(len(reference)), x_rows)
    rng = np.random.default_rng([design.seed, 99])
    context = design.context(D)
    fn = get_statistic(statistic)
    observed = fn(torch.as_tensor(pooled[x_rows][None]), torch.as_tensor(pooled[y_rows][None]), context)[0].item()
    draws = rng.choice(rest, size=(2, N_NULL, BATCH), replace=True)
    null = fn(torch.as_tensor(pooled[draws[0]]), torch.as_tensor(pooled[draws[1]]), context).numpy()
    return p_value(null, observed)


def size_rows(repetitions: int, statistics: Sequence[str]) -> list[Row]:
    rows: list[Row] = []
    for case, sample in CASES.items():
        for statistic in statistics:
            p = {"gate": [], "bootstrap-held-out": [], "median_p": []}
            for r in range(repetitions):
                rng = np.random.default_rng([23, r])
                reference, candidate = sample(rng, 2 * BATCH), sample(rng, BATCH)
                design = ExperimentDesign(batch_size=BATCH, n_iter=N_NULL, n_slices=8, seed=r, chunk_size=N_NULL)
                p["gate"].append(held_out_test(reference, candidate, statistic, design).p_value)
                p["bootstrap-held-out"].append(bootstrap_held_out_p(reference, candidate, statistic, design))
                if statistic in ("mean-ks", "swd"):  # the summary needs all thesis replicates: two statistics suffice
                    null, alt = null_and_alternative(reference, candidate, statistic, design)
                    p["median_p"].append(summarize(null, alt).median_p)
            for kind, values in p.items():
                for alpha in (0.05, 0.01):
                    if values:
                        rate = float(np.mean(np.asarray(values) <= alpha + 1e-12))
                        rows.append((f"validate/size/{case}/{statistic}/{kind}@{alpha}", rate, "rate"))
                        print(f"{case:24s} {statistic:8s} {kind:19s} α={alpha:<5} rate {rate:.3f} "
                              f"(± {np.sqrt(alpha * (1 - alpha) / len(values)):.3f})", flush=True)
    return rows


def fgd_inf_rows() -> list[Row]:
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(600, 4)))
    y = torch.as_tensor(rng.normal(size=(600, 4)) + np.sqrt(0.08 / 4))
    fits = [fgd_inf_fit(x, y, seed=s) for s in range(30)]
    old = []
    for s in range(30):  # the previous definition: one nested path, fractions 0.2..1.0, unconstrained fit
        generator = torch.Generator().manual_seed(s)
        order_x, order_y = torch.randperm(600, generator=generator), torch.randperm(600, generator=generator)
        sizes = [120, 240, 360, 480, 600]
        values = torch.stack([fgd(x[order_x[:k]], y[order_y[:k]]) for k in sizes], dim=1)
        old.append(extrapolate_to_infinite_n(sizes, values).item())
    rows = [("validate/fgd-inf/seed-sd-nested-path", float(np.std(old, ddof=1)), ""),
            ("validate/fgd-inf/seed-sd-spec", float(np.std([f.value.item() for f in fits], ddof=1)), ""),
            ("validate/fgd-inf/reported-uncertainty", float(np.mean([f.uncertainty.item() for f in fits])), "")]
    for name, value, _ in rows:
        print(f"{name:40s} {value:.4f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--statistics", nargs="+", default=list(STATISTICS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    return fgd_inf_rows() + size_rows(200 if args.quick else 400, args.statistics)


if __name__ == "__main__":
    main()
