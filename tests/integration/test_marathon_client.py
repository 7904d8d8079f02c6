"""relay driven by the real python marathon client (Debian python3-marathon).

Every call the client offers for apps, tasks, deployments, the queue,
info, leader, ping, metrics, the event stream and groups is made against
real daemons (a master, two agents on 127.0.0.1 and 127.0.0.2, relay),
and must come back parsed into the client's models without an error.

The client builds its models with cls(**json), so a key a model does not
declare makes the whole call fail: besides the calls themselves, every
object relay answers with is checked key by key against the constructor
of the model that parses it, read from the installed client.

The test_quirks_* functions send what the client sends on the wire:
double slashes in paths (ids pasted after "/v2/apps/"), capitalised
booleans (force=True, scale=False) in every boolean query parameter, and
check Marathon's error shapes.
"""
import inspect
import socket
import threading

import pytest

from harness import http, task_pids, wait_for

marathon = pytest.importorskip("marathon")
# Marathon answers a COMMAND check's command as {"value": ...}; the client logs that with
# the deprecated Logger.warn on every parse
pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'warn' method is deprecated:DeprecationWarning")

from marathon import MarathonApp, MarathonClient  # noqa: E402
from marathon.exceptions import (ConflictError, MarathonHttpError,  # noqa: E402
                                 NotFoundError)
from marathon.models import (MarathonDeployment, MarathonGroup, MarathonInfo,  # noqa: E402
                             MarathonQueueItem, MarathonTask)
from marathon.models.app import (MarathonAppVersionInfo, MarathonHealthCheck,  # noqa: E402
                                 MarathonTaskFailure, MarathonTaskStats,
                                 MarathonUnreachableStrategy, MarathonUpgradeStrategy,
                                 PortDefinition, ReadinessCheck)
from marathon.models.container import (MarathonContainer,  # noqa: E402
                                       MarathonContainerPortMapping,
                                       MarathonContainerVolume)
from marathon.models.deployment import MarathonDeploymentAction, MarathonDeploymentStep  # noqa: E402
from marathon.models.events import (MarathonApiPostEvent, MarathonDeploymentInfo,  # noqa: E402
                                    MarathonEventStreamAttached, MarathonStatusUpdateEvent)
from marathon.models.info import (MarathonConfig, MarathonEventSubscriber,  # noqa: E402
                                  MarathonHttpConfig, MarathonZooKeeperConfig)
from marathon.models.queue import MarathonQueueItemDelay  # noqa: E402
from marathon.models.task import MarathonHealthCheckResult, MarathonIpAddress  # noqa: E402
from marathon.util import to_snake_case  # noqa: E402

MASTER_FLAGS = ("--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=3",
                "--allocation_interval=100ms")
AGENT1 = "cpus:4;mem:2048;disk:1024;ports(*):[31000-31099]"
AGENT2 = "cpus:4;mem:2048;disk:1024;ports(*):[31100-31199]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def start(cluster, agents=2):
    cluster.start_master(*MASTER_FLAGS)
    if agents >= 1:
        cluster.start_agent(resources=AGENT1, ip="127.0.0.1")
    if agents >= 2:
        cluster.start_agent(resources=AGENT2, ip="127.0.0.2")
    cluster.start_relay()
    return MarathonClient(cluster.relay_url)


def api(cluster, method, path, body=None, raw=None, headers=None, **kw):
    h = dict(JSON)
    h.update(headers or {})
    if raw is not None:
        return http(method, cluster.relay_url + path, data=raw, headers=h, **kw)
    return http(method, cluster.relay_url + path, json=body, headers=h, **kw)


def sleeper(**extra):
    kw = dict(cmd="sleep 600", cpus=0.1, mem=16, instances=1, backoff_seconds=0.1)
    kw.update(extra)
    return MarathonApp(**kw)


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


def running(c, app_id, n):
    """The app has n instances, n listed tasks, all TASK_RUNNING: the MarathonApp, else None."""
    app = c.get_app(app_id)
    tasks = [t for t in app.tasks if t.state == "TASK_RUNNING"]
    if app.tasks_running == n and len(tasks) == n and len(app.tasks) == n:
        return app
    return None


def wait_running(c, app_id, n, timeout=30, pred=lambda app: True):
    return wait_for(lambda: (lambda a: a if a is not None and pred(a) else None)(
        running(c, app_id, n)), timeout=timeout, what=f"{app_id} to run {n} tasks")


def wait_no_deployment(c, timeout=30):
    wait_for(lambda: c.list_deployments() == [], timeout=timeout,
             what="every deployment to finish")


def is_deployment_result(result):
    return isinstance(result, dict) and set(result) == {"deploymentId", "version"}


# --- what the client's models accept ---------------------------------------------

