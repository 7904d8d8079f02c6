"""End-to-end tests of relay's event bus, GET /v2/events (server-sent events).

Each test starts a real butte-master, a real butte-agent and a real
butte-relay on loopback. Streams are read over raw sockets by a thread
(SSE below), which keeps every line as it came so the framing itself is
checked: "event: <type>\\r\\ndata: <json>\\r\\n\\r\\n" per event and a bare
"\\r\\n" as the heartbeat. Waits poll with deadlines; nothing sleeps to
synchronise.
"""
import json
import re
import socket
import threading
import time

import pytest

from harness import http, settled, wait_for

MASTER_FLAGS = ("--allocation_interval=100ms",)
AGENT = "cpus:4;mem:2048;disk:1024;ports(*):[31000-31099]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MARATHON_TYPES = {
    "status_update_event", "instance_changed_event", "health_status_changed_event",
    "failed_health_check_event", "unhealthy_instance_kill_event", "api_post_event",
    "deployment_info", "deployment_step_success", "deployment_success", "deployment_failed",
    "app_terminated_event", "event_stream_attached", "event_stream_detached",
}


def start(cluster, relay_env=None):
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_agent(resources=AGENT)
    cluster.start_relay(env=relay_env)
    return cluster


def api(cluster, method, path, body=None, **kw):
    return http(method, cluster.relay_url + path, json=body, headers=JSON, **kw)


def sleeper(app_id, instances=1, **extra):
    app = {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
           "instances": instances, "backoffSeconds": 0.1}
    app.update(extra)
    return app


class SSE:
    """One /v2/events stream over a raw socket, read by a thread.

    events: [(type, data)] in arrival order (data parsed lazily by
    .data(i) unless keep is False, then only types are kept);
    heartbeats: bare CRLF lines outside an event; bad_lines: lines not
    ending in CRLF or not of the SSE forms relay sends; nbytes: body bytes.
    """

    def __init__(self, cluster, path="/v2/events", accept="text/event-stream", rcvbuf=None,
                 read=True, keep=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", cluster.relay.port))
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           f"Accept: {accept}\r\n\r\n").encode())
        self.keep = keep
        self.status = None
        self.headers = {}
        self.events = []
        self.counts = {}
        self.heartbeats = 0
        self.bad_lines = []
        self.nbytes = 0
        self.eof = False
        self.lock = threading.Lock()
        if read:
            self.sock.settimeout(None)
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _head(self, f):
        status = f.readline().decode()
        self.status = int(status.split()[1])
        while True:
            line = f.readline().decode()
            if line in ("\r\n", "\n", ""):
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()

    def _run(self):
        f = self.sock.makefile("rb")
        try:
            self._head(f)
            kind = data = None
            while True:
                line = f.readline()
                if not line:
                    break
                self.nbytes += len(line)
                if not line.endswith(b"\r\n"):
                    self.bad_lines.append(line[:200])
                    continue
                if line == b"\r\n":
                    with self.lock:
                        if kind is None and data is None:
                            self.heartbeats += 1
                        else:
                            self.events.append((kind, data if self.keep else None))
                            self.counts[kind] = self.counts.get(kind, 0) + 1
                    kind = data = None
                elif line.startswith(b"event: ") and kind is None:
                    kind = line[7:-2].decode()
                elif line.startswith(b"data: ") and data is None:
                    data = line[6:-2]
                else:
                    self.bad_lines.append(line[:200])
        except OSError:
            pass
        self.eof = True

    def types(self):
        with self.lock:
            return [k for k, _ in self.events]

    def data(self, i):
        with self.lock:
            return json.loads(self.events[i][1])

    def parsed(self):
        with self.lock:
            return [(k, json.loads(d) if d is not None else {}) for k, d in self.events]

    def find(self, kind, pred=lambda e: True, start=0):
        """Index of the first event of `kind` at or after start matching pred, or None."""
        for i, (k, e) in enumerate(self.parsed()):
            if i >= start and k == kind and pred(e):
                return i
        return None

    def wait(self, kind, pred=lambda e: True, start=0, timeout=30):
        """Wait for find() to succeed; returns the index."""
        found = []

        def look():
            i = self.find(kind, pred, start)
            if i is not None:
                found.append(i)
            return i is not None
        wait_for(look, timeout=timeout, what=f"a {kind} event")
        return found[-1]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def in_order(stream, steps):
    """Each (kind, pred) found after the previous one; returns the indices."""
    out, at = [], 0
    for kind, pred in steps:
        i = stream.find(kind, pred, at)
        assert i is not None, (f"no {kind} after event {at}; got "
                               f"{[(k, e.get('taskStatus', '')) for k, e in stream.parsed()]}")
        out.append(i)
        at = i + 1
    return out


