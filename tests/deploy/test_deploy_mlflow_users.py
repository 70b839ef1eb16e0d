"""deploy/mlflow/ensure_user.py: the Ray pods' MLflow user is created, then re-passworded, on a basic-auth server."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest
from deploy_testlib import DEPLOY

ADMIN = ("admin", "admin-pw-0123456789")


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ensure_user", DEPLOY / "mlflow" / "ensure_user.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _UserStore(BaseHTTPRequestHandler):
    """The two admin endpoints as MLflow's auth app answers them (mlflow/server/auth: create_user raises
    RESOURCE_ALREADY_EXISTS as HTTP 400 for a taken name; update-password is a PATCH)."""

    users: ClassVar[dict[str, str]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        expected = "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._reply(401, {"error_code": "UNAUTHENTICATED"})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if (method, self.path) == ("POST", "/api/2.0/mlflow/users/create"):
            if body["username"] in self.users:
                return self._reply(400, {"error_code": "RESOURCE_ALREADY_EXISTS"})
            self.users[body["username"]] = body["password"]
            return self._reply(200, {"user": {"username": body["username"]}})
        if (method, self.path) == ("PATCH", "/api/2.0/mlflow/users/update-password"):
            if body["username"] not in self.users:
                return self._reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST"})
            self.users[body["username"]] = body["password"]
            return self._reply(200, {})
        return self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND"})

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


@pytest.fixture
def user_store() -> Iterator[tuple[str, dict[str, str]]]:
    handler = type("Store", (_UserStore,), {"users": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.users
    finally:
        server.shutdown()


def test_creates_then_updates(user_store: tuple[str, dict[str, str]]) -> None:
    url, users = user_store
    ensure_user = _module().ensure_user
    assert ensure_user(url, ADMIN, ("ray", "first-password")) == "created"
    assert users == {"ray": "first-password"}
    assert ensure_user(url, ADMIN, ("ray", "rotated-password")) == "updated"
    assert users == {"ray": "rotated-password"}


def test_refused_admin_is_an_error_without_the_password(user_store: tuple[str, dict[str, str]]) -> None:
    url, users = user_store
    with pytest.raises(RuntimeError, match="HTTP 401") as info:
        _module().ensure_user(url, ("admin", "wrong"), ("ray", "secret-value-xyz"))
    assert "secret-value-xyz" not in str(info.value) and "wrong" not in str(info.value)
    assert users == {}


def test_missing_environment_exits_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    assert _module().main() == 2
    assert "MLFLOW_TRACKING_URI" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str, user: tuple[str, str]) -> int:
    token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
@pytest.mark.integration
def test_against_mlflow_basic_auth_server(tmp_path: Path) -> None:
    """The real `mlflow server --app-name basic-auth`: the user logs in with its password, then the rotated one."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth] (Flask-WTF)")
    port = _free_port()
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{tmp_path / 'auth.db'}\n")
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN[0],
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1], "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-key"}
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen(
        [str(mlflow), "server", "--app-name", "basic-auth", "--backend-store-uri", f"sqlite:///{tmp_path / 'm.db'}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        module = _module()
        module.wait_healthy(url, attempts=120, pause_s=1.0)
        assert module.ensure_user(url, ADMIN, ("ray", "first-password-1")) == "created"
        assert _status(search, ("ray", "first-password-1")) == 200
        assert module.ensure_user(url, ADMIN, ("ray", "second-password-2")) == "updated"
        assert _status(search, ("ray", "second-password-2")) == 200
        assert _status(search, ("ray", "first-password-1")) == 401
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
