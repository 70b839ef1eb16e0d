"""Two-sample validation as an experiment design: null/alternative replicates, p-values, power.

The test that gates is calibrated (`CalibratedTest`, p_value/sigma): one held-out experiment against the
permutation null of exactly its pooled rows; `median_p` (median alternative replicate against the null) is the
thesis' summary. Local (batched torch) and Ray Data (`caloray.validate.pipeline_ray`) paths give identical
replicates. Definitions: spec/science.md §2.
"""

from caloray.validate.design import ExperimentDesign, Mode
from caloray.validate.io import plot_null_vs_alternative, read_replicates_parquet, write_replicates_parquet
from caloray.validate.replicates import (
    Replicates,
    null_and_alternative,
    replicate_statistics,
    replicate_values,
    run_test,
)
from caloray.validate.sampling import chunk_rows, held_out_rows, replicate_rows
from caloray.validate.summary import (
    CalibratedTest,
    TestResult,
    calibrated_test,
    critical_value,
    format_p,
    format_sigma,
    p_value,
    power,
    significance,
    summarize,
)
from caloray.validate.table import run_test_grid

__all__ = [
    "CalibratedTest",
    "ExperimentDesign",
    "Mode",
    "Replicates",
    "TestResult",
    "calibrated_test",
    "chunk_rows",
    "critical_value",
    "format_p",
    "format_sigma",
    "held_out_rows",
    "null_and_alternative",
    "p_value",
    "plot_null_vs_alternative",
    "power",
    "read_replicates_parquet",
    "replicate_rows",
    "replicate_statistics",
    "replicate_values",
    "run_test",
    "run_test_grid",
    "significance",
    "summarize",
    "write_replicates_parquet",
]
