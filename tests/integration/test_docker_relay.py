"""End-to-end tests of butte-relay's Marathon `container` block, ports and queue reasons.

Checked as a Marathon user would: app definitions with a container block
(old docker.network/docker.portMappings and new networks/portMappings
forms) are validated with Marathon's messages and answered in the
canonical form the python marathon client parses; service ports come from
--local_port_min/max; host ports come from the offer (explicit ones exactly
as asked); the task environment carries PORT0.., PORTS, PORT_<NAME>; and
/v2/queue says why an app waits (processedOffersSummary, lastUnusedOffers).

The Docker tests run the issue's MySQL-style definition (busybox image)
against a private dockerd (dockerd.py) through a real master, a Docker
enabled agent and relay: a published host port reaches the container,
explicit host ports, scaling, a container killed behind butte's back,
DELETE, a missing image and a missing engine.
"""
import socket

import pytest

from dockerd import dockerd  # noqa: F401
from harness import free_port, http, task_env, wait_for

FAST = ("--allocation_interval=100ms", "--agent_ping_timeout=1secs",
        "--max_agent_ping_timeouts=3")
TWO_RANGES = "cpus:4;mem:2048;disk:1024;ports(*):[7000-8000, 31000-32000]"
HIGH_RANGE = "cpus:4;mem:2048;disk:1024;ports(*):[31000-32000]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
IMAGE = "localhost/busybox"
# listens on 3306 and answers every connection with its environment
SERVE_ENV = "exec nc -ll -p 3306 -e env"


def api(cluster, method, path, body=None, **kw):
    return http(method, cluster.relay_url + path, json=body, headers=JSON, **kw)


def mysql_app(app_id="mysql", host_port=0, image=IMAGE, cmd=SERVE_ENV, **extra):
    """The issue's definition, with only the image replaced and a command added."""
    app = {"id": app_id, "cpus": 0.5, "mem": 64.0, "instances": 1, "cmd": cmd,
           "container": {"type": "DOCKER",
                         "docker": {"image": image, "network": "BRIDGE",
                                    "portMappings": [{"containerPort": 3306,
                                                      "hostPort": host_port,
                                                      "servicePort": 0,
                                                      "protocol": "tcp"}]}},
           "env": {"MYSQL_ROOT_PASSWORD": "password", "MYSQL_USER": "test",
                   "MYSQL_PASSWORD": "test", "MYSQL_DB": "BucketList"},
           "backoffSeconds": 0.5}
    app.update(extra)
    return app


def start(cluster, resources=TWO_RANGES, agent_flags=(), relay_flags=(), agent=True):
    cluster.start_master(*FAST)
    if agent:
        cluster.start_agent(*agent_flags, resources=resources)
    cluster.start_relay(*relay_flags)


def start_docker(cluster, engine, resources=TWO_RANGES, socket_path=None):
    start(cluster, resources, agent_flags=(
        "--containerizers=docker,mesos", f"--docker_socket={socket_path or engine.socket}",
        "--executor_shutdown_grace_period=2secs"))


def create(cluster, app):
    r = api(cluster, "POST", "/v2/apps", app)
    assert r.status_code == 201, r.text
    return r.json()


def get_app(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.strip("/") + "?embed=app.lastTaskFailure")
    assert r.status_code == 200, r.text
    return r.json()["app"]


def tasks(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.strip("/") + "/tasks")
    assert r.status_code == 200, r.text
    return r.json()["tasks"]


def running_tasks(cluster, app_id, n):
    ts = [t for t in tasks(cluster, app_id) if t["state"] == "TASK_RUNNING"]
    return ts if len(ts) == n else None


def wait_running(cluster, app_id, n=1, timeout=60):
    return wait_for(lambda: running_tasks(cluster, app_id, n), timeout=timeout,
                    what=f"{app_id} to run {n} tasks")


