"""End-to-end tests of butte-relay, the Marathon-compatible framework.

Each test starts a real butte-master, two real butte-agents with disjoint
port ranges and a real butte-relay on loopback, and drives relay through
its Marathon v2 REST API with requests (the python marathon client drives
test_marathon_client.py). Task processes are found by their working directory (the agent
sandboxes under the test's tmp dir) and their MARATHON_APP_ID variable.
"""
import json
import os
import re
import signal
import sqlite3
import time

from harness import http, settled, task_pids, wait_for

MASTER_FLAGS = ("--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=3",
                "--allocation_interval=100ms")
AGENT1 = "cpus:4;mem:2048;disk:1024;ports(*):[31000-31099]"
AGENT2 = "cpus:4;mem:2048;disk:1024;ports(*):[31100-31199]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def start(cluster, agents=2):
    cluster.start_master(*MASTER_FLAGS)
    if agents >= 1:
        cluster.start_agent(resources=AGENT1)
    if agents >= 2:
        cluster.start_agent(resources=AGENT2)
    cluster.start_relay()
    return cluster


def api(cluster, method, path, body=None, raw=None, headers=None, **kw):
    h = dict(JSON)
    h.update(headers or {})
    if raw is not None:
        return http(method, cluster.relay_url + path, data=raw, headers=h, **kw)
    return http(method, cluster.relay_url + path, json=body, headers=h, **kw)


def sleeper(app_id, instances=1, **extra):
    app = {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
           "instances": instances, "backoffSeconds": 0.1}
    app.update(extra)
    return app


def get_app(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.lstrip("/"))
    assert r.status_code == 200, r.text
    return r.json()["app"]


def app_pids(cluster, app_id):
    """Task processes of one app: cwd under the test dir, MARATHON_APP_ID set to it."""
    found = []
    for pid in task_pids(cluster.dir):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"MARATHON_APP_ID={app_id}".encode() in env:
            found.append(pid)
    return found


def app_processes(cluster, app_id):
    """One pid per task: the oldest process of each MESOS_TASK_ID."""
    tasks = {}
    for pid in app_pids(cluster, app_id):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        tid = env.get(b"MESOS_TASK_ID", b"").decode()
        tasks.setdefault(tid, []).append(pid)
    return {tid: min(pids) for tid, pids in tasks.items()}


def running(cluster, app_id, n):
    """The app has exactly n running tasks, all listed, and n task processes."""
    app = get_app(cluster, app_id)
    tasks = [t for t in app["tasks"] if t["state"] == "TASK_RUNNING"]
    if app["tasksRunning"] != n or len(tasks) != n or len(app["tasks"]) != n:
        return None
    if len(app_processes(cluster, app_id)) != n:
        return None
    return app


def wait_running(cluster, app_id, n, timeout=30):
    return wait_for(lambda: running(cluster, app_id, n), timeout=timeout,
                    what=f"{app_id} to have {n} running tasks")


def agent_ids(cluster):
    """agent Proc -> agent id, from the master's state."""
    out = {}
    for s in cluster.master_state().get("slaves", []):
        for a in cluster.agents:
            if s.get("port") == a.port:
                out[a.name] = s["id"]
    return out


def still_serving(cluster):
    assert api(cluster, "GET", "/ping").status_code == 200


# --- bad input -----------------------------------------------------------------

