"""End-to-end tests of butte-master beyond the scheduler calls: the agent
channel's bad input, agent loss (TASK_LOST / TASK_UNREACHABLE), a master
restart with running tasks, and the operator endpoints' shapes.
"""
import json
import os
import signal
import subprocess

import pytest

from harness import BUILD, http, task_pids, wait_for
from mesos_client import PROTOBUF, SchedulerClient, command_task, pb_field, raw_post

FAST = ("--heartbeat_interval=1secs", "--allocation_interval=100ms")


def healthy(cluster):
    assert http("GET", cluster.master_url + "/health").status_code == 200
    return True


def metrics(cluster):
    return http("GET", cluster.master_url + "/metrics/snapshot").json()


def run_task(client, task_id):
    for state in ("TASK_STARTING", "TASK_RUNNING"):
        st = client.wait_update(task_id, state)
        client.acknowledge(st)
    return st


def framework(cluster, fid):
    for f in cluster.master_state()["frameworks"]:
        if f["id"] == fid:
            return f
    return None


# -- the agent channel -------------------------------------------------------------

def agent_call(agent_id, type_):
    return pb_field(1, pb_field(1, agent_id)) + pb_field(2, type_)


@pytest.mark.parametrize("body,headers,code,words", [
    (b"", {}, 400, "Content-Type"),
    (b"x", {"Content-Type": "text/plain"}, 415, "application/x-protobuf"),
    (b"\xff\xfe garbage", {"Content-Type": PROTOBUF}, 400, "AgentCall"),
    (pb_field(2, 2), {"Content-Type": PROTOBUF}, 400, "agent_id"),
    (agent_call("nope", 3), {"Content-Type": PROTOBUF, "Mesos-Stream-Id": "x"}, 400, "unknown"),
    (pb_field(2, 1), {"Content-Type": PROTOBUF}, 400, "subscribe"),
])
def test_agent_api_bad_input(cluster, body, headers, code, words):
    cluster.start_master()
    r = raw_post(cluster.master_url + "/api/v1/agent", body, headers)
    assert r.status_code == code, r.text
    assert words in r.json()["message"]
    assert healthy(cluster)


def test_agent_call_needs_its_stream(cluster):
    cluster.start_master()
    cluster.start_agent()
    agent_id = cluster.master_state()["slaves"][0]["id"]
    url = cluster.master_url + "/api/v1/agent"
    r = raw_post(url, agent_call(agent_id, 3), {"Content-Type": PROTOBUF})
    assert r.status_code == 400 and "Mesos-Stream-Id" in r.json()["message"]
    r = raw_post(url, agent_call(agent_id, 3), {"Content-Type": PROTOBUF,
                                                "Mesos-Stream-Id": "stale"})
    assert r.status_code == 400 and "does not match" in r.json()["message"]
    assert healthy(cluster)


# -- agent loss ----------------------------------------------------------------------

def test_agent_lost_tasks_lost_and_unreachable(cluster):
    cluster.start_master(*FAST, "--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=2")
    agent = cluster.start_agent()
    plain = SchedulerClient(cluster.master_url)
    aware = SchedulerClient(cluster.master_url)
    try:
        plain.subscribe(name="plain")
        offer = plain.wait_offers()[0]
        plain.launch(offer, [command_task(offer, "p1")], refuse_seconds=3600)
        run_task(plain, "p1")
        aware.subscribe(name="aware", capabilities=["PARTITION_AWARE"])
        offer = aware.wait_offers()[0]
        aware.launch(offer, [command_task(offer, "a1")], refuse_seconds=0)
        run_task(aware, "a1")
        outstanding = aware.wait_offers(
            pred=lambda e: e["offers"]["offers"][0]["id"] != offer["id"])
        agent.kill(signal.SIGKILL)
        # the stream closes: its offers are rescinded at once
        aware.wait_event("RESCIND", lambda e: e["rescind"]["offer_id"] == outstanding[0]["id"])
        lost = plain.wait_update("p1", "TASK_LOST", timeout=15)
        assert lost["reason"] == "REASON_AGENT_REMOVED" and lost["source"] == "SOURCE_MASTER"
        assert "uuid" not in lost
        unreachable = aware.wait_update("a1", "TASK_UNREACHABLE", timeout=15)
        assert unreachable["reason"] == "REASON_AGENT_REMOVED" and "uuid" not in unreachable
        m = metrics(cluster)
        assert m["master/slaves_unreachable"] == 1 and m["master/slaves_active"] == 0
        assert m["master/tasks_lost"] == 1 and m["master/tasks_unreachable"] == 1
        fw = framework(cluster, aware.framework_id)
        assert [t["id"] for t in fw["unreachable_tasks"]] == ["a1"]
        # explicit reconciliation of an unknown task on the unreachable agent
        mark = aware.mark()
        aware.reconcile([("ghost", lost["agent_id"]["value"])])
        aware.wait_update("ghost", "TASK_UNREACHABLE", start=mark)
        mark = plain.mark()
        plain.reconcile([("ghost", lost["agent_id"]["value"])])
        plain.wait_update("ghost", "TASK_LOST", start=mark)
    finally:
        plain.close()
        aware.close()
    assert healthy(cluster)