def queue_item(cluster, app_id, embed=False):
    path = "/v2/queue" + ("?embed=lastUnusedOffers" if embed else "")
    for item in api(cluster, "GET", path).json()["queue"]:
        if item["app"]["id"] == app_id:
            return item
    return None


def declined(item, reason, summary="rejectSummaryLastOffers"):
    steps = item["processedOffersSummary"][summary]
    return next(s for s in steps if s["reason"] == reason)["declined"]


def wait_reason(cluster, app_id, reason):
    """Wait until /v2/queue names `reason` for the app; returns the queue item."""
    return wait_for(lambda: (lambda i: i if i and declined(i, reason) > 0 else None)(
        queue_item(cluster, app_id, embed=True)), timeout=30,
        what=f"/v2/queue to say {reason} for {app_id}")


def read_all(port, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(data)


def container_env(port):
    """The environment the container's `env` served on a connection, as a dict."""
    text = read_all(port)
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def still_serving(cluster):
    assert api(cluster, "GET", "/ping").status_code == 200


# --- validation ------------------------------------------------------------------------

def details(r):
    return {d["path"]: d["errors"] for d in r.json()["details"]}


def bridge(mappings, **docker):
    d = {"image": IMAGE, "network": "BRIDGE", "portMappings": mappings}
    d.update(docker)
    return {"type": "DOCKER", "docker": d}


def test_container_validation_like_marathon(cluster):
    start(cluster, agent=False)
    base = {"id": "bad", "cmd": "true", "cpus": 0.1, "mem": 16}

    # port mappings with host networking are refused, in both forms
    r = api(cluster, "POST", "/v2/apps", dict(base, container={
        "type": "DOCKER", "docker": {"image": IMAGE, "network": "HOST",
                                     "portMappings": [{"containerPort": 80}]}}))
    assert r.status_code == 422 and r.json()["message"] == "Object is not valid"
    assert details(r)["/"] == ["portMappings are not allowed with host-networking"]
    r = api(cluster, "POST", "/v2/apps", dict(base, networks=[{"mode": "host"}], container={
        "type": "DOCKER", "docker": {"image": IMAGE},
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}))
    assert r.status_code == 422
    assert details(r)["/"] == ["portMappings are not allowed with host-networking"]

    # bad protocol, ports out of range, duplicate names
    r = api(cluster, "POST", "/v2/apps", dict(base, container=bridge([
        {"containerPort": 80, "hostPort": 70000, "protocol": "sctp", "name": "web"},
        {"containerPort": -1, "servicePort": 65536, "name": "web"}])))
    assert r.status_code == 422, r.text
    d = details(r)
    assert d["/container/portMappings(0)/protocol"] == [
        "protocol must be one of tcp, udp or udp,tcp"]
    assert d["/container/portMappings(0)/hostPort"] == ["got 70000, expected between 0 and 65535"]
    assert d["/container/portMappings(1)/containerPort"] == ["got -1, expected between 0 and 65535"]
    assert d["/container/portMappings(1)/servicePort"] == [
        "got 65536, expected between 0 and 65535"]
    assert d["/container/portMappings"] == ["Port names must be unique."]

    # old and new forms must not be mixed
    r = api(cluster, "POST", "/v2/apps", dict(base, networks=[{"mode": "container/bridge"}],
                                              container=bridge([])))
    assert r.status_code == 422
    assert "must not specify both container.docker.network and networks" in details(r)["/"]
    r = api(cluster, "POST", "/v2/apps", dict(base, container=dict(
        bridge([{"containerPort": 80}]), portMappings=[{"containerPort": 81}])))
    assert r.status_code == 422
    assert details(r)["/"] == ["cannot specify both portMappings and docker.portMappings"]

    # networks, image, engine type, volumes
    for body, path, msg in (
            ({"networks": [{"mode": "container"}], "container": {"docker": {"image": IMAGE}}},
             "/networks", "Network name must be specified when container network is selected."),
            ({"networks": [{"mode": "bridge"}]}, "/networks(0)",
             "mode must be one of container, container/bridge or host"),
            ({"networks": [{"mode": "container/bridge", "name": "x"}]}, "/networks",
             "Bridge networks may not have names"),
            ({"networks": [{"mode": "host"}, {"mode": "container/bridge"}]}, "/networks",
             "May specify a single host network, single bridge network, or else 1-to-n "
             "container networks"),
            ({"container": {"type": "DOCKER", "docker": {"image": ""}}},
             "/container/docker/image", "must not be empty"),
            ({"container": {"type": "RKT", "docker": {"image": IMAGE}}},
             "/container/type", "must be one of DOCKER or MESOS"),
            ({"container": {"type": "DOCKER", "docker": {"image": IMAGE, "network": "OVERLAY"}}},
             "/container/docker/network", "must be one of BRIDGE, HOST, NONE or USER"),
            ({"container": {"type": "DOCKER", "docker": {"image": IMAGE},
                            "volumes": [{"containerPath": "/data", "hostPath": "/tmp",
                                         "mode": "RX"}]}},
             "/container/volumes(0)/mode", "must be one of RO or RW"),
            ({"container": {"type": "DOCKER", "docker": {"image": IMAGE},
                            "volumes": [{"containerPath": "/data", "mode": "RO"}]}},
             "/container/volumes(0)/hostPath", "must not be empty"),
            ({"gpus": 1, "container": {"type": "DOCKER", "docker": {"image": IMAGE}}},
             "/", "GPU resources only work with the Mesos containerizer")):
        r = api(cluster, "POST", "/v2/apps", dict(base, **body))
        assert r.status_code == 422, (body, r.text)
        assert msg in details(r).get(path, []), (body, r.text)

    # members of the wrong JSON type are 400 "Invalid JSON"
    r = api(cluster, "POST", "/v2/apps", dict(base, container=bridge([{"containerPort": "80"}])))
    assert r.status_code == 400 and r.json()["message"] == "Invalid JSON"
    assert details(r) == {"/container/docker/portMappings(0)/containerPort":
                          ["error.expected.jsnumber"]}
    r = api(cluster, "POST", "/v2/apps", dict(base, container=bridge(
        [], parameters=[{"key": "label"}], privileged="yes")))
    assert r.status_code == 400
    assert details(r) == {"/container/docker/privileged": ["error.expected.jsboolean"],
                          "/container/docker/parameters(0)/value": ["error.path.missing"]}

    # nothing was created and relay keeps serving
    assert api(cluster, "GET", "/v2/apps").json()["apps"] == []
    still_serving(cluster)


# --- canonical form, the python client, service ports -------------------------------------

def test_canonical_form_with_python_client(cluster):
    pytest.importorskip("marathon")
    from marathon import MarathonApp, MarathonClient
    from marathon.models.container import (MarathonContainer, MarathonContainerPortMapping,
                                           MarathonContainerVolume, MarathonDockerContainer)
    start(cluster, agent=False)
    c = MarathonClient(cluster.relay_url)

    app = MarathonApp(cmd=SERVE_ENV, cpus=0.5, mem=64, instances=1, env={"A": "b"},
                      container=MarathonContainer(
                          type="DOCKER",
                          docker=MarathonDockerContainer(
                              image=IMAGE, network="BRIDGE", force_pull_image=True,
                              parameters=[{"key": "label", "value": "tier=db"}],
                              port_mappings=[MarathonContainerPortMapping(
                                  container_port=3306, host_port=0, service_port=0,
                                  protocol="tcp", name="mysql")]),
                          volumes=[MarathonContainerVolume(container_path="/data",
                                                           host_path="/tmp", mode="RO")]))
    created = c.create_app("db", app)
    assert created and created.id == "/db"

    got = c.get_app("db")
    pm = got.container.port_mappings
    assert len(pm) == 1 and pm[0].container_port == 3306 and pm[0].host_port == 0
    assert pm[0].service_port == 10000 and pm[0].name == "mysql" and pm[0].protocol == "tcp"
    assert got.container.docker.image == IMAGE and got.container.docker.force_pull_image
    assert got.container.docker.parameters == [{"key": "label", "value": "tier=db"}]
    assert got.container.volumes[0].container_path == "/data"
    assert got.container.volumes[0].mode == "RO"
    assert got.networks == [{"mode": "container/bridge"}]
    assert got.port_definitions == [] and got.require_ports is False

    # the raw JSON: canonical, no deprecated members
    raw = get_app(cluster, "/db")
    assert "network" not in raw["container"]["docker"]
    assert "portMappings" not in raw["container"]["docker"]
    assert raw["container"]["portMappings"] == [
        {"containerPort": 3306, "hostPort": 0, "servicePort": 10000, "protocol": "tcp",
         "labels": {}, "name": "mysql"}]

    # the new form is accepted as well: networks + container.portMappings, two ports
    create(cluster, {"id": "web", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                     "networks": [{"mode": "container/bridge"}],
                     "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                                   "portMappings": [{"containerPort": 80},
                                                    {"containerPort": 53, "hostPort": 7005,
                                                     "protocol": "udp,tcp",
                                                     "servicePort": 15000}]}})
    web = c.get_app("web")
    assert [(m.container_port, m.host_port, m.service_port) for m in
            web.container.port_mappings] == [(80, 0, 10001), (53, 7005, 15000)]

    # a bridge container without portMappings gets Marathon's one default mapping
    create(cluster, {"id": "dflt", "cmd": "true", "container": {
        "type": "DOCKER", "docker": {"image": IMAGE, "network": "BRIDGE"}}})
    assert get_app(cluster, "/dflt")["container"]["portMappings"] == [
        {"containerPort": 0, "hostPort": 0, "servicePort": 10002, "protocol": "tcp",
         "labels": {}}]
    # USER networking: a named container network, no host port unless asked for
    create(cluster, {"id": "user", "cmd": "true", "ipAddress": {"networkName": "dev"},
                     "container": {"type": "DOCKER", "docker": {
                         "image": IMAGE, "network": "USER",
                         "portMappings": [{"containerPort": 8080}]}}})
    user = get_app(cluster, "/user")
    assert user["networks"] == [{"mode": "container", "name": "dev"}]
    assert "hostPort" not in user["container"]["portMappings"][0]
    assert "ipAddress" not in user
    # NONE: Docker's network named "none"
    create(cluster, {"id": "none", "cmd": "true", "container": {
        "type": "DOCKER", "docker": {"image": IMAGE, "network": "NONE"}}})
    assert get_app(cluster, "/none")["networks"] == [{"mode": "container", "name": "none"}]
    # MESOS with a docker image (UCR) is accepted and stored
    create(cluster, {"id": "ucr", "cmd": "true", "container": {
        "type": "MESOS", "docker": {"image": IMAGE}}})
    assert get_app(cluster, "/ucr")["container"]["type"] == "MESOS"

    # the client's round trip (update_app sends the app it read) keeps everything
    got.instances = 0
    c.update_app("db", got, force=True)     # no agent: the create deployment never ends
    again = c.get_app("db")
    assert again.instances == 0
    assert again.container.port_mappings[0].service_port == 10000
    assert again.networks == [{"mode": "container/bridge"}]
    assert len(c.list_apps()) == 6
    still_serving(cluster)


