"""The conditional MAF with rational-quadratic splines that every caloray flow uses (zuko based)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import zuko
from zuko.transforms import MonotonicRQSTransform


def conditional_spline_maf(
    features: int,
    context: int,
    transforms: int,
    hidden_features: Sequence[int],
    bins: int,
    bound: float,
    randperm: bool = False,
) -> zuko.flows.MAF:
    """A zuko MAF whose univariate transforms are monotonic RQS on [−bound, bound] (identity outside).

    zuko's `NSF` hard-codes the spline bound to 5; we build the MAF directly so that `bound` (14 in the
    CaloFlow papers) is explicit. Feature orders alternate ascending/descending (`randperm=False`) so
    that construction consumes no random numbers beyond the weight initialization.
    """
    univariate = partial(MonotonicRQSTransform, bound=float(bound))
    return zuko.flows.MAF(
        features=features,
        context=context,
        transforms=transforms,
        randperm=randperm,
        univariate=univariate,
        shapes=[(bins,), (bins,), (bins - 1,)],
        hidden_features=tuple(int(h) for h in hidden_features),
    )