def check_events(stream, light=False):
    """Framing, the fields every event has, and (full plans) the python client's parser."""
    try:
        from marathon.models.events import EventFactory
    except ImportError:
        EventFactory = None
    assert stream.bad_lines == []
    last = ""
    for kind, e in stream.parsed():
        assert kind in MARATHON_TYPES
        assert e["eventType"] == kind
        assert TIMESTAMP.match(e["timestamp"]), e["timestamp"]
        assert e["timestamp"] >= last
        last = e["timestamp"]
        if EventFactory is not None and not light:
            EventFactory().process(e)


def task_is(task_id, status):
    return lambda e: e["taskId"] == task_id and e["taskStatus"] == status


def test_events_need_the_event_stream_accept_header(cluster):
    start(cluster)
    url = cluster.relay_url + "/v2/events"
    r = http("GET", url)
    assert r.status_code == 405
    assert "text/event-stream" in r.json()["message"]
    r = http("GET", url, headers={"Accept": "application/json"})
    assert r.status_code == 405 and "message" in r.json()
    r = http("POST", url, headers={"Accept": "text/event-stream"})
    assert r.status_code == 405 and "POST" in r.json()["message"]
    r = http("DELETE", url, headers={"Accept": "text/event-stream"})
    assert r.status_code == 405
    assert http("GET", cluster.relay_url + "/ping").status_code == 200

    # a list of media types naming text/event-stream is enough; the answer's headers
    s = SSE(cluster, accept="application/json, text/event-stream;q=0.9")
    s.wait("event_stream_attached")
    assert s.status == 200
    assert s.headers["content-type"] == "text/event-stream;charset=UTF-8"
    assert s.headers["connection"].lower() == "close"
    assert "transfer-encoding" not in s.headers and "content-length" not in s.headers
    assert s.data(0)["remoteAddress"] == "127.0.0.1"

    # a second subscriber: both see it attach; when it leaves, the first sees it go
    s2 = SSE(cluster)
    s2.wait("event_stream_attached")
    s.wait("event_stream_attached", start=1)
    s2.close()
    i = s.wait("event_stream_detached")
    assert s.data(i)["remoteAddress"] == "127.0.0.1"
    check_events(s)
    s.close()


