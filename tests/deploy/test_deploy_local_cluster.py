"""The local cluster end to end: deploy/local/start.sh (PostgreSQL + MLflow server + Ray head and worker node),
`ray job submit` of jobs/run.py pipeline on the demo config, then runs, metrics, registered models and artifacts
checked through MLflow's REST API; deploy/local/stop.sh always runs afterwards.

Its own cluster (isolated state folder, free ports): it does not use the session `ray_local` fixture and talks
to the new cluster only through the `ray` CLI and HTTP, so a local Ray of the same pytest process is unaffected.
Skipped without PostgreSQL binaries, except under CI=true, where that is a failure (.ci/run installs them).
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from deploy_testlib import DEPLOY, REPO

LOCAL = DEPLOY / "local"
RAY = Path(sys.executable).parent / "ray"
PIPELINE_CONFIG = "jobs/configs/pipeline-demo.yaml"
EXPERIMENT = "caloray-pipeline-demo"
REGISTERED = {"pipeline-demo-flow1", "pipeline-demo-generator", "pipeline-demo-superres"}
# Uploaded with --working-dir: the checkout minus environments, outputs and data (Ray's size limit).
EXCLUDES = [".git", ".venv", "outputs", "mlruns", "*.h5", "*.h5.tmp*", "__pycache__", ".pytest_cache",
            ".ruff_cache", "*.egg-info"]
JOB_TIMEOUT_S = float(os.environ.get("CALORAY_CLUSTER_JOB_TIMEOUT", 2400))

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _postgres_missing() -> str | None:
    """Why the cluster cannot start here, or None."""
    if not (shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb")):
        return "PostgreSQL binaries (initdb, pg_ctl) not found; install PostgreSQL (apt-get install postgresql)"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        return "running as root and there is no 'postgres' user to run PostgreSQL as"
    return None


def _free_ports(n: int) -> list[int]:
    out = subprocess.run([sys.executable, str(LOCAL / "cluster_util.py"), "free-ports", str(n)],
                         capture_output=True, text=True, check=True)
    return [int(p) for p in out.stdout.split()]


def _client_env(state: Path) -> dict[str, str]:
    """This process's environment, without any other Ray's address or token, plus the cluster's env.sh."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    for line in (state / "env.sh").read_text().splitlines():
        if line.startswith("export "):
            key, value = line.removeprefix("export ").split("=", 1)
            env[key] = value
    return env


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


@pytest.fixture
def local_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    missing = _postgres_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the local cluster cannot start: {missing}")
        pytest.skip(missing)
    state = tmp_path / "state"
    mlflow_port, ray_port, dashboard_port, client_port = _free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
    env |= {
        "CALORAY_CLUSTER_STATE": str(state),
        "CALORAY_MLFLOW_PORT": str(mlflow_port),
        "CALORAY_RAY_PORT": str(ray_port),
        "CALORAY_RAY_DASHBOARD_PORT": str(dashboard_port),
        "CALORAY_RAY_CLIENT_PORT": str(client_port),
        # Worker port ranges away from other Ray instances' (10002–19999) and start.sh's default (20100–21099).
        "CALORAY_RAY_WORKER_PORT_BASE": str(22_000 + 1_000 * random.randrange(9)),
        "CALORAY_OBJECT_STORE_BYTES": str(500_000_000),
        "CALORAY_CLUSTER_TIMEOUT": "300",
    }

    def stop() -> None:
        done = subprocess.run(["bash", str(LOCAL / "stop.sh"), "--purge"], env=env, capture_output=True, text=True,
                              timeout=300)
        print(f"stop.sh (exit {done.returncode}):\n{done.stderr}")

    request.addfinalizer(stop)
    began = time.monotonic()
    started = subprocess.run(["bash", str(LOCAL / "start.sh")], env=env, capture_output=True, text=True, timeout=900)
    if started.returncode != 0:
        logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in sorted((state / "logs").glob("*.log")))
        pytest.fail(f"start.sh failed (exit {started.returncode}):\n{started.stdout}\n{started.stderr}\n{logs}")
    print(f"local cluster up in {time.monotonic() - began:.0f} s:\n{started.stdout}")
    client_env = _client_env(state)
    return {"state": state, "env": client_env, "dashboard": client_env["RAY_ADDRESS"],
            "mlflow": client_env["MLFLOW_TRACKING_URI"]}


# ------------------------------------------------------------------------------------------- Ray Jobs CLI
def _ray(cluster: dict[str, Any], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(RAY), *args], env=cluster["env"], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def _job_status(cluster: dict[str, Any], submission_id: str) -> str:
    """The job's status as `ray job status` prints it: 'Status for job ID: PENDING|RUNNING', or for a job that
    ended 'Job ID succeeded' / 'failed' / 'was stopped'."""
    done = _ray(cluster, "job", "status", "--address", cluster["dashboard"], submission_id)
    text = done.stdout + done.stderr
    found = re.search(r"Status for job '[^']+': (\w+)", text)
    if found:
        return found.group(1)
    ended = re.search(r"Job '[^']+' (succeeded|failed|was stopped)", text)
    return {"succeeded": "SUCCEEDED", "failed": "FAILED", "was stopped": "STOPPED"}[ended.group(1)] if ended \
        else "UNKNOWN"


