"""End-to-end tests of health checks: agents run them, relay counts, reports and acts.

Each test starts a real butte-master, a real butte-agent and a real
butte-relay on loopback. Services are busybox httpd processes serving a
directory the test controls, so a check is made to fail by removing the
file it asks for. Checks use intervalSeconds 1 to keep the tests short;
every wait polls a condition with a deadline.
"""
import os
import threading
import time

import pytest

from harness import http, wait_for

MASTER_FLAGS = ("--allocation_interval=100ms",)
AGENT = "cpus:8;mem:4096;disk:1024;ports(*):[31000-31199]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def start(cluster):
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_agent(resources=AGENT)
    cluster.start_relay()
    return cluster


def api(cluster, method, path, body=None, **kw):
    return http(method, cluster.relay_url + path, json=body, headers=JSON, **kw)


def www(cluster, name="www", health=True):
    """A directory served by the app's httpd, with or without its 'health' file."""
    d = os.path.join(cluster.dir, name)
    os.makedirs(d, exist_ok=True)
    if health:
        with open(os.path.join(d, "health"), "w") as f:
            f.write("ok\n")
    return d


def httpd_app(app_id, root, checks, instances=1, ports=1):
    return {"id": app_id, "cmd": f"exec busybox httpd -f -p $PORT0 -h {root}",
            "cpus": 0.1, "mem": 16, "instances": instances, "backoffSeconds": 0.1,
            "portDefinitions": [{"port": 0} for _ in range(ports)], "healthChecks": checks}