def test_create_scale_kill_and_delete_arrive_in_order(cluster):
    start(cluster)
    s = SSE(cluster)
    s.wait("event_stream_attached")
    assert s.types()[0] == "event_stream_attached"

    # create
    r = api(cluster, "POST", "/v2/apps", sleeper("/ev"))
    assert r.status_code == 201, r.text
    dep = r.headers["Marathon-Deployment-Id"]
    s.wait("deployment_success", lambda e: e["id"] == dep)
    idx = in_order(s, [
        ("api_post_event", lambda e: e["uri"] == "/v2/apps" and e["appDefinition"]["id"] == "/ev"
         and e["clientIp"] == "127.0.0.1"),
        ("deployment_info", lambda e: e["plan"]["id"] == dep and
         e["currentStep"]["actions"][0] == {"action": "StartApplication", "app": "/ev"}),
        ("deployment_step_success", lambda e: e["plan"]["id"] == dep),
        ("deployment_info", lambda e: e["plan"]["id"] == dep and
         e["currentStep"]["actions"][0]["action"] == "ScaleApplication"),
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_STAGING"),
        ("instance_changed_event", lambda e: e["condition"] == "Provisioned"),
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_RUNNING"),
        ("instance_changed_event", lambda e: e["condition"] == "Running"),
        ("deployment_step_success", lambda e: e["plan"]["id"] == dep),
        ("deployment_success", lambda e: e["id"] == dep),
    ])
    running = s.data(idx[6])
    first_task = running["taskId"]
    assert running["appId"] == "/ev" and running["host"] and running["slaveId"]
    assert running["ports"] and 31000 <= running["ports"][0] <= 31099
    assert running["ipAddresses"] == [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}]
    assert running["version"] == s.data(idx[0])["appDefinition"]["version"]
    changed = s.data(idx[7])
    assert changed["runSpecId"] == "/ev" and changed["agentId"] == running["slaveId"]
    assert changed["instanceId"] and first_task.startswith(changed["instanceId"])

    # scale to 2
    settled(cluster)
    mark = len(s.types())
    r = api(cluster, "PUT", "/v2/apps/ev", {"instances": 2})
    assert r.status_code == 200, r.text
    dep2 = r.json()["deploymentId"]
    s.wait("deployment_success", lambda e: e["id"] == dep2, start=mark)
    idx = in_order(s, [
        ("api_post_event", lambda e: e["uri"] == "/v2/apps/ev" and
         e["appDefinition"]["instances"] == 2),
        ("deployment_info", lambda e: e["plan"]["id"] == dep2),
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_STAGING" and
         e["taskId"] != first_task),
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_RUNNING" and
         e["taskId"] != first_task),
        ("deployment_success", lambda e: e["id"] == dep2),
    ])
    assert idx[0] >= mark
    second_task = s.data(idx[3])["taskId"]

    # kill one task (capitalised booleans, as the python client sends them)
    mark = len(s.types())
    r = api(cluster, "DELETE", f"/v2/apps/ev/tasks/{first_task}?scale=False&wipe=False")
    assert r.status_code == 200, r.text
    s.wait("status_update_event", lambda e: e["taskStatus"] == "TASK_RUNNING" and
           e["taskId"] not in (first_task, second_task), start=mark)
    s.wait("status_update_event", task_is(first_task, "TASK_KILLED"), start=mark)
    # the replacement may start before the kill is confirmed: two orders to check
    killed = in_order(s, [
        ("status_update_event", task_is(first_task, "TASK_KILLED")),
        ("instance_changed_event", lambda e: e["condition"] == "Killed" and
         first_task.startswith(e["instanceId"])),
    ])
    assert killed[0] >= mark
    new = in_order(s, [
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_STAGING" and
         e["taskId"] not in (first_task, second_task)),
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_RUNNING" and
         e["taskId"] not in (first_task, second_task)),
    ])
    assert new[0] >= mark

    # delete (a double slash and force=True, as the python client's cleanup sends)
    mark = len(s.types())
    r = api(cluster, "DELETE", "/v2/apps//ev?force=True")
    assert r.status_code == 200, r.text
    dep3 = r.json()["deploymentId"]
    s.wait("deployment_success", lambda e: e["id"] == dep3, start=mark)
    in_order(s, [
        ("deployment_info", lambda e: e["plan"]["id"] == dep3 and
         e["currentStep"]["actions"][0]["action"] == "StopApplication"),
        ("app_terminated_event", lambda e: e["appId"] == "/ev"),
        ("status_update_event", lambda e: e["taskStatus"] == "TASK_KILLED"),
        ("deployment_success", lambda e: e["id"] == dep3),
    ])
    assert s.find("api_post_event", start=mark) is None   # Marathon posts none for a delete
    check_events(s)
    s.close()


def test_event_type_filter_and_heartbeat(cluster):
    start(cluster)
    t0 = time.monotonic()
    f = SSE(cluster, path="//v2/events?event_type=status_update_event"
                          "&event_type=app_terminated_event")
    wait_for(lambda: f.status == 200, what="the filtered stream to start")
    r = api(cluster, "POST", "/v2/apps", sleeper("/filtered"))
    assert r.status_code == 201, r.text
    f.wait("status_update_event", lambda e: e["taskStatus"] == "TASK_RUNNING")
    assert api(cluster, "DELETE", "/v2/apps/filtered").status_code == 200
    f.wait("app_terminated_event")
    f.wait("status_update_event", lambda e: e["taskStatus"] == "TASK_KILLED")
    assert set(f.types()) == {"status_update_event", "app_terminated_event"}
    check_events(f)

    # nothing else happens: a bare CRLF arrives about every 10 s
    wait_for(lambda: f.heartbeats >= 1, timeout=20, what="a heartbeat")
    assert time.monotonic() - t0 >= 9
    assert f.bad_lines == []
    f.close()


