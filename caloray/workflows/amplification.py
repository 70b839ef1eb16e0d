"""Workflow `amplification`: the camel-back amplification study with flows and flow ensembles
(`caloray.amplify.run_amplification`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from caloray.amplify import AmplificationConfig
from caloray.amplify.study import DEFAULT_OUT, run_amplification
from caloray.workflows import Result


@dataclass(kw_only=True)
class Config(AmplificationConfig):
    """The study's `AmplificationConfig` and the folder it writes into."""

    out: str = str(DEFAULT_OUT)


def run(config: Config) -> Result:
    """Run the study into `config.out`; metrics: the amplification factor per model and number of quantiles."""
    result = run_amplification(config, config.out)
    metrics = {f"{row['model']}.q{row['n_quantiles']}.amplification": float(row["amplification"])
               for row in result.summary}
    return Result(out=Path(config.out), metrics=metrics, paths={k: [p] for k, p in result.paths.items()},
                  summary=result.paths["table"].read_text().rstrip(), detail=result)