def test_agent_disconnect_rescinds_offers(cluster):
    cluster.start_master(*FAST)
    agent = cluster.start_agent()
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe()
        offer = c.wait_offers()[0]
        agent.kill(signal.SIGKILL)
        c.wait_event("RESCIND", lambda e: e["rescind"]["offer_id"] == offer["id"])
        wait_for(lambda: metrics(cluster)["master/slaves_disconnected"] == 1,
                 what="the agent to be disconnected")
        assert metrics(cluster)["master/outstanding_offers"] == 0
    finally:
        c.close()


def test_unreachable_agent_comes_back(cluster):
    cluster.start_master(*FAST, "--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=2")
    agent = cluster.start_agent()
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe(name="aware", capabilities=["PARTITION_AWARE"])
        offer = c.wait_offers()[0]
        agent_id = offer["agent_id"]["value"]
        c.launch(offer, [command_task(offer, "back")])
        run_task(c, "back")
        agent.kill(signal.SIGSTOP)      # partitioned: alive but silent
        c.wait_update("back", "TASK_UNREACHABLE", timeout=15)
        agent.kill(signal.SIGCONT)
        # it re-subscribes with its id and its task, which is active again
        wait_for(lambda: [s for s in cluster.master_state()["slaves"]
                          if s["id"] == agent_id and s["active"]], timeout=30,
                 what="the agent to be re-admitted")
        fw = framework(cluster, c.framework_id)
        assert [t["id"] for t in fw["tasks"]] == ["back"] and fw["unreachable_tasks"] == []
        assert metrics(cluster)["master/slaves_unreachable"] == 0
        mark = c.mark()
        c.reconcile([("back", agent_id)])
        c.wait_update("back", "TASK_RUNNING", start=mark)
    finally:
        agent.kill(signal.SIGCONT)
        c.close()


def test_failover_timeout_then_removal(cluster):
    cluster.start_master(*FAST)
    agent = cluster.start_agent()
    c = SchedulerClient(cluster.master_url)
    c.subscribe(name="short", failover_timeout=1)
    offer = c.wait_offers()[0]
    c.launch(offer, [command_task(offer, "doomed")])
    run_task(c, "doomed")
    c.close()

    def removed():
        st = cluster.master_state()
        done = [f for f in st["completed_frameworks"] if f["id"] == c.framework_id]
        return done and done[0]["completed_tasks"]
    tasks = wait_for(removed, what="the framework's removal after its failover timeout")
    assert [t["state"] for t in tasks] == ["TASK_KILLED"]
    wait_for(lambda: not task_pids(agent.work_dir), what="the task process to be killed")
    assert metrics(cluster)["master/cpus_used"] == 0


def test_offer_timeout_rescinds(cluster):
    cluster.start_master(*FAST, "--offer_timeout=500ms")
    cluster.start_agent()
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe()
        offer = c.wait_offers()[0]
        c.wait_event("RESCIND", lambda e: e["rescind"]["offer_id"] == offer["id"], timeout=10)
        # the resources are offered again later
        c.wait_offers(pred=lambda e: e["offers"]["offers"][0]["id"] != offer["id"])
    finally:
        c.close()


# -- master restart -------------------------------------------------------------------

