"""Super-resolution (SuperCalo): upsampling coarse calorimeter showers with one universal conditional flow."""

from caloray.superres.batch import upsample_numpy, upsample_reference
from caloray.superres.coarse import (
    NEIGHBOUR_DIRECTIONS,
    CoarseGrid,
    coarse_energies,
    fine_groups,
    fine_layer_energies,
    scatter_fine_groups,
)
from caloray.superres.conditions import jitter_coarse_energy, n_conditions, raw_conditions
from caloray.superres.flow import permutation_orders, superres_maf
from caloray.superres.model import SuperResolutionFlow
from caloray.superres.schedule import SuperCaloOneCycle, one_cycle_beta1, one_cycle_lr
from caloray.superres.transforms import (
    THRESHOLD_MEV,
    ConditionScaling,
    FineFractionLogit,
    LinearScale,
    StickBreakingLogit,
    apply_threshold,
    dequantize_fine,
    fit_coarse_energy_max,
)

__all__ = [
    "NEIGHBOUR_DIRECTIONS",
    "THRESHOLD_MEV",
    "CoarseGrid",
    "ConditionScaling",
    "FineFractionLogit",
    "LinearScale",
    "StickBreakingLogit",
    "SuperCaloOneCycle",
    "SuperResolutionFlow",
    "apply_threshold",
    "coarse_energies",
    "dequantize_fine",
    "fine_groups",
    "fine_layer_energies",
    "fit_coarse_energy_max",
    "jitter_coarse_energy",
    "n_conditions",
    "one_cycle_beta1",
    "one_cycle_lr",
    "permutation_orders",
    "raw_conditions",
    "scatter_fine_groups",
    "superres_maf",
    "upsample_numpy",
    "upsample_reference",
]
