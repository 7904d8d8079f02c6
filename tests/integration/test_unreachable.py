"""End-to-end tests of unreachableStrategy: a task whose agent is cut off.

A real master (agents unreachable after two missed one-second pings), two
real agents on 127.0.0.1 and 127.0.0.2 and relay. An agent is cut off with
SIGSTOP (alive, silent; its tasks keep running) and comes back with
SIGCONT. The app's first task is placed on the first agent, which is
alone until the task runs. Every wait polls a condition with a deadline.
"""
import signal
import time

from harness import ok, relay_api, wait_for

MASTER_FLAGS = ("--allocation_interval=100ms", "--agent_ping_timeout=1secs",
                "--max_agent_ping_timeouts=2")
AGENT1 = "cpus:4;mem:2048;disk:1024;ports(*):[33400-33449]"
AGENT2 = "cpus:4;mem:2048;disk:1024;ports(*):[33450-33499]"

api = relay_api


def tasks(cluster, app_id):
    return ok(api(cluster, "GET", "/v2/apps" + app_id))["app"]["tasks"]


def start_on_first_agent(cluster, app):
    cluster.start_master(*MASTER_FLAGS)
    first = cluster.start_agent(resources=AGENT1, ip="127.0.0.1")
    cluster.start_relay()
    ok(api(cluster, "POST", "/v2/apps", dict({"cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                                              "portDefinitions": [], "backoffSeconds": 0.1},
                                             **app)), 201)
    task = wait_for(lambda: [t for t in tasks(cluster, app["id"])
                             if t["state"] == "TASK_RUNNING"], timeout=30,
                    what="the first task to run")[0]
    cluster.start_agent(resources=AGENT2, ip="127.0.0.2")
    return first, task


def cut_off(cluster, agent, app_id, task_id):
    agent.kill(signal.SIGSTOP)
    wait_for(lambda: [t for t in tasks(cluster, app_id)
                      if t["id"] == task_id and t["state"] == "TASK_UNREACHABLE"],
             timeout=20, what="the task to be unreachable")
    return time.time()


def test_inactive_after_then_back(cluster):
    first, task = start_on_first_agent(cluster, {"id": "/ur", "unreachableStrategy": {
        "inactiveAfterSeconds": 3, "expungeAfterSeconds": 600}})
    try:
        seen = cut_off(cluster, first, "/ur", task["id"])
        app = ok(api(cluster, "GET", "/v2/apps/ur"))["app"]
        assert app["tasksRunning"] == 0 and len(app["tasks"]) == 1

        # replaced once inactive: after 3 s, on the other agent
        def replacement():
            return [t for t in tasks(cluster, "/ur")
                    if t["id"] != task["id"] and t["state"] == "TASK_RUNNING"]
        new = wait_for(replacement, timeout=30, what="a replacement")[0]
        assert new["host"] == "127.0.0.2"
        assert time.time() - seen >= 2, "replaced before inactiveAfterSeconds"
        listed = {t["id"]: t["state"] for t in tasks(cluster, "/ur")}
        assert listed[task["id"]] == "TASK_UNREACHABLE"     # not forgotten: expunge is 600 s
    finally:
        first.kill(signal.SIGCONT)

    # back: the old task runs again, the app is over capacity and scales down to 1
    def one_left():
        ts = tasks(cluster, "/ur")
        return len(ts) == 1 and ts[0]["state"] == "TASK_RUNNING"
    wait_for(one_left, timeout=40, what="the app back at one running task")
    app = ok(api(cluster, "GET", "/v2/apps/ur"))["app"]
    assert app["instances"] == 1 and app["tasksRunning"] == 1


def test_disabled_never_replaces(cluster):
    first, task = start_on_first_agent(cluster, {"id": "/keep",
                                                 "unreachableStrategy": "disabled"})
    try:
        cut_off(cluster, first, "/keep", task["id"])
        assert ok(api(cluster, "GET", "/v2/apps/keep"))["app"]["unreachableStrategy"] == \
            "disabled"
        # for 4 s nothing takes its place
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert [t["id"] for t in tasks(cluster, "/keep")] == [task["id"]]
            time.sleep(0.2)
    finally:
        first.kill(signal.SIGCONT)
    wait_for(lambda: [(t["id"], t["state"]) for t in tasks(cluster, "/keep")] ==
             [(task["id"], "TASK_RUNNING")], timeout=40, what="the same task to run again")


def test_default_replaces_at_once_and_forgets(cluster):
    first, task = start_on_first_agent(cluster, {"id": "/now"})
    app = ok(api(cluster, "GET", "/v2/apps/now"))["app"]
    assert app["unreachableStrategy"] == {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0}
    try:
        first.kill(signal.SIGSTOP)
        new = wait_for(lambda: [t for t in tasks(cluster, "/now")
                                if t["id"] != task["id"] and t["state"] == "TASK_RUNNING"],
                       timeout=30, what="a replacement")[0]
        assert new["host"] == "127.0.0.2"
        wait_for(lambda: [t["id"] for t in tasks(cluster, "/now")] == [new["id"]],
                 timeout=10, what="the unreachable task to be forgotten")
    finally:
        first.kill(signal.SIGCONT)
    # back, the forgotten task is killed: the replacement stays alone
    wait_for(lambda: not [t for t in ok(api(cluster, "GET", "/v2/tasks"))["tasks"]
                          if t["id"] == task["id"]], timeout=10, what="no trace of it")
    wait_for(lambda: not [s for s in cluster.master_state()["frameworks"][0]["tasks"]
                          if s["id"] == task["id"] and s["state"] == "TASK_RUNNING"],
             timeout=40, what="the old task to be killed on its agent")
    assert [t["id"] for t in tasks(cluster, "/now")] == [new["id"]]