def _submit(cluster: dict[str, Any], submission_id: str, entrypoint: list[str]) -> str:
    """`ray job submit --no-wait` of `entrypoint` with this checkout as working dir; returns the submission id."""
    # TQDM_DISABLE: job logs are files, where every progress-bar refresh would be a line.
    runtime_env = {"env_vars": {"MLFLOW_TRACKING_URI": cluster["mlflow"], "MPLBACKEND": "Agg",
                                "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1"},
                   "excludes": EXCLUDES}
    submitted = _ray(cluster, "job", "submit", "--address", cluster["dashboard"], "--no-wait",
                     "--submission-id", submission_id, "--working-dir", str(REPO),
                     "--runtime-env-json", json.dumps(runtime_env), "--", *entrypoint)
    assert submitted.returncode == 0, f"ray job submit failed:\n{submitted.stdout}\n{submitted.stderr}"
    return submission_id


def _wait(cluster: dict[str, Any], submission_id: str) -> tuple[str, str]:
    """Poll `ray job status` until the job ends (or JOB_TIMEOUT_S passes: then stop it); (status, logs)."""
    deadline = time.monotonic() + JOB_TIMEOUT_S
    status, unknown = "PENDING", 0
    while status in ("PENDING", "RUNNING", "UNKNOWN") and time.monotonic() < deadline and unknown < 30:
        time.sleep(10)
        status = _job_status(cluster, submission_id)
        unknown = unknown + 1 if status == "UNKNOWN" else 0
    logs = _ray(cluster, "job", "logs", "--address", cluster["dashboard"], submission_id).stdout
    if status in ("PENDING", "RUNNING"):
        _ray(cluster, "job", "stop", "--address", cluster["dashboard"], "--no-wait", submission_id)
    return status, logs


# ------------------------------------------------------------------------------------------- MLflow REST
def _mlflow(cluster: dict[str, Any], path: str, body: dict[str, Any] | None = None,
            query: dict[str, str] | None = None) -> dict[str, Any]:
    url = f"{cluster['mlflow']}/api/2.0/{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def _artifact_paths(cluster: dict[str, Any], run_id: str, path: str = "") -> set[str]:
    """Every artifact file path of a run (recursive, through the tracking API)."""
    query = {"run_id": run_id} | ({"path": path} if path else {})
    found = set()
    for entry in _mlflow(cluster, "mlflow/artifacts/list", query=query).get("files", []):
        if entry.get("is_dir"):
            found |= _artifact_paths(cluster, run_id, entry["path"])
        else:
            found.add(entry["path"])
    return found