def test_service_ports_like_marathon(cluster):
    start(cluster, agent=False, relay_flags=("--local_port_min=12000", "--local_port_max=12003"))

    def sp(app_id):
        return [m["servicePort"] for m in get_app(cluster, app_id)["container"]["portMappings"]]

    # servicePort 0 gets the lowest free port; an explicit one is kept
    create(cluster, {"id": "a", "cmd": "true", "container": bridge(
        [{"containerPort": 1}, {"containerPort": 2, "servicePort": 12001}])})
    assert sp("/a") == [12000, 12001]
    create(cluster, {"id": "b", "cmd": "true", "container": bridge([{"containerPort": 1}])})
    assert sp("/b") == [12002]
    # unique across apps: another app's explicit service port is refused
    r = api(cluster, "POST", "/v2/apps", {"id": "c", "cmd": "true", "container": bridge(
        [{"containerPort": 1, "servicePort": 12001}])})
    assert r.status_code == 422
    assert r.json()["message"] == ("Requested service port 12001 conflicts with a service "
                                   "port in app /a")
    # an update keeps the app's own ports
    r = api(cluster, "PUT", "/v2/apps/b?force=true", {"cmd": "sleep 1"})
    assert r.status_code == 200, r.text
    assert sp("/b") == [12002]
    # the range runs out
    create(cluster, {"id": "d", "cmd": "true", "container": bridge([{"containerPort": 1}])})
    assert sp("/d") == [12003]
    r = api(cluster, "POST", "/v2/apps", {"id": "e", "cmd": "true",
                                          "container": bridge([{"containerPort": 1}])})
    assert r.status_code == 422
    assert r.json()["message"] == "All ports in the range [12000-12003) are already in use"
    still_serving(cluster)


