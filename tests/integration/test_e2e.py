"""End-to-end acceptance tests: a real master, two real agents and a real relay.

Each test deploys apps through relay's Marathon API and watches the result
where it really happens: task processes on this machine (found by a working
directory under the test's tmp dir), the master's /master/state and relay's
/v2 API. Failures are injected the hard way -- SIGKILL to a task, to an
agent, a restarted master or relay -- and bad input is sent to every API.
"""
import json
import os
import signal
import socket
import time

import pytest

from harness import http, settled, task_pids, wait_for

MASTER_FLAGS = ("--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=3",
                "--allocation_interval=100ms")
SLEEP = "3600"  # task processes are `sleep 3600`; the marker tells them from helpers


# --------------------------------------------------------------------------- helpers

def start_full(c):
    c.start_master(*MASTER_FLAGS)
    c.start_agent(resources="cpus:2;mem:1024;disk:1024;ports(*):[31000-31099]", ip="127.0.0.1")
    c.start_agent(resources="cpus:2;mem:1024;disk:1024;ports(*):[31100-31199]", ip="127.0.0.2")
    c.start_relay()
    return c


def app_def(app_id, instances, **extra):
    d = {"id": app_id, "instances": instances, "cpus": 0.1, "mem": 16,
         "cmd": f"exec sleep {SLEEP}", "backoffSeconds": 1, "backoffFactor": 1.0,
         "portDefinitions": [{"port": 0}]}
    d.update(extra)
    return d


def post_app(c, d):
    r = http("POST", c.relay_url + "/v2/apps", json=d)
    assert r.status_code == 201, f"POST /v2/apps: {r.status_code} {r.text}"
    return r.json()


def put_instances(c, app_id, n):
    r = http("PUT", c.relay_url + "/v2/apps" + app_id, json={"instances": n})
    assert r.status_code in (200, 201), f"PUT {app_id}: {r.status_code} {r.text}"
    return r.json()


def get_app(c, app_id):
    r = http("GET", c.relay_url + "/v2/apps" + app_id)
    assert r.status_code == 200, f"GET {app_id}: {r.status_code} {r.text}"
    return r.json()["app"]


def running_tasks(c, app_id):
    """{task id: task} of the app's TASK_RUNNING tasks."""
    r = http("GET", c.relay_url + "/v2/apps" + app_id + "/tasks")
    assert r.status_code == 200, f"GET {app_id}/tasks: {r.status_code} {r.text}"
    return {t["id"]: t for t in r.json()["tasks"] if t.get("state") == "TASK_RUNNING"}


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def sleepers(c):
    """Pids of the task processes (`sleep 3600`) under the cluster's directory."""
    return sorted(p for p in task_pids(c.dir)
                  if _cmdline(p)[:2] in ([b"sleep", SLEEP.encode()],
                                         [b"/bin/sleep", SLEEP.encode()],
                                         [b"/usr/bin/sleep", SLEEP.encode()]))


def wait_running(c, app_id, n, timeout=60):
    """Wait until the app has exactly n running tasks, n task processes and
    tasksRunning == n; returns {task id: task}."""
    def ok():
        tasks = running_tasks(c, app_id)
        app = get_app(c, app_id)
        if len(tasks) == n and app.get("tasksRunning") == n and len(sleepers(c)) == n:
            return tasks
        return None
    return wait_for(ok, timeout=timeout, interval=0.2,
                    what=f"{app_id} to run exactly {n} instance(s)")


def hold(fn, seconds, what):
    """Observe for a bounded time that fn() stays true (stability, not synchronisation)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert fn(), f"{what} stopped holding"
        time.sleep(0.25)


def agent_ids(c):
    """{agent port: agent id} from the master's state."""
    return {s["port"]: s["id"] for s in c.master_state()["slaves"]}


def frameworks_connected(c):
    fws = c.master_state().get("frameworks", [])
    return [f for f in fws if f.get("active", True) and f.get("connected", True)]


# --------------------------------------------------------------------------- fixtures

@pytest.fixture
def full(cluster):
    return start_full(cluster)


@pytest.fixture
def master_only(cluster):
    cluster.start_master(*MASTER_FLAGS)
    return cluster


# --------------------------------------------------------------------------- keeping N alive

