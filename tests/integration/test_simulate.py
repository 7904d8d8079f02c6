"""End-to-end tests of butte-agent --simulate=N: many agents in one process
that speak the real agent channel and report tasks without starting them.

A framework of the tests' own (the Mesos v1 scheduler API) launches on
simulated agents, sees the updates each agent sends, kills, and finds its
tasks again after the master restarts: the simulated agents subscribe
anew and report what they run, as real agents do.
"""
import subprocess

import pytest

from harness import http, wait_for
from mesos_client import SchedulerClient, command_task

FAST = ("--heartbeat_interval=1secs", "--allocation_interval=100ms")


def start_sim(cluster, n, *flags):
    """n simulated agents in one butte-agent process (they serve no HTTP);
    the cluster stops it with the rest."""
    return cluster._proc(
        "sim", "butte-agent",
        [f"--simulate={n}", f"--master=127.0.0.1:{cluster.master.port}",
         "--resources=cpus:4;mem:4096;disk:1024;ports(*):[31000-31099]",
         "--registration_backoff_factor=100ms"] + list(flags), None, None)


def sim_agents(cluster):
    return [s for s in cluster.master_state()["slaves"]
            if s["hostname"].startswith("sim-") and s["active"]]


def framework_tasks(cluster, fid):
    for f in cluster.master_state()["frameworks"]:
        if f["id"] == fid:
            return {t["id"]: t for t in f["tasks"]}
    return {}


@pytest.fixture
def sim_cluster(cluster):
    def start(n, *flags):
        cluster.start_master(*FAST)
        sim = start_sim(cluster, n, *flags)
        wait_for(lambda: len(sim_agents(cluster)) == n, timeout=30,
                 what=f"{n} simulated agents to subscribe")
        return sim
    return start


def launch_one_per_agent(client, n, prefix):
    """One task on each of n offers; returns {task_id: agent_id}."""
    placed = {}
    start = 0
    while len(placed) < n:
        offers = client.wait_offers(start=start)
        start = client.mark()
        for offer in offers:
            agent_id = offer["agent_id"]["value"]
            if agent_id in placed.values() or len(placed) == n:
                client.decline([offer["id"]], refuse_seconds=0)
                continue
            task_id = f"{prefix}-{len(placed)}"
            client.launch(offer, [command_task(offer, task_id, cmd="sleep 1000")])
            placed[task_id] = agent_id
    return placed


def test_simulated_tasks_run_without_starting(sim_cluster, cluster):
    sim = sim_cluster(3)
    assert {s["hostname"] for s in sim_agents(cluster)} == {"sim-0", "sim-1", "sim-2"}
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe(name="sim-test")
        placed = launch_one_per_agent(c, 3, "run")
        for task_id, agent_id in placed.items():
            st = c.wait_update(task_id, "TASK_RUNNING")
            assert st["agent_id"]["value"] == agent_id
            assert st["source"] == "SOURCE_EXECUTOR" and "uuid" in st
            # as the simulated agents do: RUNNING is the first update
            assert [u["state"] for u in c.updates(task_id)] == ["TASK_RUNNING"]
            c.acknowledge(st)
        wait_for(lambda: all(t["state"] == "TASK_RUNNING"
                             for t in framework_tasks(cluster, c.framework_id).values()),
                 timeout=20, what="the master to see the tasks RUNNING")
        # a kill reaches the simulated agent, which answers TASK_KILLED
        task_id, agent_id = next(iter(placed.items()))
        c.kill(task_id, agent_id)
        c.acknowledge(c.wait_update(task_id, "TASK_KILLED"))
        # no process was started for any of them
        out = subprocess.run(["pgrep", "-f", "sleep 1000", "-P", str(sim.pid)],
                             capture_output=True, text=True)
        assert out.stdout.strip() == ""
    finally:
        c.close()


def test_simulate_starting_reports_starting_first(sim_cluster, cluster):
    sim_cluster(1, "--simulate_starting")
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe(name="sim-starting")
        launch_one_per_agent(c, 1, "start")
        st = c.wait_update("start-0", "TASK_STARTING")
        # the next update waits for this one's acknowledgement, as on a real agent
        c.acknowledge(st)
        c.acknowledge(c.wait_update("start-0", "TASK_RUNNING"))
        assert [u["state"] for u in c.updates("start-0")] == ["TASK_STARTING", "TASK_RUNNING"]
    finally:
        c.close()


def test_master_restart_simulated_agents_report_their_tasks(sim_cluster, cluster):
    """After a master restart each simulated agent subscribes again with the
    tasks it runs (their TaskInfo unpacked from the copy it kept)."""
    sim_cluster(2)
    c = SchedulerClient(cluster.master_url)
    c.subscribe(name="sim-failover", failover_timeout=3600)
    fid = c.framework_id
    placed = launch_one_per_agent(c, 2, "keep")
    for task_id in placed:
        c.acknowledge(c.wait_update(task_id, "TASK_RUNNING"))
    c.close()

    cluster.master.restart()
    wait_for(lambda: len(sim_agents(cluster)) == 2, timeout=30,
             what="the simulated agents to subscribe again")
    c2 = SchedulerClient(cluster.master_url)
    try:
        c2.subscribe(name="sim-failover", framework_id=fid, failover_timeout=3600)
        tasks = wait_for(lambda: (lambda t: t if len(t) == 2 else None)(
            framework_tasks(cluster, fid)), timeout=20, what="the tasks to be reported again")
        for task_id, agent_id in placed.items():
            t = tasks[task_id]
            assert t["state"] == "TASK_RUNNING" and t["slave_id"] == agent_id
            assert t["name"] == task_id
            assert t["resources"]["cpus"] == pytest.approx(0.1)
            assert t["resources"]["mem"] == 32
        assert http("GET", cluster.master_url + "/health").status_code == 200
    finally:
        c2.close()


