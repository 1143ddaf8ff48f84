"""`dagster dev` for the tests that need the real UI or the real daemon: started in its own session
(signals reach it and all its children, and SIGINT is not ignored as it is for a job started with
`&` by a non-interactive shell), stopped politely, or killed hard with everything it started."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg

from detector_pipeline_tests.helpers import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env: dict, log: Path, timeout: float = 180) -> tuple[subprocess.Popen, str]:
    """dagster dev on 127.0.0.1 with this environment; returns the process and the UI's address once
    the UI answers."""
    port = free_port()
    dagster = Path(sys.executable).parent / "dagster"
    process = subprocess.Popen([str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                                "-p", str(port)], cwd=PROJECT_ROOT, env=env, stdout=open(log, "a"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/server_info", timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(1)
    stop(process)
    raise TimeoutError(f"the Dagster UI did not come up on {url}")


def stop(process: subprocess.Popen) -> None:
    """Ctrl-C to the whole group, as a person would; SIGKILL after a minute."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), whatever session or group it moved to."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_hard(process: subprocess.Popen) -> list[int]:
    """SIGKILL to dagster dev and everything it started (webserver, daemon, code servers, run workers):
    nothing gets to clean up, as in an out-of-memory kill or a machine that goes away."""
    pids = [process.pid, *descendants(process.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
    return pids


def instance_at(home: Path) -> dg.DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def wait_until(home: Path, found, timeout: float, what: str, every: float = 3):
    """Polls the instance at `home` until `found(instance)` returns something truthy, and returns it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with instance_at(home) as instance:
            result = found(instance)
        if result:
            return result
        time.sleep(every)
    raise TimeoutError(f"{what} after {timeout} s")