def test_app_reaches_three_running(full):
    c = full
    created = post_app(c, app_def("/three", 3))
    assert created["id"] == "/three"
    tasks = wait_running(c, "/three", 3)
    for t in tasks.values():
        assert t["appId"] == "/three"
        assert t["host"]
        assert len(t["ports"]) == 1 and 31000 <= t["ports"][0] <= 31199
    # the master agrees: three running tasks of relay's framework
    state = c.master_state()
    running = [t for f in state["frameworks"] for t in f.get("tasks", [])
               if t["state"] == "TASK_RUNNING"]
    assert sorted(t["id"] for t in running) == sorted(tasks)


def test_killed_task_is_replaced(full):
    c = full
    post_app(c, app_def("/phoenix", 3))
    before = wait_running(c, "/phoenix", 3)
    victim = sleepers(c)[0]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        tasks = running_tasks(c, "/phoenix")
        new = set(tasks) - set(before)
        pids = sleepers(c)
        return (len(tasks) == 3 and new and victim not in pids and len(pids) == 3
                and get_app(c, "/phoenix")["tasksRunning"] == 3)
    wait_for(replaced, timeout=60, interval=0.2, what="the killed task to be replaced")


def test_scale_up_and_down(full):
    c = full
    post_app(c, app_def("/elastic", 3))
    wait_running(c, "/elastic", 3)
    settled(c)
    put_instances(c, "/elastic", 5)
    wait_running(c, "/elastic", 5)
    assert get_app(c, "/elastic")["instances"] == 5
    settled(c)
    put_instances(c, "/elastic", 1)
    wait_running(c, "/elastic", 1)
    assert get_app(c, "/elastic")["instances"] == 1
    hold(lambda: len(sleepers(c)) == 1, 2, "a single task process")


def test_delete_leaves_no_task_process(full):
    c = full
    post_app(c, app_def("/doomed", 3))
    wait_running(c, "/doomed", 3)
    r = http("DELETE", c.relay_url + "/v2/apps/doomed")
    assert r.status_code == 200, r.text
    assert "deploymentId" in r.json()
    wait_for(lambda: task_pids(c.dir) == [], timeout=30, interval=0.2,
             what="every task process to end")
    wait_for(lambda: http("GET", c.relay_url + "/v2/apps/doomed").status_code == 404,
             timeout=30, what="the app to be gone")


def test_lost_agent_tasks_move(full):
    c = full
    post_app(c, app_def("/nomad", 3))
    tasks = wait_running(c, "/nomad", 3)
    ids = agent_ids(c)
    by_agent = {}
    for t in tasks.values():
        by_agent.setdefault(t["slaveId"], []).append(t["id"])
    # kill the agent that runs the most tasks; its tasks must move to the other
    victim_id = max(by_agent, key=lambda a: len(by_agent[a]))
    victim = next(a for a in c.agents if ids.get(a.port) == victim_id)
    survivor = next(a for a in c.agents if a is not victim)
    survivor_id = ids[survivor.port]
    victim.kill(signal.SIGKILL)
    victim.wait()

    def moved():
        now = running_tasks(c, "/nomad")
        return (len(now) == 3 and all(t["slaveId"] == survivor_id for t in now.values())
                and not set(by_agent[victim_id]) & set(now))
    wait_for(moved, timeout=60, interval=0.2,
             what="the lost agent's tasks to be replaced on the other agent")
    slaves = {s["id"]: s for s in c.master_state()["slaves"]}
    assert victim_id not in slaves or slaves[victim_id].get("active") is False


# --------------------------------------------------------------------------- restarts

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_master_restart_keeps_tasks(full, sig):
    c = full
    post_app(c, app_def("/steady", 3))
    tasks = wait_running(c, "/steady", 3)
    pids = sleepers(c)
    c.master.kill(sig)
    c.master.wait(timeout=15)
    c.master.start()
    c.master.wait_healthy()

    def resubscribed():
        state = c.master_state()
        active = [s for s in state.get("slaves", []) if s.get("active", True)]
        return len(active) == 2 and frameworks_connected(c)
    wait_for(resubscribed, timeout=60, interval=0.2,
             what="both agents and relay to subscribe to the restarted master")

    def same():
        return (set(running_tasks(c, "/steady")) == set(tasks) and sleepers(c) == pids
                and get_app(c, "/steady")["tasksRunning"] == 3)
    wait_for(same, timeout=30, interval=0.2, what="the same three tasks to be reported")
    hold(same, 5, "same task ids and pids after the master restart")
    state = c.master_state()
    known = [t["id"] for f in state["frameworks"] for t in f.get("tasks", [])
             if t["state"] == "TASK_RUNNING"]
    assert sorted(known) == sorted(tasks)


