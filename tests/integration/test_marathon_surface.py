"""End-to-end tests of the parts of Marathon's app surface that are easy to
get almost right: the task environment, label selectors, every embed of
/v2/apps, killSelection, taskKillGracePeriodSeconds, versionInfo and the
launch delay of /v2/queue.

A real butte-master, butte-agent and butte-relay on loopback; tasks are
shell processes whose environment is read from /proc. Every wait polls a
condition with a deadline.
"""
import os
import time

import pytest

from harness import (http, ok, relay_api, settled, start_relay_cluster, task_env,
                     wait_for)

AGENT = "cpus:8;mem:4096;disk:1024;ports(*):[33300-33399]"


def start(cluster, agent=True):
    start_relay_cluster(cluster, AGENT if agent else None)


api = relay_api


def get_app(cluster, app_id, query=""):
    return ok(api(cluster, "GET", "/v2/apps" + app_id + query))["app"]


def running(cluster, app_id, n, timeout=30):
    def ready():
        app = get_app(cluster, app_id)
        tasks = [t for t in app["tasks"] if t["state"] == "TASK_RUNNING"]
        return tasks if len(tasks) == n == len(app["tasks"]) else None
    return wait_for(ready, timeout=timeout, what=f"{app_id} to run {n} tasks")


def process_env(cluster, task_id):
    return task_env(cluster.dir, task_id)


def test_task_environment(cluster):
    start(cluster)
    ok(api(cluster, "POST", "/v2/apps", {
        "id": "/env/web", "cmd": "sleep 600", "cpus": 0.25, "mem": 32, "disk": 0,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "labels": {"tier": "front", "team-name": "a b", "x.y--z": "1"},
        "env": {"OWN": "value", "HOST_NOTE": "mine"}}), 201)
    app = get_app(cluster, "/env/web")
    t = running(cluster, "/env/web", 1)[0]
    _, env = wait_for(lambda: process_env(cluster, t["id"]), what="the task's environment")
    assert env["MARATHON_APP_ID"] == "/env/web"
    assert env["MARATHON_APP_VERSION"] == app["version"]
    assert env["MESOS_TASK_ID"] == t["id"] and env["HOST"] == t["host"]
    # resources as Marathon writes them (Java's Double.toString)
    assert env["MARATHON_APP_RESOURCE_CPUS"] == "0.25"
    assert env["MARATHON_APP_RESOURCE_MEM"] == "32.0"
    assert env["MARATHON_APP_RESOURCE_DISK"] == "0.0"
    assert env["MARATHON_APP_RESOURCE_GPUS"] == "0"
    assert "MARATHON_APP_DOCKER_IMAGE" not in env
    # labels: keys upper case, every run of other characters one '_'
    assert env["MARATHON_APP_LABEL_TIER"] == "front"
    assert env["MARATHON_APP_LABEL_TEAM_NAME"] == "a b"
    assert env["MARATHON_APP_LABEL_X_Y_Z"] == "1"
    assert sorted(env["MARATHON_APP_LABELS"].split(" ")) == ["TEAM_NAME", "TIER", "X_Y_Z"]
    assert env["PORT0"] == str(t["ports"][0]) == env["PORT"] == env["PORTS"]
    assert env["PORT_HTTP"] == env["PORT0"]
    assert env["OWN"] == "value" and env["HOST_NOTE"] == "mine"


def test_tasks_listing_filters_and_formats(cluster):
    start(cluster)
    ok(api(cluster, "POST", "/v2/apps", {"id": "/ls", "cmd": "sleep 600", "cpus": 0.1,
                                         "mem": 16, "instances": 1, "portDefinitions": []}),
       201)
    ok(api(cluster, "POST", "/v2/apps", {"id": "/never", "cmd": "sleep 600", "cpus": 64,
                                         "portDefinitions": []}), 201)
    t = running(cluster, "/ls", 1)[0]
    for q in ("?status=running", "?status=RUNNING", "?status[]=running&status[]=staging"):
        assert [x["id"] for x in ok(api(cluster, "GET", "/v2/tasks" + q))["tasks"]] == [t["id"]]
    assert ok(api(cluster, "GET", "/v2/tasks?status=staging"))["tasks"] == []
    assert ok(api(cluster, "GET", "/v2/tasks"))["tasks"][0]["servicePorts"] == []
    # the text/plain listing is gone from Marathon 1.10 unless asked for
    r = http("GET", cluster.relay_url + "/v2/tasks", headers={"Accept": "text/plain"})
    assert r.status_code == 406 and r.json()["message"]
    r = http("GET", cluster.relay_url + "/v2/tasks", headers={"Accept": "*/*"})
    assert r.status_code == 200 and r.json()["tasks"]