# --- host ports and the environment (process apps) ----------------------------------------

def process_env(cluster, task_id):
    """The environment of the task's process (cwd under the test dir)."""
    found = task_env(cluster.dir, task_id)
    return found[1] if found else None


def test_host_ports_and_port_env(cluster):
    pytest.importorskip("marathon")
    from marathon import MarathonClient
    start(cluster)
    c = MarathonClient(cluster.relay_url)

    # dynamic host ports from the offer, service ports from 10000
    create(cluster, {"id": "dyn", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                     "portDefinitions": [{"port": 0, "name": "http"}, {"port": 0}]})
    t = wait_running(cluster, "/dyn")[0]
    assert len(t["ports"]) == 2 and all(7000 <= p <= 8000 or 31000 <= p <= 32000
                                        for p in t["ports"])
    assert t["servicePorts"] == [10000, 10001]
    env = wait_for(lambda: process_env(cluster, t["id"]), what="the task's environment")
    p0, p1 = (str(p) for p in t["ports"])
    assert env["PORT0"] == p0 and env["PORT1"] == p1 and env["PORT"] == p0
    assert env["PORTS"] == f"{p0},{p1}"
    assert env["PORT_HTTP"] == p0
    assert env["PORT_10000"] == p0 and env["PORT_10001"] == p1
    assert env["HOST"] and env["MESOS_TASK_ID"] == t["id"]
    assert env["MARATHON_APP_ID"] == "/dyn"

    # requirePorts: the definitions' ports are the host ports, each from its own range
    create(cluster, {"id": "fixed", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                     "requirePorts": True,
                     "portDefinitions": [{"port": 7005, "name": "admin"}, {"port": 31555}]})
    t = wait_running(cluster, "/fixed")[0]
    assert t["ports"] == [7005, 31555] and t["servicePorts"] == [7005, 31555]
    env = wait_for(lambda: process_env(cluster, t["id"]), what="the task's environment")
    assert env["PORT0"] == "7005" and env["PORT_ADMIN"] == "7005" and env["PORT1"] == "31555"
    assert env["PORTS"] == "7005,31555"

    # the python client reads the task JSON
    ct = c.list_tasks("fixed")[0]
    assert ct.host and ct.ports == [7005, 31555] and ct.service_ports == [7005, 31555]
    assert ct.ip_addresses[0].ip_address and ct.ip_addresses[0].protocol == "IPv4"
    still_serving(cluster)