def test_master_restart_keeps_tasks(cluster):
    master = cluster.start_master(*FAST)
    cluster.start_agent()
    c = SchedulerClient(cluster.master_url)
    c.subscribe(name="survivor", failover_timeout=3600)
    fid = c.framework_id
    offer = c.wait_offers()[0]
    agent_id = offer["agent_id"]["value"]
    c.launch(offer, [command_task(offer, "keep")])
    run_task(c, "keep")
    old_master_id = cluster.master_state()["id"]
    c.close()

    master.restart()
    assert cluster.master_state()["id"] != old_master_id

    def agent_back():
        st = cluster.master_state()
        return [s for s in st["slaves"] if s["id"] == agent_id and s["active"]]
    wait_for(agent_back, timeout=30, what="the agent to re-subscribe")

    c2 = SchedulerClient(cluster.master_url)
    try:
        c2.subscribe(name="survivor", framework_id=fid, failover_timeout=3600)
        assert c2.framework_id == fid
        fw = framework(cluster, fid)
        assert fw["connected"]
        tasks = [t for t in fw["tasks"] if t["id"] == "keep"]
        assert len(tasks) == 1 and tasks[0]["state"] == "TASK_RUNNING"
        assert tasks[0]["slave_id"] == agent_id
        mark = c2.mark()
        c2.reconcile([("keep", agent_id)])
        st = c2.wait_update("keep", "TASK_RUNNING", start=mark)
        assert st["reason"] == "REASON_RECONCILIATION"
        m = metrics(cluster)
        assert m["master/tasks_running"] == 1 and m["master/slaves_active"] == 1
        # the task's resources are in use, not offered again
        offers = c2.wait_offers()
        cpus = sum(r["scalar"]["value"] for o in offers for r in o["resources"]
                   if r["name"] == "cpus")
        assert cpus == pytest.approx(1.9)
    finally:
        c2.close()


def test_master_restart_agent_late(cluster):
    """Until an agent re-subscribes, reconciling its tasks gets no answer (row 2)."""
    master = cluster.start_master(*FAST)
    agent = cluster.start_agent()
    c = SchedulerClient(cluster.master_url)
    c.subscribe(name="patient", failover_timeout=3600)
    offer = c.wait_offers()[0]
    agent_id = offer["agent_id"]["value"]
    c.launch(offer, [command_task(offer, "late")])
    run_task(c, "late")
    c.close()
    agent.kill(signal.SIGSTOP)
    try:
        master.restart()
        st = cluster.master_state()
        assert [s["id"]["value"] for s in st["recovered_slaves"]] == [agent_id]
        assert st["slaves"] == []
        c2 = SchedulerClient(cluster.master_url)
        c2.subscribe(name="patient", framework_id=c.framework_id, failover_timeout=3600)
        mark = c2.mark()
        c2.reconcile([("late", agent_id), ("nowhere", None), ("marker", "unknown-agent")])
        c2.wait_update("marker", "TASK_LOST", start=mark)
        with c2.lock:
            replies = [e["update"]["status"]["task_id"]["value"] for e in c2.events[mark:]
                       if e["type"] == "UPDATE"]
        assert replies == ["marker"]
    finally:
        agent.kill(signal.SIGCONT)
    wait_for(lambda: [s for s in cluster.master_state()["slaves"]
                      if s["id"] == agent_id and s["active"]], timeout=30,
             what="the agent to re-subscribe")
    mark = c2.mark()
    c2.reconcile([("late", agent_id)])
    c2.wait_update("late", "TASK_RUNNING", start=mark)
    c2.close()


# -- operator endpoints -----------------------------------------------------------------

