"""End-to-end tests of deployments: rolling restarts, locks, rollback and cancel,
readiness checks, groups and dependency order.

Each test starts a real butte-master, a real butte-agent and a real butte-relay
on loopback. Services are busybox httpd processes serving a directory the test
controls: a health or readiness check is made to pass or fail by creating or
removing the file it asks for. Every wait polls a condition with a deadline.
"""
import os
import threading
import time

from harness import http, wait_for

MASTER_FLAGS = ("--allocation_interval=100ms",)
AGENT = "cpus:8;mem:4096;disk:1024;ports(*):[33000-33199]"   # apart from other suites
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def start(cluster, *relay_flags):
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_agent(resources=AGENT)
    cluster.start_relay(*relay_flags)
    return cluster


def api(cluster, method, path, body=None, **kw):
    return http(method, cluster.relay_url + path, json=body, headers=JSON, **kw)


def www(cluster, name, health=True):
    d = os.path.join(cluster.dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "health")
    if health:
        with open(path, "w") as f:
            f.write("ok\n")
    elif os.path.exists(path):
        os.unlink(path)
    return d


def httpd_app(app_id, root, instances=1, **extra):
    app = {"id": app_id, "cmd": f"exec busybox httpd -f -p $PORT0 -h {root}",
           "cpus": 0.1, "mem": 16, "instances": instances, "backoffSeconds": 0.1,
           "portDefinitions": [{"port": 0, "name": "http"}],
           "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0,
                             "gracePeriodSeconds": 30, "intervalSeconds": 1,
                             "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]}
    app.update(extra)
    return app


def get_app(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.lstrip("/"))
    assert r.status_code == 200, r.text
    return r.json()["app"]


def healthy(task):
    res = task.get("healthCheckResults") or []
    return task["state"] == "TASK_RUNNING" and res and all(r["alive"] for r in res)


def deployments(cluster):
    r = api(cluster, "GET", "/v2/deployments")
    assert r.status_code == 200, r.text
    return r.json()


def settled(cluster, timeout=60):
    wait_for(lambda: deployments(cluster) == [], timeout=timeout,
             what="every deployment to finish")


def deployed(cluster, app_id, n, timeout=60):
    """n healthy tasks of the app's current version and no deployment left."""
    def ok():
        app = get_app(cluster, app_id)
        cur = [t for t in app["tasks"] if t["version"] == app["version"] and healthy(t)]
        return app if len(cur) == n == len(app["tasks"]) and not app["deployments"] else None
    return wait_for(ok, timeout=timeout, what=f"{app_id} to run {n} healthy tasks")


# --- rolling restarts -----------------------------------------------------------------

def test_rolling_upgrade_keeps_minimum_health(cluster):
    start(cluster)
    root = www(cluster, "roll")
    app = httpd_app("/roll", root, instances=4,
                    upgradeStrategy={"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0})
    r = api(cluster, "POST", "/v2/apps", app)
    assert r.status_code == 201, r.text
    old = {t["id"] for t in deployed(cluster, "/roll", 4)["tasks"]}

    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            tasks = get_app(cluster, "/roll")["tasks"]
            samples.append((sum(1 for t in tasks if healthy(t)), len(tasks)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = api(cluster, "PUT", "/v2/apps/roll", {"env": {"RELEASE": "2"}})
        assert r.status_code == 200, r.text
        dep = r.json()["deploymentId"]
        assert r.headers["Marathon-Deployment-Id"] == dep
        plan = [d for d in deployments(cluster) if d["id"] == dep]
        assert plan and plan[0]["currentActions"][0]["action"] == "RestartApplication"
        # a second change while the first runs: Marathon's 409 with the lock holder
        r = api(cluster, "PUT", "/v2/apps/roll", {"instances": 5})
        assert r.status_code == 409, r.text
        assert r.json()["deployments"] == [{"id": dep}]
        assert "locked" in r.json()["message"]
        final = deployed(cluster, "/roll", 4, timeout=90)
    finally:
        stop.set()
        sampler.join()
    assert not ({t["id"] for t in final["tasks"]} & old), "old tasks are left"
    assert final["env"] == {"RELEASE": "2"}
    assert len(samples) >= 3
    assert min(h for h, _ in samples) >= 2, f"fewer than 2 healthy: {samples}"
    assert max(n for _, n in samples) <= 4, f"more than 4 tasks at once: {samples}"


def test_default_strategy_starts_new_before_killing_old(cluster):
    start(cluster)
    root = www(cluster, "def")
    api(cluster, "POST", "/v2/apps", httpd_app("/def", root, instances=2))
    old = {t["id"] for t in deployed(cluster, "/def", 2)["tasks"]}
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(sum(1 for t in get_app(cluster, "/def")["tasks"] if healthy(t)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = api(cluster, "POST", "/v2/apps/def/restart")
        assert r.status_code == 200, r.text
        final = deployed(cluster, "/def", 2)
    finally:
        stop.set()
        sampler.join()
    assert not ({t["id"] for t in final["tasks"]} & old)
    # minimumHealthCapacity 1: both old tasks serve until new ones are healthy
    assert min(samples) >= 2, samples


# --- rollback and cancel ---------------------------------------------------------------

def stuck_upgrade(cluster, name):
    """A 2-instance app whose new version never gets healthy; returns (old ids, dep id)."""
    good = www(cluster, name + "-good")
    bad = www(cluster, name + "-bad", health=False)
    api(cluster, "POST", "/v2/apps", httpd_app("/" + name, good, instances=2))
    old = {t["id"] for t in deployed(cluster, "/" + name, 2)["tasks"]}
    r = api(cluster, "PUT", "/v2/apps/" + name,
            {"cmd": f"exec busybox httpd -f -p $PORT0 -h {bad}"})
    assert r.status_code == 200, r.text
    dep = r.json()["deploymentId"]
    # new tasks run but never pass their health check: the deployment stays
    wait_for(lambda: len(get_app(cluster, "/" + name)["tasks"]) == 4, timeout=30,
             what="the new tasks to start beside the old ones")
    return old, dep


def test_stuck_deployment_rolls_back_and_survives_a_relay_restart(cluster):
    start(cluster)
    old, dep = stuck_upgrade(cluster, "stuck")
    assert [d["id"] for d in deployments(cluster)] == [dep]
    app = get_app(cluster, "/stuck")
    assert app["deployments"] == [{"id": dep}]
    assert {t["id"] for t in app["tasks"] if healthy(t)} == old

    # the deployment and its rollback information outlive relay
    cluster.relay.restart()
    assert [d["id"] for d in deployments(cluster)] == [dep]

    r = api(cluster, "DELETE", "/v2/deployments/" + dep)
    assert r.status_code == 200, r.text
    back = r.json()["deploymentId"]
    assert back != dep and r.json()["version"]
    app = deployed(cluster, "/stuck", 2)
    # rolled back to the old version: the old tasks were kept, the new ones went
    assert {t["id"] for t in app["tasks"]} == old
    assert "-good" in app["cmd"]

    r = api(cluster, "DELETE", "/v2/deployments/" + dep)
    assert r.status_code == 404
    assert r.json() == {"message": f"DeploymentPlan {dep} does not exist"}


def test_stuck_deployment_cancelled_with_force(cluster):
    start(cluster)
    old, dep = stuck_upgrade(cluster, "cancel")
    r = api(cluster, "DELETE", f"/v2/deployments/{dep}?force=true")
    assert r.status_code == 202, r.text
    assert deployments(cluster) == []
    app = get_app(cluster, "/cancel")
    # cancelled, not rolled back: the app keeps its new definition
    assert "-bad" in app["cmd"] and app["deployments"] == []
    # and a forced change overrides a running deployment at once
    r = api(cluster, "PUT", "/v2/apps/cancel", {"instances": 3})
    assert r.status_code == 200, r.text
    dep2 = r.json()["deploymentId"]
    r = api(cluster, "PUT", "/v2/apps/cancel?force=true", {"instances": 1})
    assert r.status_code == 200, r.text
    assert dep2 not in [d["id"] for d in deployments(cluster)]


# --- readiness checks ------------------------------------------------------------------

def test_readiness_check_holds_the_deployment(cluster):
    start(cluster)
    root = www(cluster, "rdy")
    app = httpd_app("/rdy", root, instances=1, readinessChecks=[
        {"name": "warm", "protocol": "HTTP", "path": "/ready", "portName": "http",
         "intervalSeconds": 1, "timeoutSeconds": 0, "httpStatusCodesForReady": [200],
         "preserveLastResponse": True}])
    r = api(cluster, "POST", "/v2/apps", app)
    assert r.status_code == 201, r.text
    assert get_app(cluster, "/rdy")["readinessChecks"][0]["portName"] == "http"
    dep = r.headers["Marathon-Deployment-Id"]

    def not_ready():
        ds = deployments(cluster)
        if not ds:
            return None
        res = ds[0]["currentActions"][0]["readinessCheckResults"]
        return res if res and res[0]["ready"] is False and "lastResponse" in res[0] else None

    res = wait_for(not_ready, timeout=30, what="a readiness result that is not ready")
    assert res[0]["name"] == "warm" and res[0]["lastResponse"]["status"] == 404
    t = get_app(cluster, "/rdy")["tasks"][0]
    assert healthy(t) and res[0]["taskId"] == t["id"]
    assert [d["id"] for d in deployments(cluster)] == [dep]

    with open(os.path.join(root, "ready"), "w") as f:
        f.write("yes\n")
    settled(cluster, timeout=30)

    bad = dict(app, id="/rdy2")
    bad["readinessChecks"] = [{"portName": "nope"}]
    r = api(cluster, "POST", "/v2/apps", bad)
    assert r.status_code == 422, r.text


# --- groups and dependencies -------------------------------------------------------------

def test_group_apps_start_in_dependency_order(cluster):
    start(cluster)
    db_root = www(cluster, "db", health=False)
    group = {"id": "/shop", "apps": [
        httpd_app("db", db_root),
        {"id": "web", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2,
         "dependencies": ["db"]}]}
    r = api(cluster, "POST", "/v2/groups", group)
    assert r.status_code == 201, r.text
    dep = r.json()["deploymentId"]
    plan = [d for d in deployments(cluster) if d["id"] == dep][0]
    assert plan["affectedApps"] == ["/shop/db", "/shop/web"]
    assert [[a["action"] for a in s["actions"]] for s in plan["steps"]] == [
        ["StartApplication", "StartApplication"], ["ScaleApplication"], ["ScaleApplication"]]
    assert [s["actions"][0]["app"] for s in plan["steps"][1:]] == ["/shop/db", "/shop/web"]
    assert get_app(cluster, "/shop/web")["dependencies"] == ["/shop/db"]

    # db runs but is not healthy: web must not start
    wait_for(lambda: any(t["state"] == "TASK_RUNNING" for t in get_app(cluster, "/shop/db")["tasks"]),
             timeout=30, what="db to run")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert get_app(cluster, "/shop/web")["tasks"] == [], "web started before db was healthy"
        time.sleep(0.1)

    www(cluster, "db", health=True)
    wait_for(lambda: get_app(cluster, "/shop/db")["tasksHealthy"] == 1, timeout=30,
             what="db to be healthy")
    wait_for(lambda: get_app(cluster, "/shop/web")["tasksRunning"] == 2, timeout=30,
             what="web to start after db")
    web = get_app(cluster, "/shop/web")
    db = get_app(cluster, "/shop/db")
    healthy_at = min(r["lastSuccess"] for t in db["tasks"] for r in t["healthCheckResults"])
    assert min(t["stagedAt"] for t in web["tasks"]) >= healthy_at[:19]
    settled(cluster)

    g = api(cluster, "GET", "/v2/groups/shop").json()
    assert g["id"] == "/shop" and sorted(a["id"] for a in g["apps"]) == ["/shop/db", "/shop/web"]
    root = api(cluster, "GET", "/v2/groups").json()
    assert root["id"] == "/" and [s["id"] for s in root["groups"]] == ["/shop"]

    # scaleBy, then delete
    r = api(cluster, "PUT", "/v2/groups/shop", {"scaleBy": 2})
    assert r.status_code == 200, r.text
    assert get_app(cluster, "/shop/web")["instances"] == 4
    assert get_app(cluster, "/shop/db")["instances"] == 2
    r = api(cluster, "DELETE", "/v2/groups/shop?force=true")
    assert r.status_code == 200, r.text
    assert api(cluster, "GET", "/v2/apps/shop/web").status_code == 404
    settled(cluster)
    assert api(cluster, "GET", "/v2/groups/shop").status_code == 404


def test_group_errors(cluster):
    start(cluster)
    sleeper = {"cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0}
    r = api(cluster, "POST", "/v2/groups", {"id": "/g", "apps": [dict(sleeper, id="a")]})
    assert r.status_code == 201, r.text
    r = api(cluster, "POST", "/v2/groups", {"id": "/g"})
    assert r.status_code == 409 and "already created" in r.json()["message"]
    r = api(cluster, "POST", "/v2/groups", {"id": "/c", "apps": [
        dict(sleeper, id="x", dependencies=["y"]), dict(sleeper, id="y", dependencies=["x"])]})
    assert r.status_code == 422 and "cyclic" in r.text
    r = api(cluster, "POST", "/v2/groups", {"id": "/v", "apps": [dict(sleeper, id="a", cpus="x")]})
    assert r.status_code == 400 and r.json()["details"][0]["path"] == "/apps(0)/cpus"
    r = api(cluster, "POST", "/v2/groups", {"id": "/w", "apps": [{"id": "a"}]})
    assert r.status_code == 422, r.text
    r = api(cluster, "POST", "/v2/groups", {"id": "/o", "apps": [dict(sleeper, id="/elsewhere")]})
    assert r.status_code == 422 and "not a child" in r.text
    assert api(cluster, "GET", "/v2/groups/nope").status_code == 404
    assert api(cluster, "DELETE", "/v2/groups/nope").status_code == 404
    r = http("POST", cluster.relay_url + "/v2/groups", data="{", headers=JSON)
    assert r.status_code == 400 and r.json()["message"] == "Invalid JSON"
    # an empty group exists until deleted, and is stored
    r = api(cluster, "POST", "/v2/groups", {"id": "/empty", "dependencies": ["/g"]})
    assert r.status_code == 201, r.text
    cluster.relay.restart()
    g = api(cluster, "GET", "/v2/groups/empty").json()
    assert g["apps"] == [] and g["dependencies"] == ["/g"]
    assert api(cluster, "GET", "/v2/apps/g/a").json()["app"]["id"] == "/g/a"


def test_put_apps_array_is_one_deployment(cluster):
    start(cluster)
    apps = [{"id": "/p1", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 1},
            {"id": "/p2", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2}]
    r = api(cluster, "PUT", "/v2/apps", apps)
    assert r.status_code == 200, r.text
    dep = r.json()["deploymentId"]
    plan = [d for d in deployments(cluster) if d["id"] == dep][0]
    assert plan["affectedApps"] == ["/p1", "/p2"]
    wait_for(lambda: get_app(cluster, "/p2")["tasksRunning"] == 2, timeout=30, what="p2 to run")
    settled(cluster)
    r = api(cluster, "PATCH", "/v2/apps", [{"id": "/p1", "instances": 2}])
    assert r.status_code == 200, r.text
    assert get_app(cluster, "/p1")["instances"] == 2 and get_app(cluster, "/p1")["cmd"] == "sleep 600"
    r = api(cluster, "PUT", "/v2/apps", {"id": "/p1"})
    assert r.status_code == 400, r.text