def test_relay_deploys_onto_many_simulated_agents(sim_cluster, cluster):
    """relay spreads an app over a hundred simulated agents: one OFFERS event
    of a hundred offers (tens of kilobytes), which relay matches a slice at a
    time, keeping the event it unpacked for that."""
    sim_cluster(100)
    relay = cluster.start_relay()
    app = {"id": "/wide", "cmd": "sleep 1000", "instances": 300, "cpus": 0.01, "mem": 1,
           "portDefinitions": []}
    r = http("POST", relay.url + "/v2/apps", json=app)
    assert r.status_code == 201, r.text

    def running():
        a = http("GET", relay.url + "/v2/apps/wide").json()["app"]
        return a if a["tasksRunning"] == 300 else None
    wait_for(running, timeout=60, what="300 instances RUNNING on simulated agents")
    tasks = http("GET", relay.url + "/v2/apps/wide/tasks").json()["tasks"]
    hosts = {t["host"] for t in tasks}
    assert len(tasks) == 300 and all(t["state"] == "TASK_RUNNING" for t in tasks)
    # the instances are spread over the agents of the event, not piled on a few
    assert len(hosts) >= 64, sorted(hosts)
    assert all(h.startswith("sim-") for h in hosts)


def outstanding_offers(cluster):
    return http("GET", cluster.master_url + "/metrics/snapshot").json()["master/outstanding_offers"]


def test_relay_holds_unused_offers_for_the_next_app(sim_cluster, cluster):
    """Offers relay did not use are held for a moment, not declined: an app
    POSTed meanwhile is placed from them without a REVIVE (and a new round
    of offers for every agent); then they are declined, and another
    framework gets those agents."""
    sim_cluster(4)
    # held 5 s, so that the test's own pace cannot outlast the hold
    relay = cluster.start_relay("--offer_hold_duration=5000")

    def post(app_id, n):
        r = http("POST", relay.url + "/v2/apps",
                 json={"id": app_id, "cmd": "sleep 1000", "instances": n, "cpus": 0.1,
                       "mem": 16, "portDefinitions": []})
        assert r.status_code == 201, r.text

    def running(app_id, n):
        a = http("GET", relay.url + "/v2/apps" + app_id).json()["app"]
        return a if a["tasksRunning"] == n else None

    post("/first", 1)
    # one offer taken, the three others held by relay (outstanding at the master)
    wait_for(lambda: outstanding_offers(cluster) >= 3, timeout=10,
             what="relay to hold the offers it did not use")
    revives = relay.log().count("reviving offers")
    post("/second", 2)
    wait_for(lambda: running("/first", 1) and running("/second", 2), timeout=20,
             what="both apps RUNNING")
    assert relay.log().count("reviving offers") == revives, "the second app needed a REVIVE"
    second = http("GET", relay.url + "/v2/apps/second/tasks").json()["tasks"]
    assert len({t["host"] for t in second}) == 2      # its share of each held offer

    # the rest is declined once held: the master has nothing outstanding
    wait_for(lambda: outstanding_offers(cluster) == 0, timeout=15,
             what="relay to decline what it held")
    c = SchedulerClient(cluster.master_url)
    try:
        c.subscribe(name="other")
        offers = c.wait_offers(timeout=10)
        assert offers and all(o["hostname"].startswith("sim-") for o in offers)
    finally:
        c.close()


def test_relay_offer_hold_zero_declines_at_once(sim_cluster, cluster):
    """--offer_hold_duration=0: unused offers are declined at once, as Marathon
    does, and the next app needs a REVIVE."""
    sim_cluster(4)
    relay = cluster.start_relay("--offer_hold_duration=0")
    revives = []
    for app_id in ("/first", "/second"):
        revives.append(relay.log().count("reviving offers"))
        r = http("POST", relay.url + "/v2/apps",
                 json={"id": app_id, "cmd": "sleep 1000", "instances": 1, "cpus": 0.1,
                       "mem": 16, "portDefinitions": []})
        assert r.status_code == 201, r.text
        wait_for(lambda: http("GET", relay.url + "/v2/apps" + app_id).json()["app"]
                 ["tasksRunning"] == 1, timeout=20, what=f"{app_id} RUNNING")
        wait_for(lambda: outstanding_offers(cluster) == 0, timeout=10,
                 what="relay to decline what it did not use")
    # nothing was held for the second app: it took a REVIVE
    assert relay.log().count("reviving offers") > revives[1]