def http_check(**extra):
    hc = {"protocol": "HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 5,
          "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}
    hc.update(extra)
    return hc


def create(cluster, app):
    r = api(cluster, "POST", "/v2/apps", app)
    assert r.status_code == 201, r.text
    return r.json()


def get_app(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.lstrip("/"))
    assert r.status_code == 200, r.text
    return r.json()["app"]


def healthy_tasks(cluster, app_id, n):
    """The app has n running tasks, all healthy by counts and by their results."""
    app = get_app(cluster, app_id)
    tasks = [t for t in app["tasks"] if t["state"] == "TASK_RUNNING"]
    if app["tasksHealthy"] != n or app["tasksUnhealthy"] != 0 or len(tasks) != n:
        return None
    for t in tasks:
        res = t["healthCheckResults"]
        if not res or not all(r["alive"] for r in res):
            return None
    return app


def wait_healthy(cluster, app_id, n=1, timeout=30):
    return wait_for(lambda: healthy_tasks(cluster, app_id, n), timeout=timeout,
                    what=f"{app_id} to have {n} healthy tasks")


def task_ids(cluster, app_id):
    return {t["id"] for t in get_app(cluster, app_id)["tasks"]}


# --- validation and defaults ------------------------------------------------------

def test_health_check_defaults_and_validation(cluster):
    start(cluster)
    app = {"id": "/v", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0,
           "healthChecks": [{}, {"protocol": "tcp"},
                            {"protocol": "COMMAND", "command": {"value": "true"}},
                            {"protocol": "MESOS_HTTP", "port": 8080}]}
    r = api(cluster, "POST", "/v2/apps", app)
    assert r.status_code == 201, r.text
    hcs = get_app(cluster, "/v")["healthChecks"]
    assert hcs[0] == {"protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 300,
                      "intervalSeconds": 60, "timeoutSeconds": 20, "maxConsecutiveFailures": 3,
                      "delaySeconds": 15, "ignoreHttp1xx": False}
    assert hcs[1]["protocol"] == "TCP" and hcs[1]["portIndex"] == 0 and "path" not in hcs[1]
    assert hcs[2]["command"] == {"value": "true"} and "portIndex" not in hcs[2]
    assert hcs[3]["port"] == 8080 and "portIndex" not in hcs[3] and hcs[3]["path"] == "/"

    def invalid(checks, status=422, ports=None):
        body = {"id": "/bad", "cmd": "sleep 1", "healthChecks": checks}
        if ports is not None:
            body["portDefinitions"] = ports
        r = api(cluster, "POST", "/v2/apps", body)
        assert r.status_code == status, r.text
        return r.json()

    err = invalid([{"protocol": "HTTP", "port": 80, "portIndex": 0}])
    assert err["message"] == "Object is not valid"
    assert {"path": "/healthChecks(0)",
            "errors": ["HealthCheck must specify either a port or a portIndex"]} in err["details"]
    err = invalid([{"protocol": "TCP", "portIndex": 1}])
    assert err["details"][0]["path"] == "/healthChecks(0)"
    assert "Health check port indices must address" in err["details"][0]["errors"][0]
    err = invalid([{"protocol": "HTTP"}], ports=[])
    assert "Health check port indices must address" in err["details"][0]["errors"][0]
    err = invalid([{"protocol": "MESOS_HTTP"}, {"protocol": "MESOS_TCP"}])
    assert err["details"] == [{"path": "/", "errors": [
        "AppDefinition can contain at most one Mesos health check"]}]
    err = invalid([{"intervalSeconds": -1}])
    assert err["details"] == [{"path": "/healthChecks(0)/intervalSeconds",
                               "errors": ["got -1, expected 0 or more"]}]
    err = invalid([{"protocol": "COMMAND"}])
    assert err["details"][0]["path"] == "/healthChecks(0)"
    err = invalid([{"protocol": "GOPHER"}], status=400)
    assert err["message"] == "Invalid JSON"
    assert err["details"] == [{"path": "/healthChecks(0)/protocol",
                               "errors": ["error.unknown.enum.literal"]}]
    err = invalid([{"intervalSeconds": "often"}], status=400)
    assert err["details"][0]["path"] == "/healthChecks(0)/intervalSeconds"
    err = invalid(["HTTP"], status=400)
    assert err["details"][0]["errors"] == ["error.expected.jsobject"]
    assert api(cluster, "GET", "/v2/apps/bad").status_code == 404
    assert api(cluster, "GET", "/ping").status_code == 200


# --- HTTP: healthy, then failing ------------------------------------------------

def test_failing_http_check_kills_and_replaces_the_task(cluster):
    start(cluster)
    root = www(cluster)
    create(cluster, httpd_app("/web", root, [http_check()]))
    app = wait_healthy(cluster, "/web")
    task = app["tasks"][0]
    res = task["healthCheckResults"][0]
    assert res["consecutiveFailures"] == 0 and res["firstSuccess"] and res["lastSuccess"]
    assert res["lastFailure"] is None and res["lastFailureCause"] is None
    assert res["instanceId"] and task["id"].startswith(res["instanceId"])
    old = task["id"]

    os.unlink(os.path.join(root, "health"))
    removed = time.monotonic()

    def counted():
        t = [t for t in get_app(cluster, "/web")["tasks"] if t["id"] == old]
        return t and t[0]["healthCheckResults"] and \
            t[0]["healthCheckResults"][0]["consecutiveFailures"] >= 1 and t[0]
    t = wait_for(counted, timeout=15, what="a counted failure")
    r = t["healthCheckResults"][0]
    assert r["alive"] is False and r["lastFailure"]
    assert "404" in r["lastFailureCause"], r
    assert get_app(cluster, "/web")["tasksUnhealthy"] == 1

    wait_for(lambda: old not in task_ids(cluster, "/web"), timeout=20,
             what="the unhealthy task to be killed")
    # three failures one second apart: never before the second interval
    assert time.monotonic() - removed >= 2.0
    assert "killing unhealthy task" in cluster.relay.log()
    with open(os.path.join(root, "health"), "w") as f:
        f.write("ok\n")
    app = wait_healthy(cluster, "/web", timeout=30)
    assert app["tasks"][0]["id"] != old


def test_task_never_healthy_within_grace_period_is_replaced(cluster):
    start(cluster)
    create(cluster, {"id": "/mute", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                     "backoffSeconds": 0.1,
                     "healthChecks": [http_check(gracePeriodSeconds=3,
                                                 maxConsecutiveFailures=2)]})

    def running():
        ts = [t for t in get_app(cluster, "/mute")["tasks"] if t["state"] == "TASK_RUNNING"]
        return ts and ts[0]
    first = wait_for(running, timeout=20, what="the task to run")
    seen = time.monotonic()
    # within its grace period the task is neither healthy nor unhealthy
    app = get_app(cluster, "/mute")
    assert app["tasksHealthy"] == 0
    wait_for(lambda: first["id"] not in task_ids(cluster, "/mute"), timeout=20,
             what="the task to be replaced")
    assert time.monotonic() - seen >= 2.5
    wait_for(lambda: any(t["state"] == "TASK_RUNNING" for t in get_app(cluster, "/mute")["tasks"]),
             timeout=20, what="a replacement task")
    log = cluster.relay.log()
    assert "killing unhealthy task" in log and "Couldn't connect" in log


# --- TCP, several checks, maxConsecutiveFailures 0 --------------------------------

def test_tcp_checks_and_zero_max_failures_never_kills(cluster):
    start(cluster)
    root = www(cluster)
    checks = [{"protocol": "TCP", "portIndex": 0, "gracePeriodSeconds": 0,
               "intervalSeconds": 1, "timeoutSeconds": 1},
              {"protocol": "TCP", "portIndex": 1, "gracePeriodSeconds": 0,
               "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]
    create(cluster, httpd_app("/tcp", root, checks, ports=2))

    def failing():
        app = get_app(cluster, "/tcp")
        if app["tasksUnhealthy"] != 1 or not app["tasks"]:
            return None
        res = app["tasks"][0]["healthCheckResults"]
        bad = [r for r in res if r["consecutiveFailures"] >= 5]
        good = [r for r in res if r["alive"]]
        # the first check shows only once it recovered from a failure
        return len(bad) == 1 and len(good) == len(res) - 1 and app
    app = wait_for(failing, timeout=30, what="the second check to fail 5 times")
    task = app["tasks"][0]
    res = [r for r in task["healthCheckResults"] if not r["alive"]][0]
    assert res["firstSuccess"] is None
    assert "127.0.0.1:%d" % task["ports"][1] in res["lastFailureCause"]
    assert "refused" in res["lastFailureCause"]
    assert app["tasksHealthy"] == 0 and app["tasksRunning"] == 1
    # never killed: the same task keeps running
    assert task_ids(cluster, "/tcp") == {task["id"]}
    assert "killing unhealthy task" not in cluster.relay.log()

    # a TCP check alone on the served port passes
    create(cluster, httpd_app("/tcp-ok", www(cluster, "www2"), [checks[0]]))
    wait_healthy(cluster, "/tcp-ok")


# --- COMMAND and MESOS_HTTP ---------------------------------------------------------

def test_command_check_runs_in_the_sandbox_with_the_task_environment(cluster):
    start(cluster)
    check = {"protocol": "COMMAND", "gracePeriodSeconds": 0, "intervalSeconds": 1,
             "timeoutSeconds": 2, "delaySeconds": 0, "maxConsecutiveFailures": 0,
             "command": {"value": 'test -f ready && test "$MARATHON_APP_ID" = /cmd'}}
    create(cluster, {"id": "/cmd", "cmd": "touch ready; exec sleep 600", "cpus": 0.1, "mem": 16,
                     "healthChecks": [check]})
    wait_healthy(cluster, "/cmd")

    slow = dict(check, timeoutSeconds=1, command={"value": "sleep 30"})
    create(cluster, {"id": "/slow", "cmd": "exec sleep 600", "cpus": 0.1, "mem": 16,
                     "healthChecks": [slow]})

    def timed_out():
        ts = get_app(cluster, "/slow")["tasks"]
        res = ts[0]["healthCheckResults"] if ts else []
        return res and "timed out" in (res[0]["lastFailureCause"] or "") and res[0]
    res = wait_for(timed_out, timeout=20, what="the slow check to time out")
    assert res["alive"] is False


def test_mesos_http_check(cluster):
    start(cluster)
    root = www(cluster)
    create(cluster, httpd_app("/mh", root, [http_check(protocol="MESOS_HTTP", delaySeconds=0)]))
    wait_healthy(cluster, "/mh")
    state = cluster.master_state()
    tasks = [t for f in state["frameworks"] for t in f["tasks"]]
    assert tasks and tasks[0]["health_check"]["type"] == "HTTP"
    assert tasks[0]["statuses"][-1]["healthy"] is True


def test_https_check_does_not_verify_certificates(cluster):
    if not os.path.exists("/usr/bin/openssl"):
        pytest.skip("openssl is not installed")
    start(cluster)
    d = www(cluster, "tls", health=False)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    rc = os.system(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                   f"-nodes -keyout {key} -out {cert} -days 2 -subj /CN=butte >/dev/null 2>&1")
    assert rc == 0
    create(cluster, {"id": "/tls", "cpus": 0.1, "mem": 16,
                     "cmd": f"exec openssl s_server -accept $PORT0 -cert {cert} -key {key} "
                            f"-www -quiet",
                     "healthChecks": [http_check(protocol="HTTPS"),
                                      http_check(protocol="MESOS_HTTPS", delaySeconds=0)]})
    wait_healthy(cluster, "/tls")


# --- a plain Mesos framework: Mesos semantics, the agent kills ---------------------

def test_mesos_framework_health_check_semantics(cluster):
    from mesos_client import SchedulerClient, command_task
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_agent(resources=AGENT)
    client = SchedulerClient(cluster.master_url)
    try:
        client.subscribe(name="hc")
        offer = client.wait_offers()[0]
        good = command_task(offer, "good", cmd="touch ok; exec sleep 600")
        good["health_check"] = {"type": "COMMAND", "command": {"value": "test -f ok"},
                                "delay_seconds": 0, "interval_seconds": 0.2,
                                "grace_period_seconds": 0}
        bad = command_task(offer, "bad", cmd="exec sleep 600")
        bad["health_check"] = {"type": "HTTP", "http": {"port": 1, "path": "/"},
                               "delay_seconds": 0, "interval_seconds": 0.2,
                               "timeout_seconds": 1, "grace_period_seconds": 0,
                               "consecutive_failures": 2}
        client.launch(offer, [good, bad])
        seen = []

        def ack_until(task_id, pred):
            for st in client.updates(task_id):
                key = (task_id, st.get("uuid"))
                if key not in seen and st.get("uuid"):
                    seen.append(key)
                    client.acknowledge(st)
                if pred(st):
                    return st
            return None
        st = wait_for(lambda: ack_until("good", lambda s: s.get("healthy") is True),
                      what="a healthy update")
        assert st["state"] == "TASK_RUNNING" and st["source"] == "SOURCE_EXECUTOR"
        assert st["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
        st = wait_for(lambda: ack_until("bad", lambda s: s["state"] == "TASK_KILLED"),
                      what="the unhealthy task to be killed by the agent")
        unhealthy = [u for u in client.updates("bad") if u.get("healthy") is False]
        assert [u["message"].split(":")[0] for u in unhealthy[:2]] == [
            "health check failed 1 consecutive times", "health check failed 2 consecutive times"]
        assert client.updates("good")[-1]["state"] == "TASK_RUNNING"
    finally:
        client.close()


# --- the python marathon client ----------------------------------------------------

def test_python_marathon_client_parses_health(cluster):
    pytest.importorskip("marathon")
    from marathon import MarathonApp, MarathonClient
    from marathon.models.app import MarathonHealthCheck
    start(cluster)
    root = www(cluster)
    c = MarathonClient(cluster.relay_url)
    hc = MarathonHealthCheck(protocol="HTTP", path="/health", port_index=0,
                             grace_period_seconds=5, interval_seconds=1, timeout_seconds=1,
                             max_consecutive_failures=3, ignore_http1xx=False)
    c.create_app("py", MarathonApp(cmd=f"exec busybox httpd -f -p $PORT0 -h {root}", cpus=0.1,
                                   mem=16, instances=2, health_checks=[hc]))
    wait_for(lambda: c.get_app("py").tasks_healthy == 2, timeout=30, what="2 healthy tasks")
    app = c.get_app("py")
    assert app.tasks_unhealthy == 0 and app.health_checks[0].protocol == "HTTP"
    for t in c.list_tasks("py"):
        r = t.health_check_results[0]
        assert r.alive is True and r.consecutive_failures == 0 and r.first_success is not None
        assert r.instance_id
    apps = c.list_apps(embed_tasks=True)
    assert apps[0].tasks[0].health_check_results[0].alive


# --- a CPU-loaded relay kills no healthy service -------------------------------------

def test_healthy_services_survive_a_loaded_relay(cluster):
    start(cluster)
    root = www(cluster)
    create(cluster, httpd_app("/busy", root,
                              [http_check(maxConsecutiveFailures=1, timeoutSeconds=2)],
                              instances=3))
    before = {t["id"] for t in wait_healthy(cluster, "/busy", n=3)["tasks"]}

    stop = threading.Event()
    done = []

    def hammer():
        n = 0
        deadline = time.monotonic() + 8
        while not stop.is_set() and time.monotonic() < deadline and n < 20000:
            for path in ("/v2/apps?embed=apps.tasks", "/v2/tasks", "/v2/apps/busy"):
                http("GET", cluster.relay_url + path)
                n += 1
        done.append(n)
    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        samples = 0
        while any(t.is_alive() for t in threads):
            app = get_app(cluster, "/busy")
            assert {t["id"] for t in app["tasks"]} == before
            assert app["tasksUnhealthy"] == 0
            samples += 1
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert sum(done) > 100 and samples > 0
    app = wait_healthy(cluster, "/busy", n=3)
    assert {t["id"] for t in app["tasks"]} == before
    assert "killing unhealthy task" not in cluster.relay.log()
