"""End-to-end tests of butte-agent's Docker containerizer against a real dockerd.

A private dockerd (dockerd.py) with a busybox image; a real master and
agent; tasks launched through the Mesos v1 scheduler API, so only the agent
side of Docker support is under test: bridge networking with a published
port, the environment, logs in the sandbox, exit codes, kill, a container
killed behind the agent's back, a missing image, a missing engine, and an
agent SIGKILLed and restarted (adoption, exits while down, orphan removal,
other agents' containers left alone).
"""
import glob
import os
import socket
import time

import pytest
import requests

from dockerd import dockerd  # noqa: F401
from harness import free_port, wait_for
from mesos_client import SchedulerClient, command_task

FAST = ("--heartbeat_interval=1secs", "--allocation_interval=100ms")
IMAGE = "localhost/busybox"

_session = requests.Session()
_session.trust_env = False


@pytest.fixture(autouse=True)
def clean_engine(request):
    """Every test starts and ends with an engine without containers."""
    yield
    if "dockerd" in request.fixturenames:
        request.getfixturevalue("dockerd").remove_all_containers()


def start(cluster, dockerd, ports=None, socket_path=None, containerizers="docker,mesos",
          extra=()):
    """Master plus one agent using dockerd; returns (agent Proc, port range list)."""
    cluster.start_master(*FAST)
    ports = ports or [free_port()]
    ranges = ",".join(f"{p}-{p}" for p in ports)
    agent = cluster.start_agent(
        f"--containerizers={containerizers}",
        f"--docker_socket={socket_path or dockerd.socket}",
        "--executor_shutdown_grace_period=2secs", *extra,
        resources=f"cpus:4;mem:2048;disk:1024;ports(*):[{ranges}]")
    return agent, ports


def docker_task(offer, task_id, cmd=None, network="BRIDGE", mappings=(), env=None, cpus=0.1,
                mem=16, image=IMAGE, shell=True, arguments=None, parameters=None,
                volumes=None, force_pull=False):
    t = command_task(offer, task_id, cmd="", cpus=cpus, mem=mem)
    command = {"shell": shell}
    if cmd is not None:
        command["value"] = cmd
    if arguments is not None:
        command["arguments"] = arguments
    if env:
        command["environment"] = {"variables": [{"name": k, "value": v}
                                                for k, v in env.items()]}
    t["command"] = command
    docker = {"image": image, "network": network, "force_pull_image": force_pull,
              "port_mappings": [{"host_port": h, "container_port": c, "protocol": "tcp"}
                                for h, c in mappings]}
    if parameters:
        docker["parameters"] = [{"key": k, "value": v} for k, v in parameters]
    t["container"] = {"type": "DOCKER", "docker": docker}
    if volumes:
        t["container"]["volumes"] = volumes
    if mappings:
        t["resources"].append({"name": "ports", "type": "RANGES", "ranges": {
            "range": [{"begin": h, "end": h} for h, _ in mappings]}})
    return t


class Follower:
    """Acknowledges a task's updates as they come (one is outstanding at a time)."""

    def __init__(self, client):
        self.client = client
        self.acked = {}

    def until(self, task_id, *states, timeout=40):
        def step():
            ups = self.client.updates(task_id)
            n = self.acked.get(task_id, 0)
            for st in ups[n:]:
                n += 1
                self.acked[task_id] = n
                if "uuid" in st:
                    self.client.acknowledge(st)
                if st["state"] in states:
                    return st
            return None
        return wait_for(step, timeout=timeout, what=f"{task_id} to reach {states}")


@pytest.fixture
def sched(cluster):
    clients = []

    def make():
        c = SchedulerClient(cluster.master_url)
        c.subscribe(name="docker-test", failover_timeout=3600)
        clients.append(c)
        return c, Follower(c)
    yield make
    for c in clients:
        c.close()


def containers_of(dockerd, task_id):
    return dockerd.containers(label=f"butte.task_id={task_id}")


def sandbox_file(agent, task_id, name):
    paths = glob.glob(f"{agent.work_dir}/slaves/*/frameworks/*/executors/{task_id}"
                      f"/runs/latest/{name}")
    if not paths:
        return ""
    with open(paths[0], errors="replace") as f:
        return f.read()


def ip_of(status):
    nets = status.get("container_status", {}).get("network_infos", [])
    return [a["ip_address"] for n in nets for a in n.get("ip_addresses", [])]


