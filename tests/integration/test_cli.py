"""The `butte` CLI end to end: up, status, app and task commands, down.

`butte up` starts a real master, two real agents and a real relay in a
temporary state directory on ports found free at run time (so a cluster
someone runs on the standard ports is never touched). Cleanup runs
`butte down` and then kills whatever is left, even when a test fails.
"""
import json
import os
import signal
import socket
import subprocess
import urllib.request

import pytest

from harness import BUILD, SANITIZER_MARKERS, free_port, task_pids, wait_for

BUTTE = os.path.join(BUILD, "butte")


def run(*args, check=None, stdin=None, timeout=90):
    """Run butte; returns CompletedProcess. check=0/1 asserts the exit code."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BUTTE_DIR", "BUTTE_RELAY", "BUTTE_MASTER")}
    p = subprocess.run([BUTTE] + [str(a) for a in args], input=stdin, capture_output=True,
                       text=True, timeout=timeout, env=env)
    if check is not None:
        assert p.returncode == check, (
            f"butte {' '.join(map(str, args))} exited {p.returncode}, expected {check}\n"
            f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def sleepers(d):
    """Task processes (`sleep 3600`) under d; supervisors and helpers are not counted."""
    out = []
    for pid in task_pids(d):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"sleep" and argv[1:2] == [b"3600"]:
            out.append(pid)
    return out


def pid_files(d):
    out = {}
    for name in os.listdir(d):
        if name.endswith(".pid"):
            with open(os.path.join(d, name)) as f:
                out[name[:-4]] = int(f.read().strip() or 0)
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LocalCluster:
    """A state dir and the ports one `butte up` will use."""

    def __init__(self, tmp_path):
        self.dir = str(tmp_path / "state")
        self.master_port = free_port()
        self.relay_port = free_port()
        self.agent_port = free_port()
        self.pids = {}

    def cli(self, *args, **kw):
        return run("--dir", self.dir, *args, **kw)

    def up(self, *extra, check=0):
        p = self.cli("up", "--agents", "2", f"--master_port={self.master_port}",
                     f"--relay_port={self.relay_port}", f"--agent_port={self.agent_port}",
                     "--task_port_base=42000", "--log_level=debug", *extra, check=check)
        if p.returncode == 0:
            self.pids.update(pid_files(self.dir))
        return p

    @property
    def relay(self):
        return f"http://127.0.0.1:{self.relay_port}"

    @property
    def master(self):
        return f"http://127.0.0.1:{self.master_port}"

    def cleanup(self):
        if os.path.isdir(self.dir):
            run("--dir", self.dir, "down", timeout=60)
        for pid in list(self.pids.values()) + task_pids(self.dir if os.path.isdir(self.dir)
                                                         else "/nonexistent"):
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def logs(self):
        out = {}
        if os.path.isdir(self.dir):
            for name in os.listdir(self.dir):
                if name.endswith(".log"):
                    with open(os.path.join(self.dir, name), errors="replace") as f:
                        out[name] = f.read()
        return out


@pytest.fixture
def local(tmp_path, request):
    lc = LocalCluster(tmp_path)
    yield lc
    lc.cleanup()
    logs = lc.logs()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for name, text in logs.items():
            print(f"----- {name} -----\n{text[-3000:]}")
    bad = [n for n, t in logs.items() if any(m in t for m in SANITIZER_MARKERS)]
    assert not bad, f"sanitizer report in {bad}"


def write_app(tmp_path, app_id, instances):
    path = tmp_path / (app_id.strip("/") + ".json")
    path.write_text(json.dumps({
        "id": app_id, "instances": instances, "cpus": 0.1, "mem": 16,
        "cmd": "exec sleep 3600", "backoffSeconds": 1, "portDefinitions": [{"port": 0}]}))
    return str(path)


def table(text):
    """Rows (lists of columns) of a CLI table, header dropped."""
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    return lines[1:]


# --------------------------------------------------------------------------- no cluster

def test_help():
    p = run("--help", check=0)
    for word in ("up", "down", "status", "app add", "task list", "--relay", "--dir"):
        assert word in p.stdout + p.stderr, word
    p = run("up", "--help", check=0)
    assert "--agents" in p.stdout + p.stderr
    p = run("app", "--help", check=0)
    assert "scale" in p.stdout + p.stderr
    p = run("no-such-command")
    assert p.returncode != 0 and "unknown command 'no-such-command'" in p.stderr


def test_nothing_listening(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    empty = str(tmp_path / "empty")
    for args in (("app", "list"), ("task", "list"), ("app", "show", "/x"),
                 ("app", "scale", "/x", "2"), ("app", "remove", "/x")):
        p = run("--dir", empty, "--relay", url, *args, check=1)
        assert f"nothing is listening at {url}" in p.stderr, p.stderr
        assert "butte up" in p.stderr
    p = run("--dir", empty, "--master", url, "agent", "list", check=1)
    assert f"nothing is listening at {url}" in p.stderr
    p = run("--dir", empty, "--master", url, "--relay", url, "status", check=1)
    assert "nothing is listening" in p.stdout
    p = run("--dir", empty, "down", check=0)
    assert f"no cluster in {empty}" in p.stdout


def test_up_refuses_a_busy_port(local):
    with socket.socket() as s:
        s.bind(("127.0.0.1", local.master_port))
        s.listen()
        p = local.up(check=1)
    assert f"already listening on 127.0.0.1:{local.master_port}" in p.stderr, p.stderr
    if os.path.isdir(local.dir):
        assert pid_files(local.dir) == {}


# --------------------------------------------------------------------------- a whole session

def test_cli_session(local, tmp_path):
    p = local.up()
    assert local.dir in p.stdout
    assert local.relay in p.stdout and local.master in p.stdout
    assert "butte down" in p.stdout
    with open(os.path.join(local.dir, "cluster.json")) as f:
        info = json.load(f)
    assert info["relay"] == local.relay and info["master"] == local.master
    assert len(info["agents"]) == 2
    assert set(local.pids) == {"master", "relay", "agent-0", "agent-1"}
    assert all(alive(pid) for pid in local.pids.values())

    # a second `up` in the same directory refuses
    p = local.up(check=1)
    assert "already running" in p.stderr

    p = local.cli("status", check=0)
    assert "up, 2 agent(s)" in p.stdout, p.stdout
    assert local.relay in p.stdout
    rows = table(local.cli("agent", "list", check=0).stdout)
    assert len(rows) == 2 and all(r[5] == "yes" for r in rows), rows

    # refusals come back with relay's message and details
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "/bad", ')
    p = local.cli("app", "add", str(bad), check=1)
    assert "HTTP 400" in p.stderr, p.stderr
    bad.write_text('{"id": "/bad", "instances": 1}')
    p = local.cli("app", "add", str(bad), check=1)
    assert "HTTP 422" in p.stderr and "cmd" in p.stderr, p.stderr
    p = local.cli("app", "show", "/no-such-app", check=1)
    assert "does not exist" in p.stderr, p.stderr

    # add from a file, then list, show and task list
    p = local.cli("app", "add", write_app(tmp_path, "/sleepy", 2), check=0)
    assert "created app /sleepy" in p.stdout and "deployment" in p.stdout

    def deployments():
        with urllib.request.urlopen(local.relay + "/v2/deployments", timeout=10) as r:
            return json.load(r)

    def listed(n):
        rows = table(local.cli("app", "list", check=0).stdout)
        return [r for r in rows if r[0] == "/sleepy" and r[1] == str(n) and r[2] == str(n)]
    wait_for(lambda: listed(2) and len(sleepers(local.dir)) == 2, timeout=60,
             interval=0.2, what="app list to show 2 of 2 running")
    shown = json.loads(local.cli("app", "show", "/sleepy", check=0).stdout)
    assert shown["id"] == "/sleepy" and shown["instances"] == 2
    assert len(shown["tasks"]) == 2
    rows = table(local.cli("task", "list", "/sleepy", check=0).stdout)
    assert len(rows) == 2 and all(r[1] == "/sleepy" and r[3] == "TASK_RUNNING" for r in rows)
    assert {r[0] for r in rows} == {t["id"] for t in shown["tasks"]}
    for r in rows:
        host, ports = r[2].rsplit(":", 1)
        assert 42000 <= int(ports.split(",")[0]) < 43000
    assert len(table(local.cli("task", "list", check=0).stdout)) == 2

    # scale down, then up again
    p = local.cli("app", "scale", "/sleepy", "1", check=0)
    assert "scaling /sleepy to 1 instance" in p.stdout
    wait_for(lambda: listed(1) and len(sleepers(local.dir)) == 1 and not deployments(),
             timeout=60, interval=0.2, what="one instance after scale 1, deployment done")
    # a deployment that cannot finish (no room for 500) locks the app: 409, then --force
    local.cli("app", "scale", "/sleepy", "500", check=0)
    p = local.cli("app", "scale", "sleepy", "3", check=1)
    assert "locked by one or more deployments" in p.stderr and "HTTP 409" in p.stderr, p.stderr
    local.cli("app", "scale", "--force", "sleepy", "3", check=0)   # a relative id works too
    wait_for(lambda: listed(3) and len(sleepers(local.dir)) == 3 and not deployments(),
             timeout=60, interval=0.2, what="three instances after scale 3, deployment done")
    p = local.cli("app", "scale", "/sleepy", "many", check=2)
    assert "invalid number of instances 'many'" in p.stderr

    # remove: every task process ends, the app is gone
    p = local.cli("app", "remove", "/sleepy", check=0)
    assert "removing /sleepy" in p.stdout
    wait_for(lambda: task_pids(local.dir) == [], timeout=30, interval=0.2,
             what="no task process after app remove")
    wait_for(lambda: local.cli("app", "show", "/sleepy").returncode == 1, timeout=30,
             what="app show to fail for the removed app")

    # an app read from stdin keeps running until `down`
    app = json.dumps({"id": "/stdin", "instances": 2, "cpus": 0.1, "mem": 16,
                      "cmd": "exec sleep 3600"})
    local.cli("app", "add", "-", stdin=app, check=0)
    wait_for(lambda: len(sleepers(local.dir)) == 2, timeout=60, interval=0.2,
             what="two instances of the app from stdin")

    p = local.cli("down", check=0)
    for name in ("master", "relay", "agent-0", "agent-1"):
        assert f"stopping {name}" in p.stdout, p.stdout
    assert not any(alive(pid) for pid in local.pids.values()), p.stdout
    assert task_pids(local.dir) == []
    assert pid_files(local.dir) == {}
    p = local.cli("app", "list", check=1)
    assert f"nothing is listening at {local.relay}" in p.stderr
    p = local.cli("down", check=0)
    assert "no cluster running" in p.stdout or "no cluster in" in p.stdout


def test_down_after_a_daemon_died(local):
    local.up()
    os.kill(local.pids["agent-1"], signal.SIGKILL)
    wait_for(lambda: not alive(local.pids["agent-1"]), timeout=10, what="agent-1 to die")
    p = local.cli("status")
    assert p.returncode == 0  # master and relay still answer
    p = local.cli("down", check=0)
    assert "stopping agent-0" in p.stdout and "stopping agent-1" not in p.stdout
    assert not any(alive(pid) for pid in local.pids.values())
    # and `up` works again in the same directory
    local.up()
    assert all(alive(pid) for pid in pid_files(local.dir).values())
    local.cli("down", check=0)
    p = local.cli("status", check=1)
    assert "nothing is listening" in p.stdout


def test_up_reports_a_daemon_that_dies(local):
    p = local.up("--log_level=bogus", check=1)
    assert "exited during start" in p.stderr, p.stderr
    assert "last lines of" in p.stderr and "bogus" in p.stderr, p.stderr
    assert pid_files(local.dir) == {}
    assert task_pids(local.dir) == []
