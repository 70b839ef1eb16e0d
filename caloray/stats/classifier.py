"""The CaloChallenge classifier metric: a DNN separates reference (label 0) from candidate (label 1) rows.

Protocol (CaloChallenge; spec §6 "a classifier AUC on high-level features"):
1. Each sample is split into fixed train / validation / test parts (`ClassifierConfig.fractions`) by a
   permutation drawn from the seed, so the test rows never enter training, early stopping or calibration.
2. Inputs are standardized with the training split's mean and standard deviation.
3. An MLP (hidden layers of LeakyReLU + dropout, one logit out) is trained with Adam on binary cross-entropy,
   the two classes weighted to equal total weight (so the output estimates the posterior under equal priors,
   whatever the sample sizes); training stops when the validation loss has not improved for `patience`
   epochs and the best epoch's weights are kept.
4. The raw output is calibrated by isotonic regression of the labels on the validation split.
5. On the test split: AUC of the raw output (the ranking; calibration does not change it except by ties) and
   the Jensen–Shannon divergence estimated from the calibrated probability D(x) = P(candidate | x):

       JSD = 1 + ½ mean_{ref test} log₂(1 − D) + ½ mean_{cand test} log₂ D     [bits, 0 ≤ JSD ≤ 1]

   This is the GAN form of JSD(p, q) = log 2 + ½ E_p log(1 − D*) + ½ E_q log D* with D* = q / (p + q) the
   Bayes posterior; for any other D it is a lower bound in expectation, so an imperfect classifier
   underestimates the divergence rather than inventing one. D is clipped to [ε, 1 − ε], ε = 1 / (2 n_val per
   class), the resolution of the isotonic fit, so a test row outside the validation range costs a finite
   log₂(2 n_val) bits.
6. Uncertainties: standard deviation of AUC and JSD over `n_bootstrap` resamples of the test rows (each class
   resampled with replacement separately, the trained classifier fixed).

The reference must be held out from the generator's training data: a generator that replays its training
showers matches those exactly (AUC ≈ 0.5) but is caught against independent showers of the same distribution,
on whose rows it has no copies (tests/stats/test_classifier.py).

Everything is deterministic for a fixed seed on one device: the split and bootstrap come from numpy
generators of (seed, stream); weights, dropout and batch order from torch's generator seeded inside a forked
RNG state; training runs on `threads` torch threads (1 by default, so the reductions are ordered).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import isotonic_regression
from scipy.special import expit
from torch import Tensor, nn

from caloray.anomaly.roc import roc_curve
from caloray.errors import ConfigError

SPLIT_STREAM, BOOTSTRAP_STREAM = 0, 1


@dataclass(frozen=True)
class ClassifierConfig:
    """Settings of the classifier metric (defaults: a few seconds for 10k × 368 rows per sample on one CPU).

    hidden: widths of the hidden layers (the CaloChallenge used 3 × 512 on ≥ 100k showers per sample).
    dropout: dropout probability after each hidden layer.
    lr, batch_size: Adam learning rate and rows per optimizer step.
    epochs, patience: at most `epochs` passes; stop after `patience` epochs without a better validation loss.
    fractions: (train, validation, test) fractions of each sample (normalized if they do not sum to 1).
    n_bootstrap: test-set resamples for the AUC and JSD uncertainties.
    n_bins: equal-width probability bins of the calibration curve.
    seed: split, initialization, dropout, batch order and bootstrap all derive from it.
    threads: torch threads while training (1 keeps the result bit-for-bit reproducible).
    """

    hidden: tuple[int, ...] = (256, 256, 256)
    dropout: float = 0.1
    lr: float = 1e-3
    batch_size: int = 512
    epochs: int = 30
    patience: int = 5
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    n_bootstrap: int = 200
    n_bins: int = 10
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"classifier.hidden must be positive layer widths, got {self.hidden}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"classifier.dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1 or self.patience < 1:
            raise ConfigError("classifier: lr must be > 0 and batch_size, epochs, patience ≥ 1")
        if len(self.fractions) != 3 or min(self.fractions) <= 0:
            raise ConfigError(f"classifier.fractions must be three positive numbers, got {self.fractions}")
        if self.n_bootstrap < 2 or self.n_bins < 2 or self.seed < 0 or self.threads < 1:
            raise ConfigError("classifier: n_bootstrap and n_bins must be ≥ 2, seed ≥ 0, threads ≥ 1")

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-serializable) for metadata and MLflow params."""
        return asdict(self)


@dataclass(frozen=True)
class CalibrationCurve:
    """Binned reliability curve: per probability bin (B,) the weighted mean prediction, the weighted fraction
    of candidate rows (classes weighted to equal totals, as in training) and the number of rows."""

    edges: np.ndarray
    predicted: np.ndarray
    observed: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True)