def get(url):
    r = _session.get(url, timeout=2)
    return r.text if r.status_code == 200 else None


# -- launching ----------------------------------------------------------------------

def test_bridge_port_mapping_env_logs_and_kill(cluster, dockerd, sched):
    agent, (port,) = start(cluster, dockerd)
    client, follow = sched()
    offer = client.wait_offers()[0]
    cmd = ('echo "user=$MYSQL_USER db=$MYSQL_DB sandbox=$MESOS_SANDBOX port=$PORT0" '
           '> /www/index.html; echo to-stdout; echo to-stderr >&2; '
           'exec httpd -f -p 3306 -h /www')
    env = {"MYSQL_ROOT_PASSWORD": "password", "MYSQL_USER": "test", "MYSQL_PASSWORD": "test",
           "MYSQL_DB": "BucketList"}
    client.launch(offer, [docker_task(offer, "mysql", cmd, mappings=[(port, 3306)], env=env)])
    follow.until("mysql", "TASK_STARTING")
    running = follow.until("mysql", "TASK_RUNNING")
    [c] = containers_of(dockerd, "mysql")
    info = dockerd.inspect(c["Id"])
    ip = info["NetworkSettings"]["IPAddress"]
    assert ip and ip_of(running) == [ip]
    assert info["Name"].startswith("/mesos-")
    assert info["Config"]["Labels"]["butte.work_dir"] == os.path.realpath(agent.work_dir)
    assert info["Config"]["Labels"]["butte.framework_id"] == client.framework_id
    assert info["HostConfig"]["CpuShares"] == 102
    assert info["HostConfig"]["Memory"] == 32 * 1024 * 1024
    assert info["HostConfig"]["NetworkMode"] == "bridge"
    assert info["HostConfig"]["PortBindings"] == {
        "3306/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    body = wait_for(lambda: get(f"http://127.0.0.1:{port}/"), what="httpd via the host port")
    assert body.strip() == f"user=test db=BucketList sandbox=/mnt/mesos/sandbox port={port}"
    wait_for(lambda: "to-stdout" in sandbox_file(agent, "mysql", "stdout"), what="stdout log")
    wait_for(lambda: "to-stderr" in sandbox_file(agent, "mysql", "stderr"), what="stderr log")
    assert "to-stderr" not in sandbox_file(agent, "mysql", "stdout")
    client.kill("mysql")
    killed = follow.until("mysql", "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED")
    assert killed["state"] == "TASK_KILLED"
    wait_for(lambda: containers_of(dockerd, "mysql") == [], what="the container removed")


def test_exit_codes(cluster, dockerd, sched):
    start(cluster, dockerd)
    client, follow = sched()
    offer = client.wait_offers()[0]
    client.launch(offer, [
        docker_task(offer, "ok", None, shell=False, arguments=["sh", "-c", "exit 0"]),
        docker_task(offer, "bad", "echo failing; exit 3", network="HOST"),
        docker_task(offer, "none", "exit 0", network="NONE"),
    ])
    ok = follow.until("ok", "TASK_FINISHED", "TASK_FAILED")
    assert ok["state"] == "TASK_FINISHED", ok
    bad = follow.until("bad", "TASK_FINISHED", "TASK_FAILED")
    assert bad["state"] == "TASK_FAILED" and "status 3" in bad["message"], bad
    none = follow.until("none", "TASK_FINISHED", "TASK_FAILED")
    assert none["state"] == "TASK_FINISHED", none
    for tid in ("ok", "bad", "none"):
        wait_for(lambda: containers_of(dockerd, tid) == [], what=f"{tid} removed")


def test_container_killed_behind_the_agents_back(cluster, dockerd, sched):
    start(cluster, dockerd)
    client, follow = sched()
    offer = client.wait_offers()[0]
    client.launch(offer, [docker_task(offer, "victim", "exec sleep 1000")])
    follow.until("victim", "TASK_RUNNING")
    [c] = containers_of(dockerd, "victim")
    status, _ = dockerd.api("POST", f"/containers/{c['Id']}/kill")
    assert status == 204
    st = follow.until("victim", "TASK_FAILED", "TASK_FINISHED", "TASK_KILLED")
    assert st["state"] == "TASK_FAILED" and "137" in st["message"], st


def test_missing_image_fails_with_dockers_message(cluster, dockerd, sched):
    start(cluster, dockerd)
    client, follow = sched()
    offer = client.wait_offers()[0]
    _, direct = dockerd.api("POST", "/images/create",
                            params={"fromImage": "localhost/no-such-image", "tag": "latest"})
    client.launch(offer, [docker_task(offer, "ghost", "true",
                                      image="localhost/no-such-image")])
    st = follow.until("ghost", "TASK_FAILED", "TASK_RUNNING", "TASK_FINISHED")
    assert st["state"] == "TASK_FAILED", st
    assert st["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "localhost/no-such-image" in st["message"]
    docker_msg = direct["message"] if isinstance(direct, dict) else None
    if docker_msg:
        assert docker_msg in st["message"]
    assert containers_of(dockerd, "ghost") == []


def test_unsupported_parameter_and_supported_ones(cluster, dockerd, sched):
    agent, _ = start(cluster, dockerd)
    client, follow = sched()
    offer = client.wait_offers()[0]
    client.launch(offer, [
        docker_task(offer, "odd", "true", parameters=[("no-such-option", "1")]),
        docker_task(offer, "params", "echo $EXTRA $(hostname) > out; echo kept > /data/f; "
                    "sleep 1000",
                    parameters=[("env", "EXTRA=from-param"), ("hostname", "box"),
                                ("label", "team=db")],
                    volumes=[{"container_path": "/data", "host_path": "vol", "mode": "RW"}]),
    ])
    st = follow.until("odd", "TASK_FAILED", "TASK_RUNNING")
    assert st["state"] == "TASK_FAILED" and "no-such-option" in st["message"]
    follow.until("params", "TASK_RUNNING")
    wait_for(lambda: sandbox_file(agent, "params", "out").strip() == "from-param box",
             what="the parameters applied")
    wait_for(lambda: sandbox_file(agent, "params", "vol/f").strip() == "kept",
             what="the relative volume in the sandbox")
    [c] = containers_of(dockerd, "params")
    assert c["Labels"]["team"] == "db"


def test_user_network(cluster, dockerd, sched):
    n = int(dockerd.subnet.split(".")[2])
    status, body = dockerd.api("POST", "/networks/create", body={
        "Name": "bt-user", "IPAM": {"Config": [{"Subnet": f"10.214.{n}.0/24"}]}})
    assert status == 201, body
    try:
        start(cluster, dockerd)
        client, follow = sched()
        offer = client.wait_offers()[0]
        t = docker_task(offer, "onuser", "exec sleep 1000", network="USER")
        t["container"]["network_infos"] = [{"name": "bt-user"}]
        client.launch(offer, [t])
        st = follow.until("onuser", "TASK_RUNNING", "TASK_FAILED")
        assert st["state"] == "TASK_RUNNING", st
        assert ip_of(st)[0].startswith(f"10.214.{n}."), st
        [c] = containers_of(dockerd, "onuser")
        assert dockerd.inspect(c["Id"])["HostConfig"]["NetworkMode"] == "bt-user"
    finally:
        dockerd.remove_all_containers()
        dockerd.api("DELETE", "/networks/bt-user")


def test_no_engine_fails_docker_tasks_fast_and_runs_process_tasks(cluster, tmp_path, sched):
    missing = str(tmp_path / "no-docker.sock")
    start(cluster, None, socket_path=missing)
    client, follow = sched()
    offer = client.wait_offers()[0]
    began = time.monotonic()
    client.launch(offer, [docker_task(offer, "d1", "true"),
                          command_task(offer, "p1", cmd="sleep 1000")])
    st = follow.until("d1", "TASK_FAILED", "TASK_RUNNING", timeout=10)
    assert time.monotonic() - began < 5
    assert st["state"] == "TASK_FAILED" and "unreachable" in st["message"]
    assert missing in st["message"]
    follow.until("p1", "TASK_RUNNING")


def test_docker_not_in_containerizers(cluster, dockerd, sched):
    start(cluster, dockerd, containerizers="mesos")
    client, follow = sched()
    offer = client.wait_offers()[0]
    client.launch(offer, [docker_task(offer, "d2", "true")])
    st = follow.until("d2", "TASK_FAILED", "TASK_RUNNING")
    assert st["state"] == "TASK_FAILED" and "not enabled" in st["message"]


def test_engine_appearing_later_is_used(cluster, dockerd, tmp_path, sched):
    """The agent keeps checking the engine: a socket that appears later works."""
    link = str(tmp_path / "late.sock")
    agent, _ = start(cluster, dockerd, socket_path=link)
    client, follow = sched()
    offer = client.wait_offers()[0]
    client.launch(offer, [docker_task(offer, "early", "true")])
    assert follow.until("early", "TASK_FAILED", "TASK_RUNNING")["state"] == "TASK_FAILED"
    os.symlink(dockerd.socket, link)
    wait_for(lambda: "using API" in agent.log(), timeout=30, what="the engine found")
    mark = client.mark()
    client.call("REVIVE")
    offer = client.wait_offers(start=mark, timeout=30)[0]
    client.launch(offer, [docker_task(offer, "late", "exit 0")])
    assert follow.until("late", "TASK_FINISHED", "TASK_FAILED")["state"] == "TASK_FINISHED"


# -- recovery ---------------------------------------------------------------------------

def test_agent_restart_adopts_reports_and_sweeps(cluster, dockerd, sched):
    agent, _ = start(cluster, dockerd)
    work_dir = os.path.realpath(agent.work_dir)
    client, follow = sched()
    offer = client.wait_offers()[0]
    client.launch(offer, [
        docker_task(offer, "keeper", "echo before; exec sleep 1000"),
        docker_task(offer, "quitter",
                    "while [ ! -f /mnt/mesos/sandbox/stop ]; do sleep 0.1; done; exit 7"),
    ])
    follow.until("keeper", "TASK_RUNNING")
    follow.until("quitter", "TASK_RUNNING")
    wait_for(lambda: "before" in sandbox_file(agent, "keeper", "stdout"), what="keeper log")
    [keeper] = containers_of(dockerd, "keeper")
    [quitter] = containers_of(dockerd, "quitter")

    agent.kill()
    agent.wait()
    # while the agent is down: one container exits, an orphan of this agent and a
    # container of another agent appear
    stop_file = glob.glob(f"{work_dir}/slaves/*/frameworks/*/executors/quitter/runs/latest")[0]
    open(os.path.join(stop_file, "stop"), "w").close()
    wait_for(lambda: not dockerd.inspect(quitter["Id"])["State"]["Running"],
             what="quitter to exit")
    orphan = dockerd.run(IMAGE, ["sleep", "1000"], name="mesos-orphan-of-this-agent",
                         labels={"butte.work_dir": work_dir, "butte.container_id": "gone"})
    foreign = dockerd.run(IMAGE, ["sleep", "1000"], name="mesos-of-another-agent",
                          labels={"butte.work_dir": "/var/lib/another-agent",
                                  "butte.container_id": "theirs"})

    agent.restart()
    st = follow.until("quitter", "TASK_FAILED", "TASK_FINISHED", "TASK_KILLED")
    assert st["state"] == "TASK_FAILED" and "status 7" in st["message"], st
    wait_for(lambda: dockerd.inspect(orphan) is None, what="the orphan removed")
    assert dockerd.inspect(foreign)["State"]["Running"]
    assert "re-attached" in agent.log()
    # no second container, the first still runs and is still reported running
    assert [c["Id"] for c in containers_of(dockerd, "keeper")] == [keeper["Id"]]
    assert dockerd.inspect(keeper["Id"])["State"]["Running"]
    mark = client.mark()
    client.reconcile([("keeper", None)])
    client.wait_update("keeper", "TASK_RUNNING", start=mark)
    follow.acked["keeper"] = len(client.updates("keeper"))
    client.kill("keeper")
    st = follow.until("keeper", "TASK_KILLED", "TASK_FAILED", "TASK_FINISHED")
    assert st["state"] == "TASK_KILLED"
    wait_for(lambda: containers_of(dockerd, "keeper") == [], what="keeper removed")
    assert dockerd.inspect(foreign)["State"]["Running"]


def test_engine_socket_path_must_answer_http(cluster, tmp_path, sched):
    """A socket that accepts but is no Docker engine: Docker tasks fail clearly."""
    path = str(tmp_path / "fake.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(5)
    try:
        agent, _ = start(cluster, None, socket_path=path)
        srv.close()
        client, follow = sched()
        offer = client.wait_offers()[0]
        client.launch(offer, [docker_task(offer, "d3", "true")])
        st = follow.until("d3", "TASK_FAILED", "TASK_RUNNING", timeout=30)
        assert st["state"] == "TASK_FAILED" and path in st["message"]
    finally:
        srv.close()