def test_state_and_metrics_shapes(cluster):
    cluster.start_master(*FAST, "--cluster=lab")
    cluster.start_agent(resources="cpus:2;mem:1024;disk:1024;ports(*):[31000-31099]")
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe(name="shapes")
        offer = c.wait_offers()[0]
        c.launch(offer, [command_task(offer, "s1")])
        run_task(c, "s1")
        st = cluster.master_state()
        for key in ("version", "build_date", "build_time", "build_user", "start_time",
                    "elected_time", "id", "pid", "hostname", "activated_slaves",
                    "deactivated_slaves", "unreachable_slaves", "leader", "leader_info",
                    "flags", "slaves", "recovered_slaves", "frameworks", "completed_frameworks",
                    "orphan_tasks", "unregistered_frameworks", "cluster"):
            assert key in st, key
        assert st["cluster"] == "lab" and st["activated_slaves"] == 1
        s = st["slaves"][0]
        assert s["resources"] == {"cpus": 2, "gpus": 0, "mem": 1024, "disk": 1024,
                                  "ports": "[31000-31099]"}
        assert s["used_resources"]["cpus"] == pytest.approx(0.1)
        assert s["attributes"]["arch"]
        for key in ("id", "hostname", "port", "pid", "registered_time", "offered_resources",
                    "reserved_resources", "unreserved_resources", "active", "version"):
            assert key in s, key
        fw = st["frameworks"][0]
        for key in ("id", "name", "active", "connected", "user", "failover_timeout",
                    "checkpoint", "registered_time", "tasks", "unreachable_tasks",
                    "completed_tasks", "offers", "executors", "used_resources",
                    "offered_resources", "capabilities", "roles"):
            assert key in fw, key
        t = fw["tasks"][0]
        assert t["state"] == "TASK_RUNNING" and t["slave_id"] == s["id"]
        assert t["framework_id"] == fw["id"] and t["resources"]["mem"] == 32
        assert [x["state"] for x in t["statuses"]] == ["TASK_STARTING", "TASK_RUNNING"]
        m = metrics(cluster)
        for name in ("master/elected", "master/uptime_secs", "master/slaves_active",
                     "master/slaves_connected", "master/slaves_disconnected",
                     "master/slaves_inactive", "master/slaves_unreachable",
                     "master/frameworks_active", "master/frameworks_connected",
                     "master/frameworks_disconnected", "master/frameworks_inactive",
                     "master/tasks_staging", "master/tasks_starting", "master/tasks_running",
                     "master/tasks_killing", "master/tasks_finished", "master/tasks_failed",
                     "master/tasks_killed", "master/tasks_lost", "master/tasks_error",
                     "master/tasks_unreachable", "master/outstanding_offers",
                     "allocator/mesos/allocation_runs", "allocator/mesos/allocation_run_ms"):
            assert name in m, name
        for res in ("cpus", "mem", "disk", "gpus"):
            for kind in ("total", "used", "percent"):
                assert f"master/{res}_{kind}" in m
        assert m["master/cpus_total"] == 2 and m["master/mem_used"] == 32
        assert m["master/elected"] == 1 and m["master/frameworks_active"] == 1
        assert m["allocator/mesos/allocation_runs"] > 0
        tasks = http("GET", cluster.master_url + "/master/tasks").json()["tasks"]
        assert [x["id"] for x in tasks] == ["s1"]
        assert http("GET", cluster.master_url + "/master/state.json").json()["id"] == st["id"]
        assert http("GET", cluster.master_url + "/master/slaves").json()["slaves"][0]["id"] == \
            s["id"]
        assert http("GET", cluster.master_url + "/master/frameworks").json()["frameworks"]
    finally:
        c.close()


def test_small_endpoints(cluster):
    master = cluster.start_master()
    v = http("GET", cluster.master_url + "/version").json()
    assert set(v) >= {"version", "build_date", "build_time", "build_user"}
    r = http("GET", cluster.master_url + "/master/redirect", allow_redirects=False)
    assert r.status_code == 307
    assert r.headers["Location"] == f"//127.0.0.1:{master.port}"
    assert http("GET", cluster.master_url + "/master/health").status_code == 200
    flags = http("GET", cluster.master_url + "/flags").json()["flags"]
    assert flags["port"] == str(master.port) and flags["allocation_interval"]
    assert http("GET", cluster.master_url + "/master/flags").json()["flags"] == flags
    r = http("GET", cluster.master_url + "/no/such/thing")
    assert r.status_code == 404 and json.loads(r.text)["message"]


def test_bad_flags_exit_nonzero(cluster, tmp_path):
    p = subprocess.run([os.path.join(BUILD, "butte-master"), "--port=notanumber",
                        f"--work_dir={tmp_path}/m"], capture_output=True, timeout=10)
    assert p.returncode != 0 and b"port" in p.stderr
    p = subprocess.run([os.path.join(BUILD, "butte-master"), "--help"], capture_output=True,
                       timeout=10)
    assert p.returncode == 0 and b"allocation_interval" in p.stdout + p.stderr