def test_relay_restart_adopts_tasks(full):
    c = full
    post_app(c, app_def("/adopted", 3))
    tasks = wait_running(c, "/adopted", 3)
    pids = sleepers(c)
    c.relay.restart()
    app = get_app(c, "/adopted")
    assert app["instances"] == 3

    def same():
        return (set(running_tasks(c, "/adopted")) == set(tasks) and sleepers(c) == pids
                and get_app(c, "/adopted")["tasksRunning"] == 3)
    wait_for(same, timeout=30, interval=0.2, what="relay to report the same three tasks")
    hold(same, 5, "same task ids and pids after the relay restart")


# --------------------------------------------------------------------------- bad input: relay

def test_relay_rejects_invalid_json(full):
    c = full
    r = http("POST", c.relay_url + "/v2/apps", data=b'{"id": "/x", "cmd": ',
             headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["message"]
    assert http("GET", c.relay_url + "/ping").status_code == 200


def test_relay_rejects_app_without_command(full):
    c = full
    r = http("POST", c.relay_url + "/v2/apps", json={"id": "/nothing", "instances": 1})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"]
    assert body["details"], body
    text = json.dumps(body["details"])
    assert "cmd" in text and "args" in text, text
    assert http("GET", c.relay_url + "/v2/apps/nothing").status_code == 404


def test_relay_unknown_app_is_404(full):
    c = full
    for method in ("GET", "DELETE"):
        r = http(method, c.relay_url + "/v2/apps/no-such-app")
        assert r.status_code == 404, (method, r.text)
        assert "/no-such-app" in r.json()["message"]
    r = http("GET", c.relay_url + "/v2/apps/no-such-app/tasks")
    assert r.status_code == 404, r.text


# --------------------------------------------------------------------------- bad input: master

SCHEDULER = "/api/v1/scheduler"


@pytest.mark.parametrize("ctype,body,status", [
    ("application/json", b"{not json", 400),
    ("application/json", b'{"type": "NO_SUCH_CALL"}', 400),
    ("application/x-protobuf", b"\xff\xff\xff\xff\x0f\x08garbage", 400),
    ("text/plain", b"hello", 415),
])
def test_master_rejects_garbage(master_only, ctype, body, status):
    c = master_only
    r = http("POST", c.master_url + SCHEDULER, data=body,
             headers={"Content-Type": ctype, "Accept": "application/json"})
    assert r.status_code == status, r.text
    assert r.text.strip(), "the answer names the problem"
    assert http("GET", c.master_url + "/health").status_code == 200
    assert "slaves" in c.master_state()


def _raw(port, data, read=True):
    """Send raw bytes to 127.0.0.1:port; return what arrives before close or a short timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
        if not read:
            return b""
        s.settimeout(2)
        try:
            return s.recv(4096)
        except socket.timeout:
            return b""
    finally:
        s.close()


def test_master_survives_truncated_requests(master_only):
    c = master_only
    port = c.master.port
    # a body shorter than its Content-Length, then the connection closes
    _raw(port, b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
               b'{"type":"SUBSCRIBE",', read=False)
    # headers cut in the middle
    _raw(port, b"POST /api/v1/scheduler HTTP/1.1\r\nContent-Ty", read=False)
    # a SUBSCRIBE whose stream is closed by the client after the first bytes
    call = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "root", "name": "truncated", "failover_timeout": 0}}}).encode()
    got = _raw(port, b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nAccept: application/json\r\n"
                     b"Content-Length: " + str(len(call)).encode() + b"\r\n\r\n" + call)
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    assert http("GET", c.master_url + "/health").status_code == 200
    # a well-formed SUBSCRIBE still works afterwards
    r = http("POST", c.master_url + SCHEDULER, data=call, stream=True,
             headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        assert r.status_code == 200
        assert r.headers.get("Mesos-Stream-Id")
        first = next(r.iter_content(chunk_size=None))
        assert b"SUBSCRIBED" in first
    finally:
        r.close()
    assert "slaves" in c.master_state()
