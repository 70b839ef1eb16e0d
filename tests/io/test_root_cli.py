"""A ROOT file written with uproot through `caloray inspect`, `features` and `validate`: the numbers equal those of
the same showers read from HDF5, and bad ROOT input exits with status 2 and a one-line message."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from caloray.cli import main
from caloray.io import write_showers
from caloray.plots.histfile import read_histograms


@pytest.fixture(scope="module")
def twins(ray_local, tmp_path_factory, write_root):
    """Reference and candidate showers, each as an HDF5 file and as a ROOT file with custom tree/branch names."""
    folder = tmp_path_factory.mktemp("root-cli")
    files = {}
    for name, seed, scale in (("reference", 1, 1.0), ("candidate", 2, 1.1)):
        rng = np.random.default_rng(seed)
        energies = np.exp(rng.uniform(np.log(1e4), np.log(2e4), 400))
        showers = (rng.exponential(scale, (400, 368)) * (rng.random((400, 368)) < 0.4)).astype(np.float32)
        showers *= (energies[:, None] / 1e4).astype(np.float32)
        h5 = write_showers(folder / f"{name}.h5", showers, energies, geometry="ds1-photons")
        root = write_root(folder / f"{name}.root", showers, energies, tree="calo", energy_branch="e_inc",
                          shower_branch="cells", geometry="ds1-photons")
        files[name] = (h5, root)
    return folder, files


LAYOUT = ["--root-layout", "calo:e_inc:cells"]


def test_inspect_and_features_match_hdf5(twins, capsys):
    folder, files = twins
    h5, root = files["reference"]
    assert main(["inspect", str(root), "--geometry", "ds1-photons", "--check-values", *LAYOUT]) == 0
    assert "400 showers × 368 voxels (float32), geometry=ds1-photons" in capsys.readouterr().out
    for name, path, extra in (("h5", h5, []), ("root", root, LAYOUT)):
        assert main(["features", "--input", str(path), "--geometry", "ds1-photons",
                     "--out", str(folder / f"features-{name}"), *extra]) == 0
    a = pq.ParquetDataset(folder / "features-h5").read().to_pydict()
    b = pq.ParquetDataset(folder / "features-root").read().to_pydict()
    assert a.keys() == b.keys() and len(a["response"]) == 400
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


@pytest.mark.slow  # two validation runs with Ray nulls and MLflow logging: ≈ 45 s on a loaded 2-core machine
def test_validate_matches_hdf5(twins):
    folder, files = twins
    results = {}
    for i, name in enumerate(("h5", "root")):
        args = ["validate", "--reference", str(files["reference"][i]), "--candidate", str(files["candidate"][i]),
                "--geometry", "ds1-photons", "--features", "total-energy", "layer-energies", "--stats", "mean-ks",
                "--batch-size", "100", "--n-iter", "30", "--seed", "3", "--out", str(folder / f"validate-{name}")]
        assert main(args + (LAYOUT if name == "root" else [])) == 0
        results[name] = pq.read_table(folder / f"validate-{name}" / "results.parquet").to_pylist()
    columns = ("feature", "statistic", "d", "observed", "p_value", "sigma", "null_mean", "alt_mean")
    assert [[r[c] for c in columns] for r in results["h5"]] == [[r[c] for c in columns] for r in results["root"]]
    # the comparison figures' histograms hold the same counts whichever file format the showers came from
    for feature in ("total-energy", "layer-energies"):
        saved = [read_histograms(folder / f"validate-{name}" / "figures" / f"{feature}.root")[0] for name in results]
        assert saved[0].keys() == saved[1].keys()
        for key in saved[0]:
            np.testing.assert_array_equal(saved[0][key].values(flow=True), saved[1][key].values(flow=True))
    total = read_histograms(folder / "validate-root" / "figures" / "total-energy.root")[0]["reference/0"]
    assert total.sum(flow=True).value == 400


def test_bad_root_input_exits_2_with_one_line(twins, capsys):
    _, files = twins
    assert main(["inspect", str(files["reference"][1])]) == 2  # default names: no 'incident_energies' branch
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "reference.root: TTree 'calo': missing branch 'showers'" in err
    assert main(["features", "--input", str(files["reference"][1]), "--geometry", "ds1-photons", "--out", "x",
                 "--root-layout", "nope"]) == 2
    assert "missing TTree 'nope'" in capsys.readouterr().err
