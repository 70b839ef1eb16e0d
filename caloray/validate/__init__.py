"""Two-sample validation as an experiment design: null/alternative replicates, p-values, power.

Local (batched torch) and Ray Data (`caloray.validate.pipeline_ray`) paths give identical replicates.
Definitions: spec/science.md §2.
"""

from caloray.validate.design import ExperimentDesign, Mode
from caloray.validate.io import plot_null_vs_alternative, read_replicates_parquet, write_replicates_parquet
from caloray.validate.replicates import null_and_alternative, replicate_statistics, run_test
from caloray.validate.sampling import chunk_rows, replicate_rows
from caloray.validate.summary import TestResult, critical_value, p_value, power, significance, summarize
from caloray.validate.table import run_test_grid

__all__ = [
    "ExperimentDesign",
    "Mode",
    "TestResult",
    "chunk_rows",
    "critical_value",
    "null_and_alternative",
    "p_value",
    "plot_null_vs_alternative",
    "power",
    "read_replicates_parquet",
    "replicate_rows",
    "replicate_statistics",
    "run_test",
    "run_test_grid",
    "significance",
    "summarize",
    "write_replicates_parquet",
]