def test_bad_input_answers_like_marathon(cluster):
    start(cluster, agents=0)

    r = api(cluster, "POST", "/v2/apps", raw="{not json")
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid JSON"
    assert isinstance(r.json()["details"], str) and r.json()["details"]
    still_serving(cluster)

    r = api(cluster, "POST", "/v2/apps", raw="")
    assert r.status_code == 400 and r.json()["message"] == "Invalid JSON"

    r = api(cluster, "POST", "/v2/apps", {"id": "nocmd", "cpus": 0.1})
    assert r.status_code == 422
    body = r.json()
    assert body["message"] == "Object is not valid"
    assert {"path": "/", "errors": [
        "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."]} \
        in body["details"]
    still_serving(cluster)

    r = api(cluster, "POST", "/v2/apps", {"id": "Bad_Id", "cmd": "true"})
    assert r.status_code == 422
    assert r.json()["details"][0]["path"] == "/id"
    assert "must fully match regular expression" in r.json()["details"][0]["errors"][0]

    r = api(cluster, "POST", "/v2/apps", {"id": None, "cmd": "true"})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/id"
    assert api(cluster, "GET", "/v2/apps").json()["apps"] == []

    r = api(cluster, "POST", "/v2/apps", {"id": "huge", "cmd": "true", "instances": 1e20})
    assert r.status_code == 400
    assert r.json()["details"] == [{"path": "/instances", "errors": ["error.expected.jsnumber"]}]
    still_serving(cluster)

    r = api(cluster, "POST", "/v2/apps", {"id": "typed", "cmd": "true", "cpus": "lots"})
    assert r.status_code == 400
    assert r.json()["details"] == [{"path": "/cpus", "errors": ["error.expected.jsnumber"]}]

    r = api(cluster, "POST", "/v2/apps", {"id": "neg", "cmd": "true", "instances": -1})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/instances"

    r = api(cluster, "POST", "/v2/apps", {"id": "both", "cmd": "true", "ports": [0],
                                         "portDefinitions": [{"port": 0}]})
    assert r.status_code == 422
    assert "cannot specify both ports and port definitions" in r.text

    r = api(cluster, "POST", "/v2/apps", {"id": "dup", "cmd": "true", "portDefinitions": [
        {"port": 0, "name": "a"}, {"port": 0, "name": "a"}]})
    assert r.status_code == 422 and "Port names must be unique." in r.text

    r = api(cluster, "POST", "/v2/apps", {"id": "x", "cmd": "true"},
            headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    still_serving(cluster)

    r = api(cluster, "POST", "/v2/apps", sleeper("/twice", instances=0))
    assert r.status_code == 201
    r = api(cluster, "POST", "/v2/apps", sleeper("/twice", instances=0))
    assert r.status_code == 409
    assert r.json() == {"message": "An app with id [/twice] already exists."}

    for method in ("GET", "DELETE"):
        r = api(cluster, method, "/v2/apps/nope")
        assert r.status_code == 404
        assert r.json() == {"message": "App '/nope' does not exist"}
    r = api(cluster, "GET", "/v2/apps/nope/tasks")
    assert r.status_code == 404

    r = api(cluster, "GET", "/v2/nothing-here")
    assert r.status_code == 404 and r.json() == {"message": "URI not found"}

    r = api(cluster, "PUT", "/v2/apps/twice", {"version": "2001-01-01T00:00:00.000Z"})
    assert r.status_code == 404

    r = api(cluster, "DELETE", "/v2/apps/twice/tasks?scale=true&wipe=true")
    assert r.status_code == 400
    assert r.json()["message"] == "You cannot use scale and wipe at the same time."
    still_serving(cluster)


def test_app_json_shape_and_versions(cluster):
    start(cluster, agents=0)
    r = api(cluster, "POST", "/v2/apps", {"id": "grp/shape", "cmd": "true", "instances": 0,
                                         "ports": [0, 0], "uris": ["http://x/a.tgz"],
                                         "labels": {"a": "b"}})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/v2/apps/grp/shape"
    assert r.headers["Marathon-Deployment-Id"]
    app = r.json()
    assert app["id"] == "/grp/shape"
    assert "ports" not in app and "uris" not in app
    assert [p["port"] for p in app["portDefinitions"]] == [10000, 10001]
    assert app["fetch"][0] == {"uri": "http://x/a.tgz", "extract": True,
                               "executable": False, "cache": False}
    for key, value in (("cpus", 1), ("mem", 128), ("disk", 0), ("backoffSeconds", 1),
                       ("backoffFactor", 1.15), ("maxLaunchDelaySeconds", 300),
                       ("killSelection", "YOUNGEST_FIRST"), ("requirePorts", False)):
        assert app[key] == value, key
    assert app["tasksRunning"] == 0 and app["tasksStaged"] == 0
    assert app["deployments"] == [{"id": r.headers["Marathon-Deployment-Id"]}]
    v1 = app["version"]

    # a second app never gets the same service ports
    r = api(cluster, "POST", "/v2/apps", {"id": "other", "cmd": "true", "instances": 0})
    assert r.json()["portDefinitions"][0]["port"] == 10002

    # the python client's double slash, a scale keeps the config version
    r = api(cluster, "PUT", "/v2/apps//grp/shape?force=True", {"instances": 0})
    assert r.status_code == 200 and set(r.json()) == {"deploymentId", "version"}
    app = get_app(cluster, "/grp/shape")
    assert app["versionInfo"]["lastConfigChangeAt"] == v1
    assert [p["port"] for p in app["portDefinitions"]] == [10000, 10001]

    settled(cluster)
    r = api(cluster, "PUT", "/v2/apps/grp/shape", {"cmd": "echo changed"})
    assert r.status_code == 200
    app = get_app(cluster, "/grp/shape")
    assert app["cmd"] == "echo changed" and app["versionInfo"]["lastConfigChangeAt"] != v1
    versions = api(cluster, "GET", "/v2/apps/grp/shape/versions").json()["versions"]
    assert len(versions) == 3 and v1 in versions
    old = api(cluster, "GET", "/v2/apps/grp/shape/versions/" + v1).json()
    assert old["cmd"] == "true"

    # rollback to the first version
    settled(cluster)
    r = api(cluster, "PUT", "/v2/apps/grp/shape", {"version": v1})
    assert r.status_code == 200, r.text
    assert get_app(cluster, "/grp/shape")["cmd"] == "true"

    # PUT creates a missing app
    r = api(cluster, "PUT", "/v2/apps/created", {"cmd": "true", "instances": 0})
    assert r.status_code == 201
    assert get_app(cluster, "/created")["instances"] == 0

    r = api(cluster, "GET", "/v2/apps?id=shape")
    assert [a["id"] for a in r.json()["apps"]] == ["/grp/shape"]
    r = api(cluster, "GET", "/v2/apps?label=a==b")
    assert [a["id"] for a in r.json()["apps"]] == ["/grp/shape"]

    assert api(cluster, "GET", "/ping", headers={"Accept": "text/plain"}).text == "pong"
    info = api(cluster, "GET", "/v2/info").json()
    assert info["name"] == "marathon"
    for key in ("marathon_config", "zookeeper_config", "http_config"):
        assert isinstance(info[key], dict)
    assert info["http_config"]["http_port"] == cluster.relay.port
    assert "leader" in api(cluster, "GET", "/v2/leader").json()


# --- keeping N instances ------------------------------------------------------------

def test_three_instances_run_and_a_killed_task_is_replaced(cluster):
    start(cluster)
    r = api(cluster, "POST", "/v2/apps", sleeper("/web", instances=3,
                                                 env={"GREETING": "hi"},
                                                 portDefinitions=[{"port": 0, "name": "http"}]))
    assert r.status_code == 201, r.text
    app = wait_running(cluster, "/web", 3)
    service_port = app["portDefinitions"][0]["port"]

    for t in app["tasks"]:
        assert t["appId"] == "/web"
        assert t["id"].startswith("web.instance-") and t["id"].endswith("._app.1")
        assert len(t["ports"]) == 1 and 31000 <= t["ports"][0] <= 31199
        assert t["servicePorts"] == [service_port]
        assert t["startedAt"] and t["stagedAt"] and t["slaveId"]
        assert t["ipAddresses"][0]["protocol"] == "IPv4"

    # the task environment
    procs = app_processes(cluster, "/web")
    some_task = next(iter(procs))
    with open(f"/proc/{procs[some_task]}/environ", "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    task = next(t for t in app["tasks"] if t["id"] == some_task)
    assert env[b"PORT0"] == str(task["ports"][0]).encode()
    assert env[b"PORT"] == env[b"PORT0"] and env[b"PORT_HTTP"] == env[b"PORT0"]
    assert env[b"GREETING"] == b"hi"
    assert env[b"MARATHON_APP_VERSION"] == app["version"].encode()

    # the deployment ends once the tasks run
    wait_for(lambda: api(cluster, "GET", "/v2/deployments").json() == [],
             what="deployments to finish")

    old_ids = set(procs)
    victim_task, victim_pid = next(iter(procs.items()))
    os.kill(victim_pid, signal.SIGKILL)

    def replaced():
        app = running(cluster, "/web", 3)
        if app is None:
            return None
        ids = {t["id"] for t in app["tasks"]}
        return app if victim_task not in ids and len(ids & old_ids) == 2 else None
    app = wait_for(replaced, timeout=30, what="the killed task to be replaced")
    new = [t for t in app["tasks"] if t["id"] not in old_ids][0]
    # the instance lives on as the next incarnation
    assert new["id"] == victim_task.rsplit(".", 1)[0] + ".2"
    failure = app.get("lastTaskFailure")
    assert failure and failure["taskId"] == victim_task and failure["state"] == "TASK_FAILED"


def test_scale_up_down_and_delete_leaves_no_process(cluster):
    start(cluster)
    assert api(cluster, "POST", "/v2/apps", sleeper("/scaled", instances=2)).status_code == 201
    wait_running(cluster, "/scaled", 2)
    settled(cluster)

    r = api(cluster, "PUT", "/v2/apps/scaled", {"instances": 5})
    assert r.status_code == 200
    assert r.headers["Marathon-Deployment-Id"] == r.json()["deploymentId"]
    app = wait_running(cluster, "/scaled", 5)
    oldest = min(app["tasks"], key=lambda t: t["stagedAt"])
    settled(cluster)        # the app is locked until its deployment ends

    r = api(cluster, "PUT", "/v2/apps/scaled", {"instances": 1})
    assert r.status_code == 200
    app = wait_running(cluster, "/scaled", 1)
    # youngest first: the one left is the oldest
    assert app["tasks"][0]["id"] == oldest["id"]

    r = api(cluster, "DELETE", "/v2/apps/scaled")
    assert r.status_code == 200 and "deploymentId" in r.json()
    assert api(cluster, "GET", "/v2/apps/scaled").status_code == 404
    wait_for(lambda: app_pids(cluster, "/scaled") == [], what="no task process left")
    wait_for(lambda: api(cluster, "GET", "/v2/tasks").json()["tasks"] == [],
             what="no task listed")
    wait_for(lambda: api(cluster, "GET", "/v2/deployments").json() == [],
             what="the delete deployment to finish")


def test_config_change_replaces_tasks(cluster):
    start(cluster, agents=1)
    api(cluster, "POST", "/v2/apps", sleeper("/cfg", instances=2))
    app = wait_running(cluster, "/cfg", 2)
    old_ids = {t["id"] for t in app["tasks"]}
    settled(cluster)
    r = api(cluster, "PUT", "/v2/apps/cfg", {"cmd": "sleep 601"})
    assert r.status_code == 200

    def replaced():
        app = running(cluster, "/cfg", 2)
        return app if app and not ({t["id"] for t in app["tasks"]} & old_ids) else None
    app = wait_for(replaced, timeout=30, what="all tasks to run the new config")
    assert all(t["version"] == app["version"] for t in app["tasks"])


def test_failing_app_backs_off_and_reports_failure(cluster):
    start(cluster, agents=1)
    api(cluster, "POST", "/v2/apps", {"id": "crash", "cmd": "exit 3", "cpus": 0.1, "mem": 16,
                                      "backoffSeconds": 0.2, "backoffFactor": 2,
                                      "maxLaunchDelaySeconds": 30})

    def failed():
        app = get_app(cluster, "/crash")
        f = app.get("lastTaskFailure")
        return f if f and f["state"] in ("TASK_FAILED", "TASK_FINISHED") else None
    f = wait_for(failed, timeout=30, what="a task failure to be reported")
    assert f["appId"] == "/crash"
    queue = wait_for(lambda: api(cluster, "GET", "/v2/queue").json()["queue"], timeout=30,
                     what="the crashing app in the launch queue")
    assert queue[0]["app"]["id"] == "/crash" and queue[0]["count"] == 1
    assert set(queue[0]["delay"]) == {"timeLeftSeconds", "overdue"}
    assert "role" not in queue[0]
    r = api(cluster, "DELETE", "/v2/queue/crash/delay")
    assert r.status_code == 204


def test_killed_agent_tasks_move_to_the_other_agent(cluster):
    start(cluster)
    api(cluster, "POST", "/v2/apps", sleeper("/mover", instances=4))
    app = wait_running(cluster, "/mover", 4)
    ids = agent_ids(cluster)
    used = {t["slaveId"] for t in app["tasks"]}
    victim = next(a for a in cluster.agents if ids[a.name] in used)
    survivor = next(a for a in cluster.agents if a is not victim)
    victim.kill(signal.SIGKILL)

    def moved():
        app = get_app(cluster, "/mover")
        tasks = app["tasks"]
        if app["tasksRunning"] != 4 or len(tasks) != 4:
            return None
        return app if all(t["slaveId"] == ids[survivor.name] for t in tasks) else None
    wait_for(moved, timeout=40, what="all tasks running on the surviving agent")


def test_master_restart_keeps_tasks_without_duplicates(cluster):
    start(cluster)
    api(cluster, "POST", "/v2/apps", sleeper("/steady", instances=3))
    app = wait_running(cluster, "/steady", 3)
    ids = {t["id"] for t in app["tasks"]}
    pids = app_processes(cluster, "/steady")

    cluster.master.restart()
    for a in cluster.agents:
        cluster.wait_agent_registered(a, timeout=30)

    def framework_back():
        for fw in cluster.master_state().get("frameworks", []):
            if fw.get("name") == "marathon" and fw.get("active", True) and \
                    len(fw.get("tasks", [])) == 3:
                return fw
        return None
    wait_for(framework_back, timeout=30, what="relay to re-subscribe with its tasks")
    assert cluster.relay.log().count("subscribed as framework") >= 2

    # watch for a while: the same three tasks, the same processes, nothing extra
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        app = get_app(cluster, "/steady")
        assert {t["id"] for t in app["tasks"]} == ids
        assert app_processes(cluster, "/steady") == pids
        time.sleep(0.2)
    assert app["tasksRunning"] == 3


def test_relay_restart_adopts_tasks(cluster):
    start(cluster)
    api(cluster, "POST", "/v2/apps", sleeper("/kept", instances=2))
    app = wait_running(cluster, "/kept", 2)
    ids = {t["id"] for t in app["tasks"]}
    pids = app_processes(cluster, "/kept")
    version = app["version"]

    cluster.relay.restart()
    app = get_app(cluster, "/kept")
    assert app["version"] == version
    assert {t["id"] for t in app["tasks"]} == ids
    wait_for(lambda: cluster.relay.log().count("subscribed as framework") >= 2,
             what="relay to subscribe again")
    fw_ids = [line for line in cluster.relay.log().splitlines() if "subscribed as framework" in line]
    assert fw_ids[0].split("'")[1] == fw_ids[-1].split("'")[1], "same framework id"

    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        app = get_app(cluster, "/kept")
        assert {t["id"] for t in app["tasks"]} == ids
        assert app_processes(cluster, "/kept") == pids
        time.sleep(0.2)
    assert app["tasksRunning"] == 2

    # still in charge: scaling works after the restart
    api(cluster, "PUT", "/v2/apps/kept", {"instances": 3})
    wait_running(cluster, "/kept", 3)


def test_relay_crash_keeps_what_updates_said(cluster):
    """A killed relay comes back with each task's state, start and address from
    its own store: with the master down, nothing could tell it again."""
    start(cluster)
    api(cluster, "POST", "/v2/apps", sleeper("/told", instances=3))
    wait_running(cluster, "/told", 3)
    # a kill rewrites the whole record: one task gone through it, two only through updates
    before = {t["id"]: t for t in get_app(cluster, "/told")["tasks"]}
    killed = sorted(before)[0]
    r = api(cluster, "POST", "/v2/tasks/delete?scale=false", {"ids": [killed]})
    assert r.status_code == 200, r.text
    wait_for(lambda: killed not in {t["id"] for t in get_app(cluster, "/told")["tasks"]} and
             get_app(cluster, "/told")["tasksRunning"] == 3, what="the killed task replaced")
    before = {t["id"]: t for t in get_app(cluster, "/told")["tasks"]}

    cluster.master.stop()
    cluster.relay.kill(signal.SIGKILL)
    cluster.relay.wait()
    cluster.relay.start()
    cluster.relay.wait_healthy()
    app = get_app(cluster, "/told")
    after = {t["id"]: t for t in app["tasks"]}
    assert set(after) == set(before)
    for tid, t in after.items():
        assert t["state"] == "TASK_RUNNING", t
        assert t["startedAt"] == before[tid]["startedAt"], (t, before[tid])
        assert t["host"] == before[tid]["host"]
        assert t["slaveId"] == before[tid]["slaveId"]
    assert app["tasksRunning"] == 3

    # and it is still in charge once the master is back
    cluster.master.start()
    cluster.master.wait_healthy()
    settled(cluster)
    r = api(cluster, "PUT", "/v2/apps/told", {"instances": 4})
    assert r.status_code == 200, r.text
    wait_running(cluster, "/told", 4)


def test_constraints_place_tasks(cluster):
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_agent("--attributes=rack:a", resources=AGENT1)
    cluster.start_agent("--attributes=rack:b", resources=AGENT2)
    cluster.start_relay()
    ids = agent_ids(cluster)

    api(cluster, "POST", "/v2/apps", sleeper("/pinned", instances=3,
                                             constraints=[["rack", "CLUSTER", "b"]]))
    app = wait_running(cluster, "/pinned", 3)
    assert {t["slaveId"] for t in app["tasks"]} == {ids["agent2"]}

    api(cluster, "POST", "/v2/apps", sleeper("/spread", instances=3,
                                             constraints=[["rack", "UNIQUE"]]))
    app = wait_running(cluster, "/spread", 2)
    assert {t["slaveId"] for t in app["tasks"]} == {ids["agent1"], ids["agent2"]}
    queue = api(cluster, "GET", "/v2/queue").json()["queue"]
    assert [(q["app"]["id"], q["count"]) for q in queue] == [("/spread", 1)]

    r = api(cluster, "POST", "/v2/apps", {"id": "badc", "cmd": "true",
                                         "constraints": [["rack", "NEAR"]]})
    assert r.status_code == 422


def test_task_kill_endpoints(cluster):
    start(cluster, agents=1)
    api(cluster, "POST", "/v2/apps", sleeper("/k", instances=3))
    app = wait_running(cluster, "/k", 3)
    first, second, third = sorted(t["id"] for t in app["tasks"])

    # kill without scale: replaced
    r = api(cluster, "DELETE", f"/v2/apps/k/tasks/{first}")
    assert r.status_code == 200 and r.json()["task"]["id"] == first
    wait_for(lambda: (lambda a: a if first not in {t["id"] for t in a["tasks"]} else None)(
        running(cluster, "/k", 3)), timeout=30, what="the killed task to be replaced")

    # kill with scale: one fewer instance (the create's deployment must have ended: 409 else)
    settled(cluster)
    r = api(cluster, "DELETE", f"/v2/apps/k/tasks/{second}?scale=True")
    assert r.status_code == 200 and "deploymentId" in r.json()
    app = wait_running(cluster, "/k", 2)
    assert app["instances"] == 2 and second not in {t["id"] for t in app["tasks"]}

    # the scale is a deployment: a second change before it ends is 409, as Marathon
    settled(cluster)
    r = api(cluster, "POST", "/v2/tasks/delete?scale=true", {"ids": [third]})
    assert r.status_code == 200
    app = wait_running(cluster, "/k", 1)
    assert app["instances"] == 1

    r = api(cluster, "POST", "/v2/tasks/delete", {"ids": ["no-such-task"]})
    assert r.status_code == 400 and "Invalid task id" in r.json()["message"]
    r = api(cluster, "DELETE", "/v2/apps/k/tasks/no-such-task")
    assert r.status_code == 404 and r.json() == {"message": "Task 'no-such-task' does not exist"}

    # restart replaces the remaining task
    settled(cluster)
    old = {t["id"] for t in app["tasks"]}
    r = api(cluster, "POST", "/v2/apps/k/restart")
    assert r.status_code == 200
    wait_for(lambda: (lambda a: a if a and not ({t["id"] for t in a["tasks"]} & old) else None)(
        running(cluster, "/k", 1)), timeout=30, what="the restart to replace the task")

    staging = api(cluster, "GET", "/v2/tasks?status=staging").json()["tasks"]
    assert staging == []
    assert len(api(cluster, "GET", "/v2/tasks?status=running").json()["tasks"]) == 1


# --- task addresses, stalled launches, JSON numbers ---------------------------------------

def test_task_ip_is_its_agents_address(cluster):
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_agent(resources=AGENT1, ip="127.0.0.1")
    cluster.start_agent(resources=AGENT2, ip="127.0.0.2")
    cluster.start_relay()
    api(cluster, "POST", "/v2/apps", sleeper("/where", instances=2,
                                             constraints=[["hostname", "UNIQUE"]]))
    app = wait_running(cluster, "/where", 2)
    assert {t["host"] for t in app["tasks"]} == {"127.0.0.1", "127.0.0.2"}
    for t in app["tasks"]:
        assert t["ipAddresses"] == [{"ipAddress": t["host"], "protocol": "IPv4"}], t
    listed = api(cluster, "GET", "/v2/tasks").json()["tasks"]
    assert sorted(t["ipAddresses"][0]["ipAddress"] for t in listed) == ["127.0.0.1", "127.0.0.2"]
    # the task itself runs with its agent's address as HOST
    procs = app_processes(cluster, "/where")
    for t in app["tasks"]:
        with open(f"/proc/{procs[t['id']]}/environ", "rb") as f:
            assert b"HOST=" + t["host"].encode() in f.read().split(b"\0")


def relay_db(cluster):
    return sqlite3.connect(os.path.join(cluster.relay.work_dir, "relay.db"))


def test_unconfirmed_staging_task_is_given_up_and_replaced(cluster):
    """A task relay recorded as STAGING on an agent that never comes back.

    The master recovers agent2 from its registry after a restart but agent2
    never re-registers, so the master answers nothing to the explicit
    reconciliation of the task (the Mesos rule for a recovered agent).
    relay gives the task up after --task_launch_confirm_timeout as
    TASK_LOST and launches the next incarnation of the instance elsewhere.
    """
    cluster.start_master(*MASTER_FLAGS)
    keep = cluster.start_agent(resources=AGENT1, ip="127.0.0.1")
    gone = cluster.start_agent(resources=AGENT2, ip="127.0.0.2")
    cluster.start_relay()
    ids = agent_ids(cluster)
    api(cluster, "POST", "/v2/apps", sleeper("/stuck", instances=1,
                                             constraints=[["hostname", "CLUSTER", "127.0.0.1"]]))
    app = wait_running(cluster, "/stuck", 1)
    running_id = app["tasks"][0]["id"]

    cluster.relay.stop()
    gone.kill(signal.SIGKILL)
    gone.wait()
    cluster.master.restart()
    cluster.wait_agent_registered(keep, timeout=30)
    wait_for(lambda: ids["agent2"] in json.dumps(cluster.master_state()["recovered_slaves"]),
             what="agent2 to be recovered, not re-registered")

    # relay's database: one more instance, staging on agent2, unknown to the master
    stuck_instance = "stuck.instance-00000000-0000-4000-8000-00000000beef"
    stuck_id = stuck_instance + "._app.1"
    db = relay_db(cluster)
    (text,) = db.execute("SELECT value FROM kv WHERE ns='apps' AND key='/stuck'").fetchone()
    appdef = json.loads(text)
    appdef["instances"] = 2
    db.execute("UPDATE kv SET value=? WHERE ns='apps' AND key='/stuck'", (json.dumps(appdef),))
    (text,) = db.execute("SELECT value FROM kv WHERE ns='tasks'").fetchone()
    record = json.loads(text)
    record.update(id=stuck_id, instanceId=stuck_instance, agentId=ids["agent2"],
                  host="127.0.0.2", ip="127.0.0.2", state=6, stagedAt=time.time(),
                  startedAt=0, ports=[31100])
    db.execute("INSERT INTO kv (ns, key, value) VALUES ('tasks', ?, ?)",
               (stuck_id, json.dumps(record)))
    db.commit()
    db.close()

    cluster.relay.args.append("--task_launch_confirm_timeout=3000")
    cluster.relay.restart()
    app = get_app(cluster, "/stuck")
    assert {t["id"]: t["state"] for t in app["tasks"]} == {
        running_id: "TASK_RUNNING", stuck_id: "TASK_STAGING"}

    def replaced():
        app = running(cluster, "/stuck", 2)
        return app if app and stuck_id not in {t["id"] for t in app["tasks"]} else None
    app = wait_for(replaced, timeout=30, what="the stuck task to be replaced")
    assert {t["id"] for t in app["tasks"]} == {running_id, stuck_instance + "._app.2"}
    failure = app["lastTaskFailure"]
    assert failure["taskId"] == stuck_id and failure["state"] == "TASK_LOST"
    assert "not confirmed" in failure["message"]
    # the master never answered for it: relay gave it up on its own
    assert "Reconciliation" not in failure["message"]
    info = api(cluster, "GET", "/v2/info").json()
    assert info["marathon_config"]["task_launch_confirm_timeout"] == 3000


def test_task_not_running_within_launch_timeout_is_replaced(cluster):
    cluster.start_master("--agent_ping_timeout=60secs", "--allocation_interval=100ms")
    agent = cluster.start_agent(resources=AGENT1)
    cluster.start_relay("--task_launch_timeout=3000")
    assert api(cluster, "GET", "/v2/info").json()["marathon_config"][
        "task_launch_timeout"] == 3000
    # a frozen agent: the master launches onto it, the task never starts
    os.kill(agent.pid, signal.SIGSTOP)
    try:
        api(cluster, "POST", "/v2/apps", sleeper("/slow", instances=1))
        first = wait_for(lambda: get_app(cluster, "/slow")["tasks"], timeout=20,
                         what="a task to be launched")[0]
        assert first["state"] == "TASK_STAGING"

        def given_up():
            tasks = {t["id"]: t["state"] for t in get_app(cluster, "/slow")["tasks"]}
            return tasks if tasks.get(first["id"]) == "TASK_KILLING" and len(tasks) == 2 \
                else None
        wait_for(given_up, timeout=20, what="the stalled task to be killed and replaced")
        assert "did not reach TASK_RUNNING" in cluster.relay.log()
    finally:
        os.kill(agent.pid, signal.SIGCONT)
    app = wait_running(cluster, "/slow", 1)
    assert app["tasks"][0]["id"] != first["id"]


def test_json_numbers_keep_their_short_form(cluster):
    start(cluster, agents=0)
    r = api(cluster, "POST", "/v2/apps", {"id": "num", "cmd": "true", "cpus": 0.1,
                                         "mem": 32.5, "disk": 0.3})
    assert r.status_code == 201
    version = r.json()["version"]
    texts = [r.text]
    for path in ("/v2/apps", "/v2/apps/num", "/v2/apps/num/versions/" + version,
                 "/v2/groups", "/v2/queue"):
        reply = api(cluster, "GET", path)
        assert reply.status_code == 200, path
        texts.append(reply.text)
    for text in texts:
        assert re.search(r'"cpus":0\.1[,}]', text), text
        assert re.search(r'"disk":0\.3[,}]', text), text
        assert re.search(r'"backoffFactor":1\.15[,}]', text), text
        assert "000000" not in text and "999999" not in text, text