# --- why it waits ------------------------------------------------------------------------

def test_queue_says_why_an_app_waits(cluster):
    pytest.importorskip("marathon")
    from marathon import MarathonClient
    start(cluster)

    # a constraint no agent satisfies
    create(cluster, {"id": "nowhere", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                     "constraints": [["hostname", "IS", "no-such-host"]]})
    item = wait_reason(cluster, "/nowhere", "UnfulfilledConstraint")
    summary = item["processedOffersSummary"]
    assert summary["unusedOffersCount"] >= 1
    assert summary["processedOffersCount"] >= summary["unusedOffersCount"]
    assert "lastUnusedOfferAt" in summary and "lastUsedOfferAt" not in summary
    assert [s["reason"] for s in summary["rejectSummaryLastOffers"]] == [
        "UnfulfilledRole", "UnfulfilledConstraint", "NoCorrespondingReservationFound",
        "AgentMaintenance", "InsufficientCpus", "InsufficientMemory", "InsufficientDisk",
        "InsufficientGpus", "InsufficientPorts", "DeclinedScarceResources"]
    assert declined(item, "UnfulfilledConstraint", "rejectSummaryLaunchAttempt") >= 1
    unused = item["lastUnusedOffers"]
    assert len(unused) == 1                     # one agent: its last offer only
    assert unused[0]["reason"] == ["UnfulfilledConstraint"]
    offer = unused[0]["offer"]
    assert offer["hostname"] and offer["agentId"] and offer["id"]
    assert {r["name"] for r in offer["resources"]} >= {"cpus", "mem", "ports"}
    assert "lastUnusedOffers" not in queue_item(cluster, "/nowhere")

    # an explicit host port outside every offered range
    create(cluster, {"id": "noport", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                     "requirePorts": True, "portDefinitions": [{"port": 9000}]})
    item = wait_reason(cluster, "/noport", "InsufficientPorts")
    assert item["lastUnusedOffers"][0]["reason"] == ["InsufficientPorts"]
    assert declined(item, "UnfulfilledConstraint") == 0
    # more memory than any agent has: the funnel shows every reason that applies
    create(cluster, {"id": "huge", "cmd": "sleep 600", "cpus": 100, "mem": 1e6,
                     "constraints": [["hostname", "IS", "no-such-host"]]})
    item = wait_reason(cluster, "/huge", "UnfulfilledConstraint")
    assert item["lastUnusedOffers"][0]["reason"] == [
        "UnfulfilledConstraint", "InsufficientCpus", "InsufficientMemory"]

    # the python client parses the queue
    q = MarathonClient(cluster.relay_url).list_queue(embed_last_unused_offers=True)
    assert {i.app.id for i in q} == {"/nowhere", "/noport", "/huge"}
    assert all(i.processed_offers_summary["processedOffersCount"] >= 1 for i in q)
    assert all(i.last_unused_offers[0]["reason"] for i in q)

    # an app that runs leaves the queue; a launch records lastUsedOfferAt first
    create(cluster, {"id": "fine", "cmd": "sleep 600", "cpus": 0.1, "mem": 16})
    wait_running(cluster, "/fine")
    assert queue_item(cluster, "/fine") is None
    still_serving(cluster)


