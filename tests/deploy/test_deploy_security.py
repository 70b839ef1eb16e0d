"""A locked-down cluster: restricted containers with limits, Ray token auth, NetworkPolicies, scoped credentials."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from deploy_testlib import (
    DEPLOY,
    containers,
    k8s_objects,
    load_docs,
    pod_specs,
    ray_cluster_specs,
    submitter_pod_specs,
)

ALL = k8s_objects()  # parsed once: the helpers below are called many times
OBJECTS = [(p, o) for p, o in ALL if list(pod_specs(o)) or list(submitter_pod_specs(o))]
IDS = [f"{p.name}:{o['kind']}:{o['metadata']['name']}" for p, o in OBJECTS]
KUBERAY = [(p, o) for p, o in OBJECTS if o["kind"] in ("RayCluster", "RayJob", "RayCronJob")]
KUBERAY_IDS = [f"{p.name}:{o['kind']}" for p, o in KUBERAY]




def objects_of_kind(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(p, o) for p, o in ALL if o["kind"] == kind]


# ------------------------------------------------------------------ restricted containers


def _pods(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [*pod_specs(obj), *submitter_pod_specs(obj)]


def restricted_violations(obj: dict[str, Any]) -> list[str]:
    """Departures of `obj`'s containers from Kubernetes' `restricted` profile, and missing cpu/memory limits.

    A setting may come from the container or (runAsNonRoot, seccompProfile) from its pod, as Kubernetes
    resolves it. KubeRay's autoscaler sidecar is checked from `autoscalerOptions`.
    """
    errors = []
    for label, pod in _pods(obj):
        pod_sc = pod.get("securityContext", {})
        if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
            errors.append(f"{label}: host namespaces")
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            errors += _container_violations(f"{label}/{c['name']}", c, pod_sc)
    for cluster in ray_cluster_specs(obj):
        if cluster.get("enableInTreeAutoscaling"):
            errors += _container_violations(f"{obj['kind']}/autoscaler", cluster.get("autoscalerOptions", {}), {})
    return errors


def _container_violations(label: str, c: dict[str, Any], pod_sc: dict[str, Any]) -> list[str]:
    sc = c.get("securityContext", {})
    errors = []
    if sc.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{label}: allowPrivilegeEscalation must be false")
    if sc.get("privileged"):
        errors.append(f"{label}: privileged")
    caps = sc.get("capabilities", {})
    if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
        errors.append(f"{label}: capabilities must drop ALL (and add at most NET_BIND_SERVICE)")
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        errors.append(f"{label}: seccompProfile RuntimeDefault")
    if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True or sc.get("runAsUser", 1) == 0:
        errors.append(f"{label}: runAsNonRoot")
    limits = c.get("resources", {}).get("limits", {})
    if not {"cpu", "memory"} <= limits.keys():
        errors.append(f"{label}: cpu and memory limits")
    return errors


@pytest.mark.parametrize(("path", "obj"), OBJECTS, ids=IDS)
def test_every_container_is_restricted_and_limited(path: Path, obj: dict) -> None:
    assert restricted_violations(obj) == [], path


def test_every_rayjob_has_a_restricted_submitter() -> None:
    """The `ray job submit` pod is sized and restricted too (KubeRay's default one has neither)."""
    jobs = [o for _, o in KUBERAY if o["kind"] != "RayCluster"]
    assert jobs and all(len(list(submitter_pod_specs(o))) == 1 for o in jobs)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["securityContext"].pop("allowPrivilegeEscalation"),
        lambda c: c["securityContext"].update(privileged=True),
        lambda c: c["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
        lambda c: c["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
        lambda c: c["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        lambda c: c["securityContext"].update(runAsNonRoot=False),
        lambda c: c["resources"].pop("limits"),
        lambda c: c["resources"]["limits"].pop("memory"),
    ],
    ids=["escalation", "privileged", "caps-kept", "caps-added", "seccomp", "root", "no-limits", "no-memory-limit"],
)
def test_restriction_check_catches_each_gap(mutate: Any) -> None:
    """Each gap in one container of an otherwise compliant object is reported (the check is not vacuous)."""
    for _, obj in [KUBERAY[0], *objects_of_kind("Deployment")]:
        broken = copy.deepcopy(obj)
        _, container = next(iter(containers(broken)))
        mutate(container)
        assert restricted_violations(obj) == []
        assert len(restricted_violations(broken)) == 1, restricted_violations(broken)


def test_submitter_and_autoscaler_gaps_are_caught() -> None:
    ((_, job),) = [(p, o) for p, o in KUBERAY if o["metadata"]["name"] == "caloray-simulate"]
    for target in ("submitter", "autoscaler"):
        broken = copy.deepcopy(job)
        if target == "submitter":
            broken["spec"]["submitterPodTemplate"]["spec"]["containers"][0].pop("resources")
        else:
            broken["spec"]["rayClusterSpec"]["autoscalerOptions"].pop("securityContext")
        assert any(target in e for e in restricted_violations(broken)), target


# ------------------------------------------------------------------ Ray token authentication


SECRET_KEYS = {o["metadata"]["name"]: set(o["stringData"]) for _, o in objects_of_kind("Secret")}


def auth_errors(obj: dict[str, Any]) -> list[str]:
    """Why a KubeRay object's cluster(s) would run without Ray token authentication from our Secret."""
    errors = []
    clusters = list(ray_cluster_specs(obj))
    if not clusters:
        errors.append(f"{obj['kind']} {obj['metadata']['name']}: no rayClusterSpec")
    for cluster in clusters:
        auth = cluster.get("authOptions", {})
        if auth.get("mode") != "token":
            errors.append(f"{obj['metadata']['name']}: authOptions.mode must be token, got {auth.get('mode')!r}")
        elif "auth_token" not in SECRET_KEYS.get(auth.get("secretName", ""), set()):
            errors.append(f"{obj['metadata']['name']}: authOptions.secretName must name a Secret with auth_token")
    return errors


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=KUBERAY_IDS)
def test_ray_token_authentication(path: Path, obj: dict) -> None:
    assert auth_errors(obj) == [], path


@pytest.mark.parametrize(("path", "obj"), KUBERAY, ids=KUBERAY_IDS)
def test_missing_or_disabled_auth_fails(path: Path, obj: dict) -> None:
    """Dropping authOptions, disabling it or pointing it at an unknown Secret is reported, for each object."""
    for change in ("drop", "disabled", "unknown-secret"):
        broken = copy.deepcopy(obj)
        for cluster in ray_cluster_specs(broken):
            if change == "drop":
                cluster.pop("authOptions")
            elif change == "disabled":
                cluster["authOptions"]["mode"] = "disabled"
            else:
                cluster["authOptions"]["secretName"] = "no-such-secret"
        assert auth_errors(broken), change


def test_submitter_sends_the_cluster_token() -> None:
    for _, obj in KUBERAY:
        for label, pod in submitter_pod_specs(obj):
            (c,) = pod["containers"]
            env = {e["name"]: e for e in c["env"]}
            assert env["RAY_AUTH_MODE"]["value"] == "token", label
            ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            (secret,) = {cl["authOptions"]["secretName"] for cl in ray_cluster_specs(obj)}
            assert ref == {"name": secret, "key": "auth_token"}, label


# ------------------------------------------------------------------ NetworkPolicies


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions; {} selects everything)."""
    if not labels.items() >= selector.get("matchLabels", {}).items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


POLICIES = [o for _, o in objects_of_kind("NetworkPolicy")]


def allowed(src: dict[str, str], dst: dict[str, str], port: int, src_namespace: str = "caloray") -> bool:
    """Whether the NetworkPolicies let a pod labelled `src` open TCP `port` on a pod labelled `dst`.

    A pod selected by no ingress policy accepts everything; otherwise the union of the selecting policies'
    rules decides. Source namespaces are matched by their `kubernetes.io/metadata.name` label only.
    """
    policies = [o for o in POLICIES
                if "Ingress" in o["spec"].get("policyTypes", ["Ingress"]) and _selects(o["spec"]["podSelector"], dst)]
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = rule.get("ports")
            if ports is not None and not any(p.get("port") == port and p.get("protocol", "TCP") == "TCP"
                                             for p in ports):
                continue
            peers = rule.get("from")
            if peers is None:
                return True
            for peer in peers:
                ns_ok = (_selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": src_namespace})
                         if "namespaceSelector" in peer else src_namespace == policy["metadata"]["namespace"])
                if ns_ok and _selects(peer.get("podSelector", {}), src):
                    return True
    return False


def _template_labels(kind: str, name: str) -> dict[str, str]:
    ((_, obj),) = [(p, o) for p, o in objects_of_kind(kind) if o["metadata"]["name"] == name]
    return obj["spec"]["template"]["metadata"]["labels"]


def _ray_labels() -> dict[str, list[dict[str, str]]]:
    """Pod labels of every Ray head, worker and submitter template in the manifests, by role."""
    roles: dict[str, list[dict[str, str]]] = {"head": [], "worker": [], "submitter": []}
    for _, obj in KUBERAY:
        for cluster in ray_cluster_specs(obj):
            roles["head"].append(cluster["headGroupSpec"]["template"]["metadata"]["labels"])
            roles["worker"] += [g["template"]["metadata"]["labels"] for g in cluster["workerGroupSpecs"]]
        roles["submitter"] += [o["submitterPodTemplate"]["metadata"]["labels"]
                               for o in ([obj["spec"]] if obj["kind"] == "RayJob" else
                                         [obj["spec"]["jobTemplate"]] if obj["kind"] == "RayCronJob" else [])]
    return roles


def test_network_policies_exist_for_each_service() -> None:
    """Each of PostgreSQL, MinIO, MLflow and the Ray head is selected by a policy that is not allow-all."""
    policies = [o["spec"] for _, o in objects_of_kind("NetworkPolicy")]
    targets = {"postgres": _template_labels("StatefulSet", "mlflow-postgres"),
               "minio": _template_labels("StatefulSet", "minio"),
               "mlflow": _template_labels("Deployment", "mlflow"),
               "ray-head": _ray_labels()["head"][0]}
    for name, labels in targets.items():
        specific = [p for p in policies if p["podSelector"] and _selects(p["podSelector"], labels)]
        assert specific, f"no NetworkPolicy selects the {name} pods"
    assert any(p["podSelector"] == {} and "ingress" not in p for p in policies), "default-deny ingress policy"


def test_who_reaches_what() -> None:
    """The reachability matrix, from the pod labels the manifests really carry."""
    ray = _ray_labels()
    postgres = _template_labels("StatefulSet", "mlflow-postgres")
    minio = _template_labels("StatefulSet", "minio")
    mlflow = _template_labels("Deployment", "mlflow")
    setup = {"minio": _template_labels("Job", "minio-setup"), "users": _template_labels("Job", "mlflow-users")}
    stranger = {"app": "anything"}
    nodes = ray["head"] + ray["worker"]
    for src in nodes:
        assert allowed(src, mlflow, 5000)
        assert not allowed(src, postgres, 5432) and not allowed(src, minio, 9000)
        for dst in nodes:
            assert allowed(src, dst, 6379) and allowed(src, dst, 20123)  # GCS, a worker process port
    for src in ray["submitter"]:
        assert all(allowed(src, head, 8265) for head in ray["head"])
        assert not allowed(src, ray["head"][0], 6379) and not allowed(src, mlflow, 5000)
    assert not any(allowed(src, ray["worker"][0], 8265) for src in ray["submitter"])
    assert allowed({"app.kubernetes.io/name": "kuberay-operator"}, ray["head"][0], 8265, "kuberay-system")
    assert allowed(mlflow, postgres, 5432) and allowed(mlflow, minio, 9000)
    assert not allowed(mlflow, postgres, 9000)
    assert allowed(setup["minio"], minio, 9000) and not allowed(setup["minio"], postgres, 5432)
    assert allowed(setup["users"], mlflow, 5000) and not allowed(setup["users"], minio, 9000)
    for dst, port in [(postgres, 5432), (minio, 9000), (mlflow, 5000), (ray["head"][0], 8265), (nodes[1], 6379)]:
        assert not allowed(stranger, dst, port) and not allowed(dst | stranger, dst, port, "other")


def test_policy_evaluator_is_not_vacuous() -> None:
    """Without the policies' selectors matching, nothing is denied: the evaluator sees the real rules."""
    mlflow = _template_labels("Deployment", "mlflow")
    assert _selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, {"a": "x"})
    assert not _selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]}, {"a": "y"})
    assert not _selects({"matchLabels": {"a": "x"}}, {})
    assert allowed({"anything": "x"}, {"a-pod-no-policy-selects": "x"}, 1) is False  # default deny selects all
    assert allowed({"app.kubernetes.io/name": "mlflow"}, mlflow, 5000) is False