def test_label_selectors(cluster):
    start(cluster, agent=False)
    for app_id, labels in (("/a", {"env": "prod", "tier": "web"}),
                           ("/b", {"env": "dev", "tier": "db"}),
                           ("/c", {"env": "qa"}),
                           ("/d", {"odd key": "x,y"})):
        ok(api(cluster, "POST", "/v2/apps", {"id": app_id, "cmd": "true", "instances": 0,
                                             "labels": labels}), 201)

    def select(sel):
        r = api(cluster, "GET", "/v2/apps", params={"label": sel})
        return sorted(a["id"] for a in ok(r)["apps"])

    assert select("tier") == ["/a", "/b"]
    assert select("env==prod") == ["/a"]
    assert select("env!=prod") == ["/b", "/c", "/d"]
    assert select("env in (prod, qa)") == ["/a", "/c"]
    assert select("env notin (prod,qa)") == ["/b", "/d"]
    assert select("env in ()") == []
    assert select("tier, env!=dev") == ["/a"]
    assert select("env==prod,tier==db") == []
    assert select(r"odd\ key==x\,y") == ["/d"]
    for bad in ("env==", "env in (prod", "==x", "env in prod", "env===x"):
        r = api(cluster, "GET", "/v2/apps", params={"label": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["message"].startswith("Can not parse label selector"), r.text
    assert select("tier") == ["/a", "/b"]


def test_app_embeds(cluster):
    start(cluster)
    ok(api(cluster, "POST", "/v2/apps", {"id": "/emb", "cmd": "sleep 600", "cpus": 0.1,
                                         "mem": 16, "instances": 2, "portDefinitions": []}),
       201)
    running(cluster, "/emb", 2)
    settled(cluster)

    plain = ok(api(cluster, "GET", "/v2/apps"))["apps"][0]
    assert plain["tasksRunning"] == 2 and plain["deployments"] == []      # always
    assert "tasks" not in plain and "taskStats" not in plain
    assert "readinessCheckResults" not in plain
    for prefix in ("apps.", "app.", ""):
        a = ok(api(cluster, "GET", f"/v2/apps?embed={prefix}tasks&embed={prefix}taskStats"
                                   f"&embed={prefix}readiness"))["apps"][0]
        assert len(a["tasks"]) == 2 and a["readinessCheckResults"] == []
        stats = a["taskStats"]
        assert set(stats) == {"startedAfterLastScaling", "withLatestConfig", "totalSummary"}
        counts = stats["totalSummary"]["stats"]["counts"]
        assert counts == {"staged": 0, "running": 2, "healthy": 0, "unhealthy": 0}
        life = stats["totalSummary"]["stats"]["lifeTime"]
        assert life["averageSeconds"] >= 0 and life["medianSeconds"] >= 0
    one = get_app(cluster, "/emb", "?embed=app.taskStats")
    assert one["taskStats"]["withLatestConfig"]["stats"]["counts"]["running"] == 2
    assert len(one["tasks"]) == 2 and "lastTaskFailure" not in one      # none yet

    # a config change: the old tasks are outdated while the new ones come
    ok(api(cluster, "PUT", "/v2/apps/emb", {"cmd": "sleep 601",
                                            "upgradeStrategy": {"minimumHealthCapacity": 1,
                                                                "maximumOverCapacity": 0.5}}))

    def outdated():
        s = get_app(cluster, "/emb", "?embed=apps.taskStats")["taskStats"]
        return s.get("withOutdatedConfig")
    wait_for(outdated, timeout=30, what="tasks of the outdated config in taskStats")
    running(cluster, "/emb", 2)
    settled(cluster)

    marathon = pytest.importorskip("marathon")
    c = marathon.MarathonClient(cluster.relay_url)
    apps = c.list_apps(embed_task_stats=True, embed_readiness=True, embed_tasks=True)
    assert apps[0].task_stats.total_summary.stats.counts.running >= 2
    assert c.get_app("emb", embed_task_stats=True).task_stats.with_latest_config is not None


def scale_down_keeps(cluster, selection):
    app_id = "/ks-" + selection.lower().replace("_", "-")
    ok(api(cluster, "POST", "/v2/apps", {"id": app_id, "cmd": "sleep 600", "cpus": 0.1,
                                         "mem": 16, "instances": 1, "portDefinitions": [],
                                         "killSelection": selection}), 201)
    # a deploying app is locked (409, as in Marathon): each change waits for the last to end
    first = running(cluster, app_id, 1)[0]["id"]
    settled(cluster)
    ok(api(cluster, "PUT", "/v2/apps" + app_id, {"instances": 2}))
    second = [t["id"] for t in running(cluster, app_id, 2) if t["id"] != first][0]
    settled(cluster)
    ok(api(cluster, "PUT", "/v2/apps" + app_id, {"instances": 3}))
    third = [t["id"] for t in running(cluster, app_id, 3) if t["id"] not in (first, second)][0]
    settled(cluster)
    ok(api(cluster, "PUT", "/v2/apps" + app_id, {"instances": 1}))
    left = running(cluster, app_id, 1)[0]["id"]
    return left, first, third


def test_kill_selection(cluster):
    start(cluster)
    left, first, third = scale_down_keeps(cluster, "YOUNGEST_FIRST")
    assert left == first
    left, first, third = scale_down_keeps(cluster, "OLDEST_FIRST")
    assert left == third
    r = api(cluster, "POST", "/v2/apps", {"id": "/ks", "cmd": "true", "killSelection": "RANDOM"})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/killSelection"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_task_kill_grace_period_reaches_the_agent(cluster):
    """SIGTERM is trapped: the process lives until the app's grace period sends SIGKILL."""
    start(cluster)
    cmd = ('trap "date +%s.%N > $MESOS_SANDBOX/term" TERM; '
           'while true; do sleep 0.1; done')
    ok(api(cluster, "POST", "/v2/apps", {"id": "/grace", "cmd": cmd, "cpus": 0.1, "mem": 16,
                                         "portDefinitions": [], "taskKillGracePeriodSeconds": 5}),
       201)
    assert get_app(cluster, "/grace")["taskKillGracePeriodSeconds"] == 5
    t = running(cluster, "/grace", 1)[0]
    pid, env = wait_for(lambda: process_env(cluster, t["id"]), what="the task's process")
    term = os.path.join(env["MESOS_SANDBOX"], "term")
    ok(api(cluster, "DELETE", "/v2/apps/grace/tasks/" + t["id"]))
    wait_for(lambda: os.path.exists(term) and os.path.getsize(term) > 0, timeout=10,
             what="the task to get SIGTERM")
    with open(term) as f:
        termed = float(f.read())
    wait_for(lambda: not alive(pid), timeout=20, what="the task's process to end")
    lived = time.time() - termed
    # the agent's own default is 3 s; the app asked for 5
    assert 4.5 <= lived <= 12, lived


def test_queue_delay_and_its_reset(cluster):
    start(cluster)
    ok(api(cluster, "POST", "/v2/apps", {"id": "/crash", "cmd": "exit 3", "cpus": 0.1,
                                         "mem": 16, "portDefinitions": [],
                                         "backoffSeconds": 60, "backoffFactor": 2}), 201)

    def delayed():
        q = ok(api(cluster, "GET", "/v2/queue"))["queue"]
        items = [i for i in q if i["app"]["id"] == "/crash" and
                 i["delay"]["timeLeftSeconds"] > 0]
        return items[0] if items else None
    item = wait_for(delayed, timeout=30, what="/crash to wait out its launch delay")
    left = item["delay"]["timeLeftSeconds"]
    assert isinstance(left, int) and 50 < left <= 60 and item["delay"]["overdue"] is False
    assert item["count"] == 1
    failure = get_app(cluster, "/crash")["lastTaskFailure"]
    assert failure["state"] == "TASK_FAILED"

    r = api(cluster, "DELETE", "/v2/queue/crash/delay")
    assert r.status_code == 204 and r.content == b""
    # relaunched at once: a second failure, whose delay doubles
    wait_for(lambda: get_app(cluster, "/crash")["lastTaskFailure"]["taskId"] !=
             failure["taskId"], timeout=30, what="a relaunch after the reset")
    item = wait_for(delayed, timeout=30, what="the next delay")
    assert item["delay"]["timeLeftSeconds"] > 50


def test_version_info(cluster):
    start(cluster, agent=False)
    v1 = ok(api(cluster, "POST", "/v2/apps", {"id": "/vi", "cmd": "true", "instances": 0}),
            201)["version"]
    vi = get_app(cluster, "/vi")["versionInfo"]
    assert vi == {"lastScalingAt": v1, "lastConfigChangeAt": v1}
    settled(cluster)
    v2 = ok(api(cluster, "PUT", "/v2/apps/vi", {"instances": 0}))["version"]
    app = get_app(cluster, "/vi")
    assert app["version"] == v2
    assert app["versionInfo"] == {"lastScalingAt": v2, "lastConfigChangeAt": v1}
    settled(cluster)
    v3 = ok(api(cluster, "PUT", "/v2/apps/vi", {"cmd": "false"}))["version"]
    assert get_app(cluster, "/vi")["versionInfo"] == {"lastScalingAt": v3,
                                                      "lastConfigChangeAt": v3}
    settled(cluster)
    v4 = ok(api(cluster, "POST", "/v2/apps/vi/restart"))["version"]
    assert get_app(cluster, "/vi")["versionInfo"]["lastConfigChangeAt"] == v4
    assert v1 < v2 < v3 < v4