# --- Docker ------------------------------------------------------------------------------

@pytest.fixture
def engine(request):
    """The shared dockerd, left without containers after each test."""
    d = request.getfixturevalue("dockerd")
    yield d
    d.remove_all_containers()


def app_containers(engine, app_id, running=True):
    """Containers butte made for tasks of the app (label butte.task_id)."""
    prefix = app_id.strip("/").replace("/", "_") + "."
    out = []
    for c in engine.containers(label="butte.task_id", all=not running):
        if c["Labels"]["butte.task_id"].startswith(prefix):
            out.append(c)
    return out


def test_mysql_style_definition_runs(cluster, engine):
    pytest.importorskip("marathon")
    from marathon import MarathonClient
    start_docker(cluster, engine, resources=HIGH_RANGE)
    create(cluster, mysql_app())
    t = wait_running(cluster, "/mysql")[0]
    assert len(t["ports"]) == 1 and 31000 <= t["ports"][0] <= 32000
    assert t["servicePorts"] == [10000]
    # the container's own address, from the TASK_RUNNING status
    subnet = engine.subnet.rsplit(".", 1)[0] + "."
    assert t["ipAddresses"][0]["ipAddress"].startswith(subnet), (t, engine.subnet)
    assert t["ipAddresses"][0]["protocol"] == "IPv4"

    # a TCP connection to the host port reaches the container
    env = wait_for(lambda: container_env(t["ports"][0]), timeout=20,
                   what="the container to answer on its host port")
    assert env["MYSQL_ROOT_PASSWORD"] == "password" and env["MYSQL_USER"] == "test"
    assert env["MYSQL_PASSWORD"] == "test" and env["MYSQL_DB"] == "BucketList"
    hp = str(t["ports"][0])
    assert env["PORT0"] == hp and env["PORT"] == hp and env["PORTS"] == hp
    assert env["PORT_3306"] == hp
    assert env["MARATHON_APP_ID"] == "/mysql" and env["MESOS_TASK_ID"] == t["id"]
    assert env["MARATHON_APP_DOCKER_IMAGE"] == IMAGE

    # the container: bridge network, 3306 published on the host port
    (ct,) = app_containers(engine, "/mysql")
    info = engine.inspect(ct["Id"])
    assert info["HostConfig"]["NetworkMode"] in ("bridge", "default")
    assert info["HostConfig"]["PortBindings"]["3306/tcp"][0]["HostPort"] == hp

    # the python client sees the same
    ctask = MarathonClient(cluster.relay_url).list_tasks("mysql")[0]
    assert ctask.ports == t["ports"] and ctask.state == "TASK_RUNNING"
    wait_for(lambda: api(cluster, "GET", "/v2/deployments").json() == [],
             what="the deployment to finish")