def test_plan_format_light_drops_the_plans(cluster):
    start(cluster)
    full = SSE(cluster, path="/v2/events?event_type=deployment_info&event_type=deployment_success")
    light = SSE(cluster, path="/v2/events?plan-format=light&event_type=deployment_info"
                              "&event_type=deployment_success")
    wait_for(lambda: full.status == 200 and light.status == 200, what="both streams")
    assert api(cluster, "POST", "/v2/apps", sleeper("/other", instances=0)).status_code == 201
    r = api(cluster, "POST", "/v2/apps", sleeper("/planned"))
    dep = r.headers["Marathon-Deployment-Id"]
    for s in (full, light):
        s.wait("deployment_success", lambda e: e["id"] == dep)

    e = full.data(full.find("deployment_info", lambda e: e["plan"]["id"] == dep))
    plan = e["plan"]
    assert set(plan) == {"id", "original", "target", "steps", "version"}
    assert [a["id"] for a in plan["original"]["apps"]] == ["/other"]
    assert sorted(a["id"] for a in plan["target"]["apps"]) == ["/other", "/planned"]
    for g in (plan["original"], plan["target"]):
        assert set(g) == {"id", "apps", "groups", "pods", "dependencies", "version"}
    assert plan["steps"] == [{"actions": [{"action": "StartApplication", "app": "/planned"}]},
                             {"actions": [{"action": "ScaleApplication", "app": "/planned"}]}]
    assert "plan" in full.data(full.find("deployment_success", lambda e: e["id"] == dep))

    e = light.data(light.find("deployment_info", lambda e: e["plan"]["id"] == dep))
    assert set(e["plan"]) == {"id", "steps", "version"}
    assert e["plan"]["steps"] == plan["steps"]
    assert e["currentStep"]["actions"][0]["app"] == "/planned"
    done = light.data(light.find("deployment_success", lambda e: e["id"] == dep))
    assert set(done["plan"]) == {"id", "steps", "version"}
    check_events(full)
    check_events(light, light=True)
    full.close()
    light.close()


def test_replaced_and_cancelled_deployments_fail(cluster):
    start(cluster)
    s = SSE(cluster, path="/v2/events?event_type=deployment_failed&event_type=deployment_info")
    wait_for(lambda: s.status == 200, what="the stream")
    # more cpus than any agent has: the deployment can never finish
    r = api(cluster, "POST", "/v2/apps", sleeper("/stuck", cpus=64))
    dep = r.headers["Marathon-Deployment-Id"]
    s.wait("deployment_info", lambda e: e["plan"]["id"] == dep)
    r = api(cluster, "PUT", "/v2/apps/stuck?force=True", {"instances": 2})
    dep2 = r.json()["deploymentId"]
    i = s.wait("deployment_failed", lambda e: e["id"] == dep)
    assert s.data(i)["plan"]["id"] == dep
    r = api(cluster, "DELETE", f"/v2/deployments/{dep2}?force=true")
    assert r.status_code == 202
    s.wait("deployment_failed", lambda e: e["id"] == dep2)
    check_events(s)
    s.close()


