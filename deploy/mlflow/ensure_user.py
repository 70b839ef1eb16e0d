"""Create (or re-password) the MLflow user the Ray pods log as, on a server running `--app-name basic-auth`.

Run as the Job `mlflow-users` (deploy/mlflow/mlflow.yaml) with the admin credentials (MLFLOW_AUTH_ADMIN_USERNAME,
MLFLOW_AUTH_ADMIN_PASSWORD) and the client credentials (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD) from
their Secrets; MLFLOW_TRACKING_URI names the server. Idempotent: an existing user gets the Secret's password, so
rotating the Secret and re-running the Job rotates the password. No credential is printed.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

CREATE = "/api/2.0/mlflow/users/create"
UPDATE_PASSWORD = "/api/2.0/mlflow/users/update-password"


def _request(server: str, method: str, path: str, body: dict, admin: tuple[str, str]) -> tuple[int, dict]:
    """(HTTP status, JSON body or {}) of one admin request; HTTP errors are returned, not raised."""
    token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    request = urllib.request.Request(
        server.rstrip("/") + path, data=json.dumps(body).encode(), method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    try:
        return status, json.loads(text or b"{}")
    except ValueError:
        return status, {}


def ensure_user(server: str, admin: tuple[str, str], user: tuple[str, str]) -> str:
    """Make `user` (name, password) exist with that password; 'created' or 'updated'. Raises RuntimeError."""
    body = {"username": user[0], "password": user[1]}
    status, reply = _request(server, "POST", CREATE, body, admin)
    if status == 200:
        return "created"
    if reply.get("error_code") != "RESOURCE_ALREADY_EXISTS":
        raise RuntimeError(f"{server}{CREATE}: HTTP {status} {reply.get('error_code', '')}".rstrip())
    status, reply = _request(server, "PATCH", UPDATE_PASSWORD, body, admin)
    if status != 200:
        raise RuntimeError(f"{server}{UPDATE_PASSWORD}: HTTP {status} {reply.get('error_code', '')}".rstrip())
    return "updated"


def wait_healthy(server: str, attempts: int = 60, pause_s: float = 5.0) -> None:
    """Wait until GET /health answers (the one path basic auth leaves open)."""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(server.rstrip("/") + "/health", timeout=10):
                return
        except OSError as exc:
            print(f"waiting for {server} ({attempt + 1}/{attempts}): {exc}", file=sys.stderr)
            time.sleep(pause_s)
    raise RuntimeError(f"{server}/health did not answer")


def main() -> int:
    missing = [k for k in ("MLFLOW_TRACKING_URI", "MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD",
                           "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD") if not os.environ.get(k)]
    if missing:
        print(f"ensure_user: error: environment variable(s) not set: {', '.join(missing)}", file=sys.stderr)
        return 2
    server = os.environ["MLFLOW_TRACKING_URI"]
    admin = (os.environ["MLFLOW_AUTH_ADMIN_USERNAME"], os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"])
    user = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"])
    try:
        wait_healthy(server)
        print(f"user {user[0]}: {ensure_user(server, admin, user)}")
    except RuntimeError as exc:
        print(f"ensure_user: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