# ------------------------------------------------------------------ MLflow basic auth, MinIO user, images


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def test_mlflow_runs_the_basic_auth_app_from_secrets() -> None:
    docs = load_docs(DEPLOY / "mlflow" / "mlflow.yaml")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--app-name=basic-auth" in server["args"]
    env = _env(server)
    for key in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-auth", key
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    mount = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}["auth-config"]
    (key,) = config_map["data"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == f"{mount}/{key}"
    import configparser

    ini = configparser.ConfigParser()
    ini.read_string(config_map["data"][key])
    from urllib.parse import urlsplit

    store = urlsplit(ini["mlflow"]["database_uri"])
    assert store.username is None and store.password is None, "the auth store URI must carry no credentials"
    assert {"PGUSER", "PGPASSWORD"} <= env.keys()
    assert "admin_password" not in ini["mlflow"]


def test_ray_pods_log_in_to_mlflow_from_the_client_secret() -> None:
    for _, obj in KUBERAY:
        for label, pod in pod_specs(obj):
            for c in pod["containers"]:
                env = _env(c)
                for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
                    assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-client", "key": key}, label
    (job,) = [o for _, o in objects_of_kind("Job") if o["metadata"]["name"] == "mlflow-users"]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert _env(c)["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-client"


def test_minio_root_credentials_stay_with_minio() -> None:
    """Only MinIO and its setup Job see the root Secret; MLflow uses the scoped user; no console port."""
    for path, obj in OBJECTS:
        for label, c in containers(obj):
            refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in c.get("env", [])
                    if "secretKeyRef" in e.get("valueFrom", {})}
            if "minio-root" in refs:
                assert obj["metadata"]["name"] in ("minio", "minio-setup"), f"{path} {label}"
    (minio,) = [o for _, o in objects_of_kind("StatefulSet") if o["metadata"]["name"] == "minio"]
    (c,) = minio["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in c["ports"]] == [9000] and "--console-address" not in c["args"]
    assert _env(c)["MINIO_BROWSER"]["value"] == "off"
    (service,) = [o for _, o in objects_of_kind("Service") if o["metadata"]["name"] == "minio"]
    assert [p["port"] for p in service["spec"]["ports"]] == [9000]


def test_minio_policy_is_scoped_to_the_artifact_bucket() -> None:
    (config,) = [o for _, o in objects_of_kind("ConfigMap") if o["metadata"]["name"] == "minio-setup"]
    (deployment,) = [o for _, o in objects_of_kind("Deployment") if o["metadata"]["name"] == "mlflow"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    bucket = _env(server)["MLFLOW_ARTIFACTS_DESTINATION"]["value"].removeprefix("s3://").split("/")[0]
    assert config["data"]["bucket"] == bucket
    policy = json.loads(config["data"]["policy.json"])
    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    assert all(a.startswith("s3:") and "*" not in a for a in actions), actions
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert not actions & {"s3:CreateBucket", "s3:DeleteBucket", "s3:ListAllMyBuckets", "s3:PutBucketPolicy"}
    assert "policy.json" in config["data"]["setup.sh"] and "mc admin user add" in config["data"]["setup.sh"]


def test_job_provenance_holds_no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's provenance.json records where it ran, never the MLflow login or the Ray token from the env."""
    from caloray.workflows import Result, write_job_record

    secrets = {"MLFLOW_TRACKING_PASSWORD": "pw-from-secret-1", "RAY_AUTH_TOKEN": "token-from-secret-2"}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://caloray-ray:pw-in-uri-3@mlflow.caloray.svc.cluster.local:5000")
    monkeypatch.setenv("RAY_ADDRESS", "http://someone:pw-in-uri-4@127.0.0.1:8265")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "caloray-ray")
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    path = write_job_record("test", {"n": 1}, Result(out=tmp_path))
    text = path.read_text()
    for needle in [*secrets.values(), "pw-in-uri-3", "pw-in-uri-4"]:
        assert needle not in text, needle
    job = json.loads(text)["job"]
    assert job["mlflow_tracking_uri"] == "http://mlflow.caloray.svc.cluster.local:5000"
    assert job["ray_address"] == "http://127.0.0.1:8265"