def test_explicit_host_ports(cluster, engine):
    start_docker(cluster, engine, resources=TWO_RANGES)
    create(cluster, mysql_app("fixed", host_port=7005))
    t = wait_running(cluster, "/fixed")[0]
    assert t["ports"] == [7005]
    env = wait_for(lambda: container_env(7005), timeout=20, what="the container on port 7005")
    assert env["PORT0"] == "7005" and env["MYSQL_DB"] == "BucketList"

    # a hostPort outside every range: the queue says why it waits
    create(cluster, mysql_app("outside", host_port=9000))
    item = wait_reason(cluster, "/outside", "InsufficientPorts")
    assert item["count"] == 1
    assert "InsufficientPorts" in item["lastUnusedOffers"][-1]["reason"]
    assert app_containers(engine, "/outside", running=False) == []


def test_scale_replace_and_delete(cluster, engine):
    start_docker(cluster, engine, resources=HIGH_RANGE)
    create(cluster, mysql_app("scaled"))
    first = wait_running(cluster, "/scaled")[0]["id"]
    wait_for(lambda: api(cluster, "GET", "/v2/deployments").json() == [],
             what="the create to finish")     # else the scale is 409: the app is locked
    r = api(cluster, "PUT", "/v2/apps/scaled", {"instances": 3})
    assert r.status_code == 200, r.text
    ts = wait_running(cluster, "/scaled", 3)
    assert len({t["ports"][0] for t in ts}) == 3
    assert first in {t["id"] for t in ts}          # a scale, not a restart
    wait_for(lambda: len(app_containers(engine, "/scaled")) == 3, timeout=30,
             what="three containers")

    # a container killed behind butte's back is replaced
    victim = app_containers(engine, "/scaled")[0]
    victim_task = victim["Labels"]["butte.task_id"]
    status, _ = engine.api("POST", f"/containers/{victim['Id']}/kill")
    assert status == 204
    wait_for(lambda: (lambda ts: ts and victim_task not in {t["id"] for t in ts})(
        running_tasks(cluster, "/scaled", 3)), timeout=60, what="the killed task's replacement")
    wait_for(lambda: len(app_containers(engine, "/scaled")) == 3, timeout=30,
             what="three running containers again")

    # DELETE removes every container it made
    r = api(cluster, "DELETE", "/v2/apps/scaled")
    assert r.status_code == 200 and "deploymentId" in r.json()
    wait_for(lambda: app_containers(engine, "/scaled", running=False) == [], timeout=60,
             what="the app's containers to be removed")