@pytest.mark.timeout(3600)
def test_pipeline_job_on_local_cluster(local_cluster: dict[str, Any], tmp_path: Path) -> None:
    cluster = local_cluster
    # Two live nodes, both visible through the dashboard's state API.
    nodes = subprocess.run([sys.executable, str(LOCAL / "cluster_util.py"), "alive-nodes", cluster["dashboard"]],
                           env=cluster["env"], capture_output=True, text=True, timeout=60)
    assert nodes.stdout.strip() == "2", nodes.stderr
    health = urllib.request.urlopen(f"{cluster['mlflow']}/health", timeout=30).read().decode()
    assert "OK" in health

    out = tmp_path / "pipeline"
    status, logs = _wait(cluster, _submit(cluster, f"caloray-pipeline-{os.getpid()}",
                                          ["python", "jobs/run.py", "pipeline", "--config", PIPELINE_CONFIG, "--out",
                                           str(out)]))
    if status != "SUCCEEDED":
        state = cluster["state"]
        extra = "\n".join(f"--- {p.name}\n{_tail(p, 30)}" for p in sorted((state / "logs").glob("*.log")))
        pytest.fail(f"pipeline job ended {status}; job logs:\n{logs[-20000:]}\n{extra}")
    print(logs[-6000:])

    # The job's own record: every stage ran, on this cluster, with the server's tracking URI.
    summary = json.loads((out / "pipeline.json").read_text())
    assert set(summary["stages"]) == {"simulate", "ingest", "train-flow1", "train-generator", "train-superres",
                                      "generate", "validate", "calibrate", "superres"}
    assert summary["tracking_uri"] == cluster["mlflow"]
    provenance = json.loads((out / "job" / "provenance.json").read_text())
    assert provenance["stage"] == "pipeline" and provenance["job"]["ray_job_id"]
    assert len(list((out / "generated").glob("*.h5"))) == 2
    assert list((out / "superres").glob("*.h5")) and list((out / "calibrated").glob("*.parquet"))

    # MLflow, through its REST API: the experiment, its runs and their metrics.
    experiments = _mlflow(cluster, "mlflow/experiments/search", {"max_results": 100})["experiments"]
    (experiment,) = [e for e in experiments if e["name"] == EXPERIMENT]
    runs = _mlflow(cluster, "mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]],
                                                   "max_results": 1000})["runs"]

    def tag(run: dict[str, Any], key: str) -> str | None:
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}.get(key)

    def metrics(run: dict[str, Any]) -> dict[str, float]:
        return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}

    roles = [tag(r, "caloray.role") for r in runs]
    assert roles.count("ensemble") == 3 and roles.count("member") == 4, roles
    assert roles.count("generation") == 1 and roles.count("pipeline") == 1, roles
    assert any(tag(r, "mlflow.runName") == "validate" for r in runs), "the validation run is missing"
    (pipeline_run,) = [r for r in runs if tag(r, "caloray.role") == "pipeline"]
    assert pipeline_run["info"]["status"] == "FINISHED"
    assert pipeline_run["info"]["run_id"] == summary["pipeline_run_id"]
    pipeline_metrics = metrics(pipeline_run)
    assert {f"seconds.{s}" for s in summary["stages"]} <= set(pipeline_metrics)
    assert pipeline_metrics["generate.n_showers"] == 400 and pipeline_metrics["calibrate.n_showers"] == 60
    for run in runs:
        if tag(run, "caloray.role") == "ensemble":
            assert run["info"]["status"] == "FINISHED"
            assert "ensemble_final_val_loss_mean" in metrics(run)

    # The model registry: three ensembles, each version a logged pyfunc model of its run (whose proxied artifacts
    # also keep the ensemble folder).
    models = _mlflow(cluster, "mlflow/registered-models/search", query={"max_results": "100"})["registered_models"]
    assert REGISTERED <= {m["name"] for m in models}
    for model in models:
        if model["name"] in REGISTERED:
            (version,) = model["latest_versions"]
            assert version["source"].startswith("models:/m-"), version["source"]
            assert "ensemble/ensemble.pt" in _artifact_paths(cluster, version["run_id"])
            assert summary["registered"][{"pipeline-demo-flow1": "flow1", "pipeline-demo-generator": "generator",
                                          "pipeline-demo-superres": "superres"}[model["name"]]] == \
                f"{model['name']}:{version['version']}"

    # Artifacts, through the server's artifact proxy and on the server's disk (--artifacts-destination).
    assert {"pipeline.json", "ingest/summary.txt", "calibrate/summary.txt"} <= _artifact_paths(
        cluster, pipeline_run["info"]["run_id"])
    listing = _mlflow(cluster, "mlflow-artifacts/artifacts", query={"path": experiment["experiment_id"]})
    assert listing.get("files"), "the artifact proxy lists nothing for the experiment"
    stored = cluster["state"] / "artifacts" / experiment["experiment_id"]
    assert any(p.name == "ensemble.pt" for p in stored.rglob("*")), f"no ensemble.pt under {stored}"

    # The single-workflow entrypoints as their own Ray Jobs, on what the pipeline left: the registered models
    # (by name: newest version) and its samples. Submitted together; the cluster runs them side by side.
    configs = {
        "calibrate": {"model": "pipeline-demo-flow1", "inputs": [str(out / "sim" / "calibration")], "out_dir": "unused",
                      "rows_per_unit": 30, "batch_size": 64, "mle": {"n_scan": 32, "rtol": 1.0e-4}},
        "validate": {"reference": [str(out / "sim" / "reference")], "candidate": [str(out / "generated")],
                     "geometry": "ecal-hcal", "out": "unused", "features": ["total-energy"],
                     "statistics": ["mean-ks"], "batch_sizes": [100], "n_iter": 20, "experiment": "jobs-validate"},
        "superres": {"model": "pipeline-demo-superres", "inputs": [str(out / "sim" / "superres")],
                     "batch_size": 30},
    }
    jobs = {}
    for name, config in configs.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        jobs[name] = _submit(cluster, f"caloray-{name}-{os.getpid()}",
                             ["python", "jobs/run.py", name, "--config", str(path), "--out", str(tmp_path / name)])
    for name, submission_id in jobs.items():
        status, logs = _wait(cluster, submission_id)
        assert status == "SUCCEEDED", f"jobs/run.py {name} ended {status}:\n{logs[-10000:]}"
        record = json.loads((tmp_path / name / "job" / "provenance.json").read_text())
        assert record["stage"] == name and record["job"]["ray_job_id"]
    assert list((tmp_path / "calibrate").glob("calib-*.parquet"))
    assert len(list((tmp_path / "superres").glob("*.h5"))) >= 1
    experiments = _mlflow(cluster, "mlflow/experiments/search", {"max_results": 100})["experiments"]
    (validate_experiment,) = [e for e in experiments if e["name"] == "jobs-validate"]
    runs = _mlflow(cluster, "mlflow/runs/search", {"experiment_ids": [validate_experiment["experiment_id"]]})
    assert len(runs["runs"]) == 1 and any(m["key"].endswith(".p_value") for m in runs["runs"][0]["data"]["metrics"])
