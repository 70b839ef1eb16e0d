"""Small helpers of deploy/local/*.sh: free ports, health waits, this cluster's processes.

    python deploy/local/cluster_util.py free-ports N
    python deploy/local/cluster_util.py wait-http URL TIMEOUT_S [EXPECTED_TEXT [PID]]   # fails early if PID dies
    python deploy/local/cluster_util.py wait-dashboard DASHBOARD_URL TIMEOUT_S
    python deploy/local/cluster_util.py wait-nodes DASHBOARD_URL N TIMEOUT_S
    python deploy/local/cluster_util.py alive-nodes DASHBOARD_URL
    python deploy/local/cluster_util.py pids NAME=VALUE    # this user's processes whose environment has NAME=VALUE

Standard library only (except `wait-nodes`, which asks the Ray dashboard's state API), so `stop.sh` works
even where the virtual environment is broken.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports that are free on 127.0.0.1 right now (all bound at once, then released)."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ray_token() -> str | None:
    """Ray's authentication token, found the way Ray finds it (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH,
    ~/.ray/auth_token), or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    try:
        with open(path) as f:
            return f.read().strip() or None
    except OSError:
        return None


def get(url: str, timeout: float = 10, *, ray_auth: bool = False) -> tuple[int, str]:
    """(status, body) of a GET; with `ray_auth`, sends Ray's token (the Ray dashboard requires it)."""
    request = urllib.request.Request(url)
    token = ray_token() if ray_auth else None
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read().decode(errors="replace")


def wait_http(url: str, timeout_s: float, expected: str | None = None, pid: int | None = None, *,
              ray_auth: bool = False) -> bool:
    """Poll `url` until it answers 200 (and its body contains `expected`); False after `timeout_s` or
    as soon as process `pid` (the server being waited for) has exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        if pid is not None and not _alive(pid):
            return False
        try:
            status, body = get(url, timeout=5, ray_auth=ray_auth)
            if status == 200 and (expected is None or expected in body):
                return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def alive_nodes(dashboard_url: str) -> int:
    """Number of ALIVE nodes the Ray dashboard's state API reports."""
    url = f"{dashboard_url.rstrip('/')}/api/v0/nodes?limit=100&detail=false"
    data = json.loads(get(url, ray_auth=True)[1])
    nodes = data["data"]["result"]["result"]
    return sum(1 for node in nodes if node.get("state") == "ALIVE")


def wait_nodes(dashboard_url: str, n: int, timeout_s: float) -> bool:
    """Poll until at least `n` nodes are ALIVE (or `timeout_s` passes)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if alive_nodes(dashboard_url) >= n:
                return True
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def pids_with_env(marker: str) -> list[int]:
    """PIDs of the processes whose environment holds `marker` ("NAME=VALUE"), never this one.

    start.sh starts the Ray nodes with such a marker; every process they spawn (GCS, raylets, agents, Ray
    workers, job drivers) inherits it, whatever its command line looks like. Processes of other users are
    unreadable and so never match.
    """
    needle = marker.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                variables = f.read().split(b"\0")
        except OSError:
            continue
        if needle in variables:
            found.append(int(entry))
    return sorted(found)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    if command == "free-ports":
        print(" ".join(map(str, free_ports(int(args[0])))))
        return 0
    if command == "wait-http":
        expected = args[2] if len(args) > 2 and args[2] else None
        pid = int(args[3]) if len(args) > 3 else None
        return 0 if wait_http(args[0], float(args[1]), expected, pid) else 1
    if command == "wait-dashboard":
        return 0 if wait_http(f"{args[0].rstrip('/')}/api/version", float(args[1]), "ray_version", ray_auth=True) else 1
    if command == "wait-nodes":
        return 0 if wait_nodes(args[0], int(args[1]), float(args[2])) else 1
    if command == "alive-nodes":
        print(alive_nodes(args[0]))
        return 0
    if command == "pids":
        print(" ".join(map(str, pids_with_env(args[0]))))
        return 0
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