def test_missing_image_fails_with_backoff(cluster, engine):
    start_docker(cluster, engine, resources=HIGH_RANGE)
    create(cluster, mysql_app("ghost", image="localhost/no-such-image:1",
                              backoffSeconds=30, maxLaunchDelaySeconds=60))
    failure = wait_for(lambda: get_app(cluster, "/ghost").get("lastTaskFailure"), timeout=60,
                       what="lastTaskFailure for the missing image")
    assert failure["state"] in ("TASK_FAILED", "TASK_ERROR")
    assert "localhost/no-such-image:1" in failure["message"], failure
    # the backoff delay shows in the queue
    item = wait_for(lambda: queue_item(cluster, "/ghost"), what="/ghost in the queue")
    assert item["delay"]["timeLeftSeconds"] > 0 and item["delay"]["overdue"] is False
    still_serving(cluster)


def test_no_engine_fails_fast(cluster, engine, tmp_path):
    start_docker(cluster, engine, resources=HIGH_RANGE,
                 socket_path=str(tmp_path / "no-engine.sock"))
    create(cluster, mysql_app("noengine", backoffSeconds=30))
    failure = wait_for(lambda: get_app(cluster, "/noengine").get("lastTaskFailure"), timeout=30,
                       what="lastTaskFailure without an engine")
    assert failure["state"] in ("TASK_FAILED", "TASK_ERROR")
    assert "unreachable" in failure["message"] and "no-engine.sock" in failure["message"], failure
    # process apps on the same agent are unaffected
    create(cluster, {"id": "plain", "cpus": 0.1, "mem": 16, "cmd": "sleep 600"})
    wait_running(cluster, "/plain", timeout=30)


def test_host_network_args_volumes_parameters(cluster, engine, tmp_path):
    port = free_port()
    start_docker(cluster, engine, resources=f"cpus:4;mem:2048;disk:1024;ports(*):[{port}-{port}]")
    (tmp_path / "shared").mkdir()
    create(cluster, {
        "id": "hostnet", "cpus": 0.2, "mem": 32, "requirePorts": True,
        "portDefinitions": [{"port": port, "name": "env"}],
        # args without cmd: the image's entrypoint runs them, no shell
        "args": ["nc", "-ll", "-p", str(port), "-e", "env"],
        "container": {"type": "DOCKER",
                      "docker": {"image": IMAGE, "network": "HOST",
                                 "parameters": [{"key": "label", "value": "tier=db"}]},
                      "volumes": [{"containerPath": "/data",
                                   "hostPath": str(tmp_path / "shared"), "mode": "RO"}]}})
    t = wait_running(cluster, "/hostnet")[0]
    assert t["ports"] == [port]
    env = wait_for(lambda: container_env(port), timeout=20, what="the host network container")
    assert env["PORT0"] == str(port) and env["PORT_ENV"] == str(port)
    (ct,) = app_containers(engine, "/hostnet")
    info = engine.inspect(ct["Id"])
    assert info["HostConfig"]["NetworkMode"] == "host"
    assert info["Config"]["Labels"].get("tier") == "db"
    assert any(b.startswith(str(tmp_path / "shared") + ":/data") and b.endswith(":ro")
               for b in info["HostConfig"]["Binds"] or []), info["HostConfig"]["Binds"]
    assert info["Config"]["Cmd"] == ["nc", "-ll", "-p", str(port), "-e", "env"]