def test_health_events(cluster):
    start(cluster)
    s = SSE(cluster)
    s.wait("event_stream_attached")
    check = {"protocol": "COMMAND", "command": {"value": "test -f ready"},
             "gracePeriodSeconds": 1, "intervalSeconds": 1, "timeoutSeconds": 2,
             "delaySeconds": 0, "maxConsecutiveFailures": 2}
    # healthy at first, failing from about 3 s on: killed after two failures
    r = api(cluster, "POST", "/v2/apps", {
        "id": "/sick", "cmd": "touch ready; sleep 3; rm ready; exec sleep 600", "cpus": 0.1,
        "mem": 16, "backoffSeconds": 0.1, "healthChecks": [check]})
    assert r.status_code == 201, r.text
    s.wait("unhealthy_instance_kill_event", timeout=40)
    idx = in_order(s, [
        ("health_status_changed_event", lambda e: e["alive"] is True),
        ("failed_health_check_event", lambda e: e["appId"] == "/sick"),
        ("health_status_changed_event", lambda e: e["alive"] is False),
        ("unhealthy_instance_kill_event", lambda e: e["appId"] == "/sick"),
    ])
    up, failed, down, kill = (s.data(i) for i in idx)
    task = kill["taskId"]
    assert up["appId"] == "/sick" and task.startswith(up["instanceId"]) and up["version"]
    assert failed["taskId"] == task and failed["healthCheck"]["protocol"] == "COMMAND"
    assert down["instanceId"] == kill["instanceId"] == up["instanceId"]
    assert kill["reason"] and kill["host"] and kill["slaveId"] and kill["version"]
    s.wait("status_update_event", task_is(task, "TASK_KILLED"), start=idx[3])
    check_events(s)
    s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_stops_reading_is_dropped_and_memory_stays_flat(cluster):
    # a small ASan quarantine so that RSS follows live memory in sanitizer builds too
    start(cluster, relay_env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:"
                                              "quarantine_size_mb=8"})
    env = {f"VAR_{i}": "x" * 60 for i in range(30)}
    for i in range(20):
        r = api(cluster, "POST", "/v2/apps", sleeper(f"/big{i}", instances=0, env=env))
        assert r.status_code == 201, r.text

    # a reader that keeps up (full plans, every event) and a client that never reads
    reader = SSE(cluster, keep=False)
    reader.wait("event_stream_attached")
    slow = SSE(cluster, rcvbuf=4096, read=False)
    wait_for(lambda: reader.types().count("event_stream_attached") == 2,
             what="the slow client to attach")
    base = rss_kb(cluster.relay.pid)
    peak = base
    deadline = time.monotonic() + 120
    n = 0
    # every change sends events carrying the whole root group twice (~100 kB each);
    # the reader is let to catch up after each one so that only the slow client lags
    while n < 3000 and time.monotonic() < deadline:
        r = api(cluster, "PUT", "/v2/apps/big0?force=true", {"labels": {"n": str(n)}})
        assert r.status_code == 200, r.text
        n += 1
        wait_for(lambda: reader.counts.get("api_post_event", 0) >= n - 1, interval=0.002,
                 what="the reader to keep up")
        if n % 10 == 0:
            peak = max(peak, rss_kb(cluster.relay.pid))
            if "event_stream_detached" in reader.types() and reader.nbytes > 64 << 20:
                break
    assert "event_stream_detached" in reader.types(), "the slow client was never dropped"
    assert reader.nbytes > 64 << 20, f"only {reader.nbytes} bytes produced in {n} changes"
    growth = (peak - base) * 1024
    # a relay buffering for the slow client would have grown by reader.nbytes
    assert growth < 40 << 20, f"relay grew by {growth} bytes over {reader.nbytes} bytes of events"
    assert "dropping slow" in cluster.relay.log() or "slow client" in cluster.relay.log()

    # the dropped client reads what was already on its socket, then the end
    slow.sock.settimeout(10)
    got = 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        chunk = slow.sock.recv(1 << 16)
        if not chunk:
            break
        got += len(chunk)
    else:
        raise AssertionError("the dropped stream never ended")
    assert got > 0
    slow.close()
    assert http("GET", cluster.relay_url + "/ping").status_code == 200
    assert reader.bad_lines == [] and not reader.eof
    reader.close()