class ClassifierResult:
    """The classifier metric of one feature map (see the module docstring for the definitions).

    auc, auc_err: test AUC of the raw output and its bootstrap standard deviation (0.5: indistinguishable).
    jsd, jsd_err: JSD estimate in bits (0 … 1) from the calibrated output, and its bootstrap standard deviation.
    n_train, n_val, n_test: (reference, candidate) rows in each split.
    epochs_run, best_epoch: epochs trained before early stopping, and the epoch whose weights were kept (1-based).
    raw_validation: calibration curve of the raw output on the validation split (what isotonic regression fixes).
    calibrated_test: calibration curve of the calibrated output on the test split (held out: near the diagonal).
    """

    auc: float
    auc_err: float
    jsd: float
    jsd_err: float
    n_train: tuple[int, int]
    n_val: tuple[int, int]
    n_test: tuple[int, int]
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    raw_validation: CalibrationCurve
    calibrated_test: CalibrationCurve

    def summary(self) -> dict[str, float | int]:
        """The scalar fields (no curves) for tables and MLflow."""
        return {"auc": self.auc, "auc_err": self.auc_err, "jsd": self.jsd, "jsd_err": self.jsd_err,
                "n_train": sum(self.n_train), "n_val": sum(self.n_val), "n_test": sum(self.n_test),
                "epochs_run": self.epochs_run, "best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss}


# ----- pieces ------------------------------------------------------------------------------------------

def split_rows(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Disjoint (train, validation, test) row indices of a sample of n rows, from one permutation.

    Each part gets at least one row (ValueError when n < 3); sizes are floor(n·f) for train and validation.
    """
    if n < 3:
        raise ValueError(f"a sample needs at least 3 rows to split into train/validation/test, got {n}")
    f = np.asarray(fractions, dtype=np.float64) / float(np.sum(fractions))
    n_train = min(max(int(n * f[0]), 1), n - 2)
    n_val = min(max(int(n * f[1]), 1), n - n_train - 1)
    order = rng.permutation(n)
    return order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]


def build_classifier(d: int, hidden: tuple[int, ...], dropout: float) -> nn.Sequential:
    """MLP d → hidden… → 1 logit, LeakyReLU(0.2) and dropout after every hidden layer."""
    layers: list[nn.Module] = []
    width = d
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def class_weights(labels: np.ndarray) -> np.ndarray:
    """Per-row weights giving each class total weight ½ (labels 0/1, both present)."""
    labels = np.asarray(labels)
    n1 = np.count_nonzero(labels == 1)
    n0 = labels.size - n1
    if n0 == 0 or n1 == 0:
        raise ValueError("both classes need rows")
    return np.where(labels == 1, 0.5 / n1, 0.5 / n0)


def _weighted_bce(logits: Tensor, labels: Tensor, weights: Tensor) -> Tensor:
    losses = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return (losses * weights).sum() / weights.sum()


def _logits(model: nn.Module, x: Tensor, batch_size: int = 65536) -> Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).squeeze(-1) for i in range(0, len(x), batch_size)])


def train_classifier(x_train: Tensor, y_train: Tensor, x_val: Tensor, y_val: Tensor, config: ClassifierConfig,
                     generator: torch.Generator) -> tuple[nn.Module, int, int, float]:
    """Train on (x_train (N, d), y_train (N,) 0/1 float) with early stopping on the class-weighted validation
    BCE; the caller seeds torch's global RNG (dropout) and `generator` (batch order). Returns the model with
    the best epoch's weights, the epochs run, the best epoch (1-based) and its validation loss."""
    model = build_classifier(x_train.shape[1], config.hidden, config.dropout).to(x_train.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    w_train = torch.as_tensor(class_weights(y_train.cpu().numpy()), dtype=x_train.dtype, device=x_train.device)
    w_val = torch.as_tensor(class_weights(y_val.cpu().numpy()), dtype=x_val.dtype, device=x_val.device)
    best_loss, best_epoch, best_state = float("inf"), 0, copy.deepcopy(model.state_dict())
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=generator).to(x_train.device)
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            optimizer.zero_grad()
            loss = _weighted_bce(model(x_train[rows]).squeeze(-1), y_train[rows], w_train[rows])
            loss.backward()
            optimizer.step()
        val_loss = float(_weighted_bce(_logits(model, x_val), y_val, w_val))
        if val_loss < best_loss:
            best_loss, best_epoch, best_state = val_loss, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    model.load_state_dict(best_state)
    return model, epoch, best_epoch, best_loss


def isotonic_calibration(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotone map score → P(label 1) fitted by class-weighted isotonic regression (pool adjacent violators).

    Returns (knots, values): sorted distinct scores and the fitted probability at each; apply with
    `apply_calibration` (linear between knots, constant beyond them).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    weights = class_weights(labels)
    knots, inverse = np.unique(scores, return_inverse=True)
    # tied scores become one point: weighted label mean, summed weight
    weight_sum = np.bincount(inverse, weights=weights)
    label_mean = np.bincount(inverse, weights=weights * labels) / weight_sum
    fit = isotonic_regression(label_mean, weights=weight_sum, increasing=True)
    return knots, np.asarray(fit.x, dtype=np.float64)


def apply_calibration(scores: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Calibrated probabilities of `scores` under the map from `isotonic_calibration`."""
    return np.interp(np.asarray(scores, dtype=np.float64), knots, values)


def jsd_bits(p_reference: np.ndarray, p_candidate: np.ndarray) -> float:
    """JSD estimate in bits from calibrated D = P(candidate | x) on reference and candidate rows (already
    clipped away from 0 and 1): 1 + ½ mean log₂(1 − D_ref) + ½ mean log₂ D_cand."""
    return float(1.0 + 0.5 * np.mean(np.log2(1.0 - p_reference)) + 0.5 * np.mean(np.log2(p_candidate)))


def auc(reference_scores: np.ndarray, candidate_scores: np.ndarray) -> float:
    """P(candidate score > reference score) + ½ P(tie): the ROC area with candidate as the positive class."""
    return roc_curve(reference_scores, candidate_scores).auc


def calibration_curve(probabilities: np.ndarray, labels: np.ndarray, n_bins: int) -> CalibrationCurve:
    """Reliability curve in `n_bins` equal-width bins on [0, 1], classes weighted to equal totals."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    labels = np.asarray(labels, dtype=np.float64)
    weights = class_weights(labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1)
    w = np.bincount(index, weights=weights, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        predicted = np.bincount(index, weights=weights * p, minlength=n_bins) / w
        observed = np.bincount(index, weights=weights * labels, minlength=n_bins) / w
    return CalibrationCurve(edges, predicted, observed, np.bincount(index, minlength=n_bins))


def _as_matrix(a: Any, name: str) -> np.ndarray:
    array = a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"classifier: {name} must be (rows, d), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"classifier: {name} contains NaN or inf")
    return array


# ----- the metric --------------------------------------------------------------------------------------

def classifier_metric(reference: Any, candidate: Any, config: ClassifierConfig = ClassifierConfig(),
                      device: str | torch.device = "cpu") -> ClassifierResult:
    """Train the classifier on reference (N, d) vs candidate (M, d) feature rows and score its test split.

    Same inputs, config and device → the same result, bit for bit (module docstring).
    """
    x_ref, x_cand = _as_matrix(reference, "reference"), _as_matrix(candidate, "candidate")
    if x_ref.shape[1] != x_cand.shape[1]:
        raise ValueError(f"classifier: reference has d={x_ref.shape[1]} but candidate has d={x_cand.shape[1]}")
    rng = np.random.default_rng([config.seed, SPLIT_STREAM])
    ref_parts = split_rows(len(x_ref), config.fractions, rng)
    cand_parts = split_rows(len(x_cand), config.fractions, rng)

    def part(k: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([x_ref[ref_parts[k]], x_cand[cand_parts[k]]])
        y = np.concatenate([np.zeros(len(ref_parts[k])), np.ones(len(cand_parts[k]))])
        return x, y

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = part(0), part(1), part(2)
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # constant columns (e.g. always-empty voxels) stay 0 after centring

    def tensor(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=device)

    target = torch.device(device)
    cuda = [target.index if target.index is not None else torch.cuda.current_device()] if target.type == "cuda" else []
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=cuda):  # dropout draws from the global RNG: seed it, leave it as it was
            torch.manual_seed(config.seed)
            generator = torch.Generator().manual_seed(config.seed)
            model, epochs_run, best_epoch, best_loss = train_classifier(
                tensor((x_tr - mean) / std), tensor(y_tr), tensor((x_va - mean) / std), tensor(y_va), config,
                generator)
        s_va = _logits(model, tensor((x_va - mean) / std)).double().cpu().numpy()
        s_te = _logits(model, tensor((x_te - mean) / std)).double().cpu().numpy()
    finally:
        torch.set_num_threads(previous_threads)

    knots, values = isotonic_calibration(s_va, y_va)
    eps = 0.5 / min(len(ref_parts[1]), len(cand_parts[1]))
    p_te = np.clip(apply_calibration(s_te, knots, values), eps, 1.0 - eps)
    ref_te, cand_te = y_te == 0, y_te == 1
    s_ref, s_cand, p_ref, p_cand = s_te[ref_te], s_te[cand_te], p_te[ref_te], p_te[cand_te]

    boot = np.random.default_rng([config.seed, BOOTSTRAP_STREAM])
    aucs = np.empty(config.n_bootstrap)
    jsds = np.empty(config.n_bootstrap)
    for b in range(config.n_bootstrap):
        i = boot.integers(0, len(s_ref), len(s_ref))
        j = boot.integers(0, len(s_cand), len(s_cand))
        aucs[b] = auc(s_ref[i], s_cand[j])
        jsds[b] = jsd_bits(p_ref[i], p_cand[j])
    return ClassifierResult(
        auc=auc(s_ref, s_cand), auc_err=float(np.std(aucs, ddof=1)),
        jsd=jsd_bits(p_ref, p_cand), jsd_err=float(np.std(jsds, ddof=1)),
        n_train=(len(ref_parts[0]), len(cand_parts[0])), n_val=(len(ref_parts[1]), len(cand_parts[1])),
        n_test=(len(ref_parts[2]), len(cand_parts[2])), epochs_run=epochs_run, best_epoch=best_epoch,
        best_val_loss=best_loss,
        raw_validation=calibration_curve(expit(s_va), y_va, config.n_bins),
        calibrated_test=calibration_curve(p_te, y_te, config.n_bins),
    )