def accepted(cls):
    """The snake_case keyword arguments cls() takes; None when it takes any (**kwargs)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {n for n in params if n != "self"}


def keys_ok(obj, cls, where):
    assert isinstance(obj, dict), f"{where}: {obj!r} is not an object"
    allowed = accepted(cls)
    if allowed is None:
        return
    extra = {k for k in obj if to_snake_case(k) not in allowed}
    assert not extra, f"{where}: {cls.__name__} does not accept {sorted(extra)}"


def check_task(t, where="task"):
    keys_ok(t, MarathonTask, where)
    for hc in t.get("healthCheckResults") or []:
        keys_ok(hc, MarathonHealthCheckResult, where + ".healthCheckResults[]")
    for ip in t.get("ipAddresses") or []:
        keys_ok(ip, MarathonIpAddress, where + ".ipAddresses[]")


def check_app(a, where="app"):
    keys_ok(a, MarathonApp, where)
    for key, cls in (("lastTaskFailure", MarathonTaskFailure),
                     ("versionInfo", MarathonAppVersionInfo),
                     ("upgradeStrategy", MarathonUpgradeStrategy),
                     ("taskStats", MarathonTaskStats),
                     ("container", MarathonContainer)):
        if a.get(key) is not None:
            keys_ok(a[key], cls, f"{where}.{key}")
    if isinstance(a.get("unreachableStrategy"), dict):
        keys_ok(a["unreachableStrategy"], MarathonUnreachableStrategy, where + ".unreachableStrategy")
    else:
        assert a.get("unreachableStrategy") in (None, "disabled")
    for pd in a.get("portDefinitions") or []:
        keys_ok(pd, PortDefinition, where + ".portDefinitions[]")
    for rc in a.get("readinessChecks") or []:
        keys_ok(rc, ReadinessCheck, where + ".readinessChecks[]")
    for hc in a.get("healthChecks") or []:
        keys_ok(hc, MarathonHealthCheck, where + ".healthChecks[]")
    for c in a.get("constraints") or []:
        assert isinstance(c, list) and len(c) in (2, 3), c
    container = a.get("container") or {}
    for pm in container.get("portMappings") or []:
        keys_ok(pm, MarathonContainerPortMapping, where + ".container.portMappings[]")
    for v in container.get("volumes") or []:
        keys_ok(v, MarathonContainerVolume, where + ".container.volumes[]")
    if a.get("killSelection") is not None:
        assert a["killSelection"] in MarathonApp.KILL_SELECTIONS
    for d in a.get("deployments") or []:
        keys_ok(d, MarathonDeployment, where + ".deployments[]")
    for i, t in enumerate(a.get("tasks") or []):
        check_task(t, f"{where}.tasks[{i}]")


def check_deployment(d, where="deployment"):
    keys_ok(d, MarathonDeployment, where)
    for step in d.get("steps") or []:
        keys_ok(step, MarathonDeploymentStep, where + ".steps[]")
        for action in step.get("actions") or []:
            keys_ok(action, MarathonDeploymentAction, where + ".steps[].actions[]")
    for action in d.get("currentActions") or []:
        keys_ok(action, MarathonDeploymentAction, where + ".currentActions[]")


def check_group(g, where="group"):
    keys_ok(g, MarathonGroup, where)
    for a in g.get("apps") or []:
        check_app(a, where + ".apps[]")
    for sub in g.get("groups") or []:
        check_group(sub, where + ".groups[]")


def check_info(info):
    keys_ok(info, MarathonInfo, "info")
    for key, cls in (("marathon_config", MarathonConfig),
                     ("zookeeper_config", MarathonZooKeeperConfig),
                     ("http_config", MarathonHttpConfig)):
        assert isinstance(info.get(key), dict), f"info.{key} must be an object"
        keys_ok(info[key], cls, "info." + key)
    if info.get("event_subscriber") is not None:
        keys_ok(info["event_subscriber"], MarathonEventSubscriber, "info.event_subscriber")


def check_queue(body):
    for i, item in enumerate(body["queue"]):
        keys_ok(item, MarathonQueueItem, f"queue[{i}]")
        keys_ok(item["delay"], MarathonQueueItemDelay, f"queue[{i}].delay")
        check_app(item["app"], f"queue[{i}].app")


def queue_has(cluster, app_id):
    return any(q["app"]["id"] == app_id for q in api(cluster, "GET", "/v2/queue").json()["queue"])


def check_everything(cluster):
    """Every listing relay offers, with every embed, is made of keys the client accepts."""
    embeds = "&".join("embed=apps." + e for e in (
        "tasks", "counts", "deployments", "readiness", "lastTaskFailure", "failures", "taskStats"))
    for path in ("/v2/apps", "/v2/apps?" + embeds):
        for i, a in enumerate(api(cluster, "GET", path).json()["apps"]):
            check_app(a, f"{path} apps[{i}]")
    for i, t in enumerate(api(cluster, "GET", "/v2/tasks").json()["tasks"]):
        check_task(t, f"/v2/tasks[{i}]")
    for i, d in enumerate(api(cluster, "GET", "/v2/deployments").json()):
        check_deployment(d, f"/v2/deployments[{i}]")
    check_queue(api(cluster, "GET", "/v2/queue").json())
    check_queue(api(cluster, "GET", "/v2/queue?embed=lastUnusedOffers").json())
    check_info(api(cluster, "GET", "/v2/info").json())
    r = api(cluster, "GET", "/v2/groups")
    if r.status_code == 200:
        check_group(r.json(), "/v2/groups")


# --- apps, tasks, versions -----------------------------------------------------------

def test_apps_and_tasks_with_client(cluster):
    c = start(cluster)
    assert c.ping().strip(b'"') == b"pong"
    leader = c.get_leader()
    assert set(leader) == {"leader"} and leader["leader"].endswith(f":{cluster.relay.port}")

    created = c.create_app("/pyapp", sleeper(instances=2, labels={"tier": "web"}))
    assert isinstance(created, MarathonApp) and created.id == "/pyapp"
    assert created.instances == 2 and created.tasks_running == 0
    deployments = c.list_deployments()
    assert len(deployments) == 1, deployments
    d = deployments[0]
    assert isinstance(d, MarathonDeployment) and d.affected_apps == ["/pyapp"]
    assert [a.app for s in d.steps for a in s.actions] and \
        all(a.app == "/pyapp" for s in d.steps for a in s.actions)
    assert created.deployments and created.deployments[0].id == d.id

    # every embed the client offers, and its filters
    for flag in ("embed_tasks", "embed_counts", "embed_deployments", "embed_readiness",
                 "embed_last_task_failure", "embed_failures", "embed_task_stats"):
        apps = c.list_apps(**{flag: True})
        assert [a.id for a in apps] == ["/pyapp"], flag
        assert c.get_app("pyapp", **{flag: True}).id == "/pyapp", flag
    assert [a.id for a in c.list_apps(cmd="sleep 6")] == ["/pyapp"]
    assert c.list_apps(cmd="no-such-command") == []
    assert [a.id for a in c.list_apps(app_id="pya")] == ["/pyapp"]
    assert [a.id for a in c.list_apps(label="tier==web")] == ["/pyapp"]
    assert c.list_apps(label="tier!=web") == []
    assert [a.id for a in c.list_apps(instances=2)] == ["/pyapp"]

    app = wait_running(c, "/pyapp", 2)
    assert {t.host for t in app.tasks} <= {"127.0.0.1", "127.0.0.2"}
    assert all(t.started_at is not None and t.staged_at is not None for t in app.tasks)
    tasks = c.list_tasks("pyapp")
    assert len(tasks) == 2 and all(isinstance(t, MarathonTask) for t in tasks)
    assert all(t.app_id == "/pyapp" for t in tasks)
    assert len(c.list_tasks()) == 2
    assert len(c.list_tasks(app_id="pyapp", state="TASK_RUNNING")) == 2
    assert {e.app_id for e in c.list_endpoints()} == {"/pyapp"}
    apps = c.list_apps(embed_tasks=True)
    assert len(apps[0].tasks) == 2
    wait_no_deployment(c)
    check_everything(cluster)

    # scale by instances and by delta
    assert is_deployment_result(c.scale_app("pyapp", instances=3))
    wait_running(c, "/pyapp", 3)
    wait_no_deployment(c)
    assert is_deployment_result(c.scale_app("pyapp", delta=-1))
    wait_running(c, "/pyapp", 2)
    wait_no_deployment(c)
    assert c.get_app("pyapp").instances == 2

    # a config change replaces the tasks
    v1 = c.get_app("pyapp").version
    old = {t.id for t in c.list_tasks("pyapp")}
    assert is_deployment_result(c.update_app("pyapp", MarathonApp(cmd="sleep 601")))
    app = wait_running(c, "/pyapp", 2, pred=lambda a: not ({t.id for t in a.tasks} & old))
    assert app.cmd == "sleep 601" and app.labels == {"tier": "web"}
    wait_no_deployment(c)

    # versions and a rollback to the first config
    versions = c.list_versions("pyapp")
    assert v1 in versions and len(versions) >= 3
    first = c.get_version("pyapp", v1)
    assert isinstance(first, MarathonApp) and first.cmd == "sleep 600"
    old = {t.id for t in app.tasks}
    assert is_deployment_result(c.rollback_app("pyapp", v1))
    app = wait_running(c, "/pyapp", 2, pred=lambda a: not ({t.id for t in a.tasks} & old))
    assert app.cmd == "sleep 600"
    wait_no_deployment(c)

    # restart: new tasks, same config
    old = {t.id for t in app.tasks}
    assert is_deployment_result(c.restart_app("pyapp"))
    app = wait_running(c, "/pyapp", 2, pred=lambda a: not ({t.id for t in a.tasks} & old))
    assert app.cmd == "sleep 600"
    wait_no_deployment(c)

    # kill_task: without scale it is replaced, with wipe too, with scale the app shrinks
    victim = app.tasks[0].id
    killed = c.kill_task("pyapp", victim)
    assert isinstance(killed, MarathonTask) and killed.id == victim
    app = wait_running(c, "/pyapp", 2, pred=lambda a: victim not in {t.id for t in a.tasks})
    victim = app.tasks[0].id
    killed = c.kill_task("pyapp", victim, wipe=True)
    assert isinstance(killed, MarathonTask) and killed.id == victim
    app = wait_running(c, "/pyapp", 2, pred=lambda a: victim not in {t.id for t in a.tasks})
    wait_no_deployment(c)
    assert is_deployment_result(c.kill_task("pyapp", app.tasks[0].id, scale=True))
    app = wait_running(c, "/pyapp", 1)
    assert app.instances == 1
    wait_no_deployment(c)
    with pytest.raises(NotFoundError):
        c.kill_task("pyapp", "pyapp.no-such-task")

    # kill_tasks: by host, all, then all with scale
    assert is_deployment_result(c.scale_app("pyapp", instances=4))
    app = wait_running(c, "/pyapp", 4)
    wait_no_deployment(c)
    host = app.tasks[0].host
    on_host = {t.id for t in app.tasks if t.host == host}
    killed = c.kill_tasks("pyapp", host=host)
    assert {t.id for t in killed} == on_host and all(isinstance(t, MarathonTask) for t in killed)
    app = wait_running(c, "/pyapp", 4, pred=lambda a: not ({t.id for t in a.tasks} & on_host))
    old = {t.id for t in app.tasks}
    killed = c.kill_tasks("pyapp")
    assert {t.id for t in killed} == old
    app = wait_running(c, "/pyapp", 4, pred=lambda a: not ({t.id for t in a.tasks} & old))
    wait_no_deployment(c)
    assert c.kill_given_tasks([app.tasks[0].id]) is True
    assert c.kill_given_tasks([app.tasks[1].id], scale=True) is True
    wait_running(c, "/pyapp", 3)
    assert c.get_app("pyapp").instances == 3
    wait_no_deployment(c)
    assert is_deployment_result(c.kill_tasks("pyapp", scale=True))
    wait_for(lambda: running(c, "/pyapp", 0), timeout=30, what="no task left")
    assert c.get_app("pyapp").instances == 0
    wait_no_deployment(c)

    assert "counters" in c.get_metrics() and "gauges" in c.get_metrics()
    result = c.delete_app("pyapp", force=True)
    assert is_deployment_result(result)
    with pytest.raises(NotFoundError):
        c.get_app("pyapp")
    wait_no_deployment(c)
    assert c.list_apps() == [] and c.list_tasks() == []


def test_info_queue_and_errors_with_client(cluster):
    c = start(cluster, agents=1)
    info = c.get_info()
    assert isinstance(info, MarathonInfo) and info.name == "marathon"
    assert info.http_config.http_port == cluster.relay.port
    assert info.marathon_config.hostname and info.zookeeper_config is not None
    assert info.elected is True
    check_info(api(cluster, "GET", "/v2/info").json())

    # an app that can never be placed waits in the queue, with the reasons
    c.create_app("big", sleeper(cpus=64))
    items = wait_for(lambda: [q for q in c.list_queue() if q.app.id == "/big" and
                              (q.processed_offers_summary or {}).get("processedOffersCount")],
                     timeout=20, what="/big to be queued with offers processed")
    item = items[0]
    assert isinstance(item, MarathonQueueItem) and item.count == 1
    assert item.delay.time_left_seconds is not None and item.delay.overdue in (True, False)
    assert item.since
    reasons = {r["reason"]: r["declined"] for r in
               item.processed_offers_summary["rejectSummaryLaunchAttempt"]}
    assert reasons["InsufficientCpus"] >= 1
    with_offers = c.list_queue(embed_last_unused_offers=True)
    assert with_offers[0].last_unused_offers
    check_queue(api(cluster, "GET", "/v2/queue?embed=lastUnusedOffers").json())
    assert c.reset_delay("big") is None
    with pytest.raises(NotFoundError):
        c.reset_delay("nope")

    # Marathon's errors, as the client raises them
    with pytest.raises(ConflictError) as e:
        c.create_app("big", sleeper())
    assert e.value.error_message == "An app with id [/big] already exists."
    with pytest.raises(NotFoundError) as e:
        c.get_app("nope")
    assert e.value.error_message == "App '/nope' does not exist"
    with pytest.raises(MarathonHttpError) as e:
        c.create_app("bad", MarathonApp(cpus=0.1))
    assert e.value.status_code == 422 and e.value.error_message == "Object is not valid"
    assert e.value.error_details[0]["path"] == "/"
    with pytest.raises(MarathonHttpError) as e:
        c.create_app("bad", sleeper(instances=-1))
    assert e.value.status_code == 422
    assert [d["path"] for d in e.value.error_details] == ["/instances"]
    with pytest.raises(NotFoundError):
        c.delete_app("nope")
    with pytest.raises(NotFoundError):
        c.list_versions("nope")
    with pytest.raises(NotFoundError):
        c.get_version("big", "2001-01-01T00:00:00.000Z")
    with pytest.raises(NotFoundError):
        c.delete_deployment("no-such-deployment")

    c.delete_app("big", force=True)
    # a deployment that could never finish still ends with the delete
    wait_no_deployment(c)
    assert c.list_queue() == []


# --- deployments -----------------------------------------------------------------------

def test_deployments_with_client(cluster):
    """Marathon: a change during a deployment is 409 unless force=True; DELETE rolls back."""
    c = start(cluster, agents=1)
    c.create_app("stuck", sleeper(cpus=64))
    deployments = c.list_deployments()
    assert len(deployments) == 1 and deployments[0].affected_apps == ["/stuck"]
    first = deployments[0].id
    check_deployment(api(cluster, "GET", "/v2/deployments").json()[0])
    check_everything(cluster)

    with pytest.raises(ConflictError) as e:
        c.scale_app("stuck", instances=2)
    assert "locked by one or more deployments" in e.value.error_message
    assert c.get_app("stuck").instances == 1

    forced = c.scale_app("stuck", instances=2, force=True)
    assert is_deployment_result(forced)
    assert c.get_app("stuck").instances == 2
    ids = [d.id for d in c.list_deployments()]
    assert forced["deploymentId"] in ids and first not in ids

    # DELETE without force rolls the change back, through a new deployment
    rollback = c.delete_deployment(forced["deploymentId"])
    assert is_deployment_result(rollback) and rollback["deploymentId"] != forced["deploymentId"]
    wait_for(lambda: c.get_app("stuck").instances == 1, what="the rollback to 1 instance")
    assert rollback["deploymentId"] in [d.id for d in c.list_deployments()]

    # DELETE with force cancels: 202, the client gives {}
    assert c.delete_deployment(rollback["deploymentId"], force=True) == {}
    wait_for(lambda: rollback["deploymentId"] not in [d.id for d in c.list_deployments()],
             what="the cancelled deployment to vanish")

    assert is_deployment_result(c.delete_app("stuck", force=True))
    wait_no_deployment(c)
    assert c.list_apps() == []


def test_update_apps_array_with_client(cluster):
    """update_apps: PUT /v2/apps with an array, one deployment for all of them."""
    c = start(cluster, agents=1)
    result = c.update_apps([sleeper(id="/multi/a"), sleeper(id="/multi/b", cmd="sleep 602")])
    assert is_deployment_result(result)
    wait_running(c, "/multi/a", 1)
    wait_running(c, "/multi/b", 1)
    wait_no_deployment(c)
    result = c.update_apps([MarathonApp(id="/multi/a", instances=2)])
    assert is_deployment_result(result)
    wait_running(c, "/multi/a", 2)
    assert c.get_app("/multi/b").cmd == "sleep 602"
    assert c.get_app("/multi/a").cmd == "sleep 600"
    wait_no_deployment(c)


# --- the event stream ------------------------------------------------------------------

class Stream:
    """client.event_stream() iterated in a thread, stopped by closing its socket."""

    def __init__(self, client, types=None):
        self.events, self.errors, self.responses = [], [], []
        session = client.sse_session
        orig_get = session.get

        def get(*args, **kw):
            resp = orig_get(*args, **kw)
            self.responses.append(resp)
            return resp
        session.get = get
        session.trust_env = False
        self.gen = client.event_stream(event_types=types)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for ev in self.gen:
                self.events.append(ev)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            if not getattr(self, "stopping", False):
                self.errors.append(exc)

    def stop(self):
        self.stopping = True
        for resp in self.responses:
            sock = None
            conn = getattr(resp.raw, "_connection", None)
            if conn is not None:
                sock = getattr(conn, "sock", None)
            if sock is None:
                try:
                    sock = resp.raw._fp.fp.raw._sock
                except AttributeError:
                    sock = None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the event stream thread did not stop"


def test_event_stream_with_client(cluster):
    c = start(cluster, agents=1)
    everything = Stream(MarathonClient(cluster.relay_url))
    only_status = Stream(MarathonClient(cluster.relay_url), types=[MarathonStatusUpdateEvent])
    wait_for(lambda: cluster.relay.log().count("event stream to 127.0.0.1 opened") >= 2,
             what="both streams to attach")
    try:
        c.create_app("evapp", sleeper())
        wait_running(c, "/evapp", 1)
        c.scale_app("evapp", instances=2)
        wait_running(c, "/evapp", 2)
        wait_no_deployment(c)
        c.delete_app("evapp", force=True)   # its events push the earlier ones through

        def running_ids(events):
            return {e.task_id for e in events if isinstance(e, MarathonStatusUpdateEvent) and
                    e.task_status == "TASK_RUNNING" and e.app_id == "/evapp"}
        wait_for(lambda: len(running_ids(everything.events)) == 2, timeout=30,
                 what="TASK_RUNNING of both tasks on the stream")
        wait_for(lambda: len(running_ids(only_status.events)) == 2, timeout=30,
                 what="TASK_RUNNING of both tasks on the filtered stream")
    finally:
        everything.stop()
        only_status.stop()
    assert not everything.errors and not only_status.errors, (everything.errors,
                                                              only_status.errors)
    evs = everything.events
    assert isinstance(evs[0], MarathonEventStreamAttached)
    posts = [e for e in evs if isinstance(e, MarathonApiPostEvent)]
    assert posts and posts[0].app_definition["id"] == "/evapp"
    infos = [e for e in evs if isinstance(e, MarathonDeploymentInfo)]
    assert infos and infos[0].plan.target is not None and infos[0].plan.original is not None
    # the create's api_post_event comes before its tasks run
    first_running = next(i for i, e in enumerate(evs) if isinstance(e, MarathonStatusUpdateEvent)
                         and e.task_status == "TASK_RUNNING")
    assert evs.index(posts[0]) < first_running
    assert all(isinstance(e, MarathonStatusUpdateEvent) for e in only_status.events)


# --- groups ------------------------------------------------------------------------------

def test_groups_with_client(cluster):
    c = start(cluster, agents=1)
    group = MarathonGroup(id="/grp", apps=[sleeper(id="/grp/web"), sleeper(id="/grp/db")])
    assert is_deployment_result(c.create_group(group))
    wait_running(c, "/grp/web", 1)
    wait_running(c, "/grp/db", 1)

    got = c.get_group("grp")
    assert isinstance(got, MarathonGroup) and got.id == "/grp"
    assert sorted(a.id for a in got.apps) == ["/grp/db", "/grp/web"]
    check_group(api(cluster, "GET", "/v2/groups/grp").json(), "/v2/groups/grp")
    groups = c.list_groups()
    assert [g.id for g in groups] == ["/grp"]
    check_group(api(cluster, "GET", "/v2/groups").json(), "/v2/groups")
    check_everything(cluster)
    wait_no_deployment(c)

    assert is_deployment_result(c.scale_group("grp", 2))
    wait_running(c, "/grp/web", 2)
    wait_running(c, "/grp/db", 2)
    wait_no_deployment(c)

    result = c.update_group("grp", MarathonGroup(id="/grp", apps=[
        sleeper(id="/grp/web", instances=1), sleeper(id="/grp/db", instances=1)]), force=True)
    assert is_deployment_result(result)
    wait_running(c, "/grp/web", 1)
    wait_running(c, "/grp/db", 1)
    wait_no_deployment(c)

    with pytest.raises(NotFoundError):
        c.get_group("no-such-group")
    assert is_deployment_result(c.delete_group("grp", force=True))
    wait_for(lambda: c.list_apps() == [], what="the group's apps to go")
    wait_no_deployment(c)
    wait_for(lambda: app_pids(cluster, "/grp/web") == [], what="the group's processes to end")


# --- quirks: double slashes, capitalised booleans, error shapes, key sets ---------------

def test_quirks_double_slashes(cluster):
    start(cluster, agents=1)
    r = api(cluster, "POST", "//v2//apps", {"id": "/q", "cmd": "sleep 600", "cpus": 0.1,
                                            "mem": 16, "instances": 1})
    assert r.status_code == 201, r.text
    assert api(cluster, "GET", "//v2/apps").json()["apps"][0]["id"] == "/q"
    assert api(cluster, "GET", "/v2/apps//q").json()["app"]["id"] == "/q"
    assert api(cluster, "GET", "/v2/apps///q/").json()["app"]["id"] == "/q"
    wait_for(lambda: len(api(cluster, "GET", "/v2/apps//q//tasks").json()["tasks"]) == 1,
             timeout=30, what="the task listed through a double slash")
    assert api(cluster, "GET", "/v2/apps//q/versions").json()["versions"]
    assert api(cluster, "PUT", "/v2/apps//q?force=True", {"instances": 2}).status_code == 200
    assert api(cluster, "GET", "/v2//apps/q").json()["app"]["instances"] == 2
    assert api(cluster, "GET", "//v2//deployments").status_code == 200
    assert api(cluster, "GET", "//v2/tasks").status_code == 200
    assert api(cluster, "GET", "//v2//queue").status_code == 200
    assert api(cluster, "GET", "//v2/info").status_code == 200
    assert api(cluster, "POST", "/v2/apps//q//restart?force=True").status_code == 200
    # what the client's integration cleanup sends
    r = api(cluster, "DELETE", "/v2/apps//q?force=True")
    assert r.status_code == 200 and "deploymentId" in r.json()
    assert api(cluster, "GET", "/v2/apps//q").status_code == 404


def test_quirks_capitalised_booleans(cluster):
    c = start(cluster, agents=1)
    body = {"id": "/b", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2,
            "labels": {"keep": "me"}, "backoffSeconds": 0.1}
    assert api(cluster, "POST", "/v2/apps?force=True", body).status_code == 201
    app = wait_running(c, "/b", 2)
    wait_no_deployment(c)

    # partialUpdate=False replaces the definition; partialUpdate=True (default) merges
    r = api(cluster, "PUT", "/v2/apps/b?force=False&partialUpdate=True", {"instances": 2})
    assert r.status_code == 200
    assert c.get_app("b").labels == {"keep": "me"}
    wait_no_deployment(c)
    r = api(cluster, "PUT", "/v2/apps/b?partialUpdate=False&force=True",
            {"cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2, "backoffSeconds": 0.1})
    assert r.status_code == 200, r.text
    assert c.get_app("b").labels == {}
    app = wait_running(c, "/b", 2)
    wait_no_deployment(c)

    # kills: scale=False&wipe=False lists the tasks; scale=True answers a deployment
    tid = app.tasks[0].id
    r = api(cluster, "DELETE", f"/v2/apps/b/tasks/{tid}?scale=False&wipe=False&force=False")
    assert r.status_code == 200 and r.json()["task"]["id"] == tid
    app = wait_running(c, "/b", 2, pred=lambda a: tid not in {t.id for t in a.tasks})
    tid = app.tasks[0].id
    r = api(cluster, "DELETE", f"/v2/apps/b/tasks/{tid}?scale=False&wipe=True")
    assert r.status_code == 200 and r.json()["task"]["id"] == tid
    app = wait_running(c, "/b", 2, pred=lambda a: tid not in {t.id for t in a.tasks})
    wait_no_deployment(c)
    r = api(cluster, "DELETE", "/v2/apps/b/tasks?scale=False&wipe=False")
    assert r.status_code == 200 and len(r.json()["tasks"]) == 2
    app = wait_running(c, "/b", 2, pred=lambda a: not ({t.id for t in a.tasks} &
                                                       {t["id"] for t in r.json()["tasks"]}))
    wait_no_deployment(c)
    r = api(cluster, "POST", "/v2/tasks/delete?scale=True&force=True", {"ids": [app.tasks[0].id]})
    assert r.status_code == 200 and "deploymentId" in r.json()
    wait_running(c, "/b", 1)
    assert c.get_app("b").instances == 1
    wait_no_deployment(c)
    r = api(cluster, "DELETE", "/v2/apps/b/tasks?scale=TRUE&wipe=FALSE")
    assert r.status_code == 200 and "deploymentId" in r.json()
    wait_for(lambda: running(c, "/b", 0), timeout=30, what="no task left")
    assert c.get_app("b").instances == 0

    # scale and wipe, capitalised, are still refused together
    r = api(cluster, "DELETE", "/v2/apps/b/tasks?scale=True&wipe=True")
    assert r.status_code == 400
    assert r.json() == {"message": "You cannot use scale and wipe at the same time."}

    # a deployment cancelled with force=True: 202 without a body
    r = api(cluster, "PUT", "/v2/apps/b?force=True", {"instances": 1, "cpus": 64})
    assert r.status_code == 200
    dep = r.json()["deploymentId"]
    r = api(cluster, "DELETE", f"/v2/deployments/{dep}?force=True")
    assert r.status_code == 202 and r.content == b""
    r = api(cluster, "POST", "/v2/apps/b/restart?force=True")
    assert r.status_code == 200 and "deploymentId" in r.json()
    r = api(cluster, "PATCH", "/v2/apps/b?force=True", {"cpus": 0.1})
    assert r.status_code == 200 and "deploymentId" in r.json()
    r = api(cluster, "PUT", "/v2/apps?force=True&partialUpdate=True",
            [{"id": "/b", "instances": 0}])
    assert r.status_code == 200 and "deploymentId" in r.json()
    # a deployment that cannot finish locks the app: changes need force=True
    r = api(cluster, "PUT", "/v2/apps/b?force=True", {"instances": 1, "cpus": 64})
    assert r.status_code == 200
    r = api(cluster, "PUT", "/v2/apps/b?force=False", {"instances": 2})
    assert r.status_code == 409 and r.json()["deployments"]
    r = api(cluster, "DELETE", "/v2/apps/b?force=False")
    assert r.status_code == 409 and r.json()["deployments"]
    r = api(cluster, "DELETE", "/v2/apps/b?force=True")
    assert r.status_code == 200 and "deploymentId" in r.json()
    wait_no_deployment(c)

    # groups: force and dryRun
    group = {"id": "/g", "apps": [{"id": "/g/x", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                                   "instances": 1, "backoffSeconds": 0.1}]}
    r = api(cluster, "POST", "/v2/groups?force=True", group)
    assert r.status_code == 201, r.text
    wait_running(c, "/g/x", 1)
    wait_no_deployment(c)
    r = api(cluster, "PUT", "/v2/groups/g?dryRun=True&force=False",
            dict(group, apps=[dict(group["apps"][0], instances=3)]))
    assert r.status_code == 200 and "deploymentId" not in r.json()
    assert c.get_app("/g/x").instances == 1
    r = api(cluster, "PUT", "/v2/groups//g?dryRun=False&force=True", {"scaleBy": 2})
    assert r.status_code == 200 and "deploymentId" in r.json()
    wait_running(c, "/g/x", 2)
    r = api(cluster, "DELETE", "/v2/groups/g?force=True")
    assert r.status_code == 200 and "deploymentId" in r.json()
    wait_no_deployment(c)
    assert c.list_apps() == []


def test_quirks_error_shapes(cluster):
    c = start(cluster, agents=1)
    r = api(cluster, "GET", "/v2/apps/nope")
    assert r.status_code == 404 and r.json() == {"message": "App '/nope' does not exist"}
    r = api(cluster, "GET", "/v2/apps/nope/versions/2001-01-01T00:00:00.000Z")
    assert r.status_code == 404 and r.json()["message"].startswith("App '/nope' does not exist")
    r = api(cluster, "DELETE", "/v2/deployments/abc")
    assert r.status_code == 404 and r.json() == {"message": "DeploymentPlan abc does not exist"}
    r = api(cluster, "GET", "/v2/groups/nope")
    assert r.status_code == 404 and r.json()["message"] == "Group '/nope' does not exist"
    r = api(cluster, "DELETE", "/v2/queue/nope/delay")
    assert r.status_code == 404 and r.json() == {"message": "App '/nope' does not exist"}
    r = api(cluster, "POST", "/v2/apps", raw="{")
    assert r.status_code == 400 and r.json()["message"] == "Invalid JSON" and "details" in r.json()
    r = api(cluster, "POST", "/v2/apps", {"id": "/e", "cmd": "true", "mem": "x"})
    assert r.status_code == 400
    assert r.json() == {"message": "Invalid JSON", "details": [
        {"path": "/mem", "errors": ["error.expected.jsnumber"]}]}
    r = api(cluster, "POST", "/v2/apps", {"id": "/e", "cmd": "true",
                                         "upgradeStrategy": {"minimumHealthCapacity": 2}})
    assert r.status_code == 422
    assert r.json() == {"message": "Object is not valid", "details": [
        {"path": "/upgradeStrategy/minimumHealthCapacity", "errors": ["is greater than 1"]}]}
    r = api(cluster, "PUT", "/v2/apps/e", {"version": "2001-01-01T00:00:00.000Z", "cmd": "x"})
    assert r.status_code == 422
    assert r.json()["details"][0]["errors"] == [
        "The 'version' field may only be combined with the 'id' field."]

    c.create_app("e", sleeper())
    wait_running(c, "/e", 1)
    r = api(cluster, "GET", "/v2/apps/e/tasks/e.no-such-task")
    assert r.status_code in (404, 405)
    r = api(cluster, "DELETE", "/v2/apps/e/tasks/e.no-such-task")
    assert r.status_code == 404 and r.json() == {"message": "Task 'e.no-such-task' does not exist"}
    r = api(cluster, "POST", "/v2/tasks/delete", {"ids": ["bogus"]})
    assert r.status_code == 400 and r.json()["message"].startswith("Invalid task id 'bogus'.")
    r = api(cluster, "POST", "/v2/apps", {"id": "/e", "cmd": "true"})
    assert r.status_code == 409 and r.json() == {"message": "An app with id [/e] already exists."}
    # every error left relay serving and answering JSON the client parses
    check_everything(cluster)
    assert c.ping().strip(b'"') == b"pong"


def test_quirks_only_keys_the_client_accepts(cluster):
    """Apps with health checks, failures, ports and containers, and every listing of them."""
    c = start(cluster, agents=1)
    c.create_app("hc", sleeper(health_checks=[MarathonHealthCheck(
        protocol="COMMAND", command="true", interval_seconds=1, grace_period_seconds=5,
        timeout_seconds=1, max_consecutive_failures=3)], port_definitions=[
        PortDefinition(port=0, name="http", protocol="tcp")],
        upgrade_strategy=MarathonUpgradeStrategy(minimum_health_capacity=0.5,
                                                 maximum_over_capacity=0.5),
        kill_selection="OLDEST_FIRST", env={"A": "b"}, labels={"x": "y"},
        constraints=[["hostname", "UNIQUE"]]))
    api(cluster, "POST", "/v2/apps", {
        "id": "/ctr", "cpus": 0.1, "mem": 16, "instances": 0,
        "container": {"type": "DOCKER", "docker": {"image": "busybox", "network": "BRIDGE",
                                                  "portMappings": [{"containerPort": 80}]},
                      "volumes": [{"containerPath": "/data", "hostPath": "/tmp", "mode": "RO"}]}})
    c.create_app("fails", sleeper(cmd="exit 3", backoff_seconds=30))
    c.create_app("waiting", sleeper(cpus=64))     # a deployment and a queue item that stay
    wait_for(lambda: c.get_app("hc", embed_tasks=True).tasks and
             c.get_app("hc").tasks[0].health_check_results and
             c.get_app("hc").tasks_healthy == 1, timeout=30, what="a health result")
    wait_for(lambda: c.get_app("fails").last_task_failure is not None, timeout=30,
             what="a lastTaskFailure")
    assert api(cluster, "GET", "/v2/deployments").json()
    wait_for(lambda: queue_has(cluster, "/waiting"), what="/waiting in the queue")
    check_everything(cluster)
    app = c.get_app("hc")
    assert app.tasks[0].health_check_results[0].alive is True
    assert app.kill_selection == "OLDEST_FIRST"
    failure = c.get_app("fails", embed_last_task_failure=True).last_task_failure
    assert isinstance(failure, MarathonTaskFailure) and failure.app_id == "/fails"
    ctr = c.get_app("ctr")
    assert ctr.container.type == "DOCKER" and ctr.container.docker.image == "busybox"
    assert sorted(a.id for a in c.list_apps(embed_tasks=True, embed_failures=True)) == \
        ["/ctr", "/fails", "/hc", "/waiting"]
    assert {t.app_id for t in c.list_tasks()} >= {"/hc"}