def test_a_slow_client_is_dropped_past_1024_waiting_events(cluster):
    start(cluster)
    assert api(cluster, "POST", "/v2/apps", sleeper("/small", instances=0)).status_code == 201
    watcher = SSE(cluster, path="/v2/events?event_type=event_stream_detached")
    wait_for(lambda: watcher.status == 200, what="the watcher")
    # light plans keep every event small: the count of waiting events is what trips
    slow = SSE(cluster, path="/v2/events?plan-format=light", rcvbuf=4096, read=False)
    wait_for(lambda: cluster.relay.log().count("event stream to 127.0.0.1 opened") == 2,
             what="the slow client to attach")
    n = 0
    deadline = time.monotonic() + 60
    # the drop comes once 1024 events have waited for a second
    while not watcher.types() and n < 30000 and time.monotonic() < deadline:
        r = api(cluster, "PUT", "/v2/apps/small?force=true", {"labels": {"n": str(n)}})
        assert r.status_code == 200, r.text
        n += 1
    assert watcher.types() == ["event_stream_detached"], f"no drop after {n} changes"
    assert "1024 events waiting" in cluster.relay.log()
    assert "dropping slow stream" not in cluster.relay.log()
    slow.sock.settimeout(10)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if not slow.sock.recv(1 << 16):
            break
    else:
        raise AssertionError("the dropped stream never ended")
    slow.close()
    check_events(watcher)
    watcher.close()


def test_python_marathon_client_event_stream(cluster):
    pytest.importorskip("marathon")
    from marathon import MarathonApp, MarathonClient
    from marathon.models.events import (MarathonApiPostEvent, MarathonDeploymentInfo,
                                        MarathonDeploymentSuccess, MarathonEventStreamAttached,
                                        MarathonStatusUpdateEvent)
    start(cluster)
    c = MarathonClient(cluster.relay_url)
    got, errors = [], []

    def consume(types=None, into=got):
        try:
            for ev in c.event_stream(event_types=types):
                into.append(ev)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    # requests' iter_lines() waits for 512 bytes: the client sees events once traffic flows
    threading.Thread(target=consume, daemon=True).start()
    only_status = []
    threading.Thread(target=consume, args=([MarathonStatusUpdateEvent], only_status),
                     daemon=True).start()
    wait_for(lambda: cluster.relay.log().count("event stream to 127.0.0.1 opened") == 2,
             what="both clients to attach")

    app = c.create_app("pyev", MarathonApp(cmd="sleep 600", cpus=0.1, mem=16, instances=1))
    assert app and app.id == "/pyev"

    def has(cls, pred=lambda e: True):
        return any(isinstance(e, cls) and pred(e) for e in got)
    # the events after TASK_RUNNING push it through iter_lines' buffer
    wait_for(lambda: has(MarathonStatusUpdateEvent, lambda e: e.task_status == "TASK_RUNNING"),
             timeout=30, what="TASK_RUNNING")
    assert not errors, errors
    assert isinstance(got[0], MarathonEventStreamAttached)
    assert got[0].remote_address == "127.0.0.1"
    post = next(e for e in got if isinstance(e, MarathonApiPostEvent))
    assert post.app_definition["id"] == "/pyev" and post.uri == "/v2/apps"
    info = next(e for e in got if isinstance(e, MarathonDeploymentInfo))
    assert [a["id"] for a in info.plan.target.apps] == ["/pyev"]
    assert info.plan.original.apps == [] and info.plan.steps[0].actions[0].app == "/pyev"
    run = next(e for e in got if isinstance(e, MarathonStatusUpdateEvent) and
               e.task_status == "TASK_RUNNING")
    assert run.app_id == "/pyev" and run.ip_addresses[0].ip_address == "127.0.0.1"

    # a delete: its events push the create's deployment_success through, and parse too
    wait_for(lambda: c.list_deployments() == [], what="the create's deployment to finish")
    c.delete_app("pyev", force=True)
    wait_for(lambda: has(MarathonDeploymentSuccess) and
             has(MarathonStatusUpdateEvent, lambda e: e.task_status == "TASK_KILLED"),
             timeout=30, what="deployment_success and TASK_KILLED")
    wait_for(lambda: any(e.task_status == "TASK_RUNNING" for e in only_status),
             what="the filtered client's TASK_RUNNING")
    assert all(isinstance(e, MarathonStatusUpdateEvent) for e in only_status)
    assert not errors, errors
