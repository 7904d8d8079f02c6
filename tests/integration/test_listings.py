"""GET /v2/apps and GET /v2/tasks against the answers for one app or task.

relay writes its long listings from JSON texts it keeps per app and per
task until they change (framework/relay/listing.c), while one app
(GET /v2/apps/{id}) and one app's tasks (GET /v2/apps/{id}/tasks) are
built afresh each time. Every listed app and task must be exactly that
answer, keys in the same order, after launches, a task's death and its
replacement, a scale, a kill and a config change, so no stale text can
hide. Each comparison is made with the cluster at rest (no deployment,
every task running), since the two answers are two requests apart.
"""
import json
import os
import signal

from harness import http, settled, wait_for
from test_relay import api, app_processes, settled, sleeper, start, wait_running


def ordered(text):
    """JSON with objects as lists of pairs: key order is part of what is compared."""
    return json.loads(text, object_pairs_hook=list)


def same(a, b, what):
    """a == b, or a message naming the first member that differs."""
    if a == b:
        return
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                same(x, y, f"{what}[{i}]")
        assert len(a) == len(b), f"{what}: {len(a)} members against {len(b)}"
    raise AssertionError(f"{what}: {a!r} != {b!r}")


def listed_apps(cluster, query=""):
    return ordered(api(cluster, "GET", "/v2/apps" + query).text)[0][1]


def assert_listings_match(cluster):
    """Each listed app equals GET /v2/apps/{id}; each listed task its app's /tasks entry."""
    # ?embed makes the listing carry what the one-app answer always has
    full = listed_apps(cluster, "?embed=apps.tasks&embed=apps.lastTaskFailure")
    plain = listed_apps(cluster)
    assert len(full) == len(plain) > 0
    by_app = {}
    for app, bare in zip(full, plain):
        app_id = dict(app)["id"]
        one = ordered(api(cluster, "GET", "/v2/apps" + app_id).text)
        same(one, [("app", app)], app_id)
        # without embed: the same but for tasks and lastTaskFailure
        assert bare == [kv for kv in app if kv[0] not in ("tasks", "lastTaskFailure")], app_id
        tasks = ordered(api(cluster, "GET", "/v2/apps" + app_id + "/tasks").text)[0][1]
        same(tasks, dict(app)["tasks"], app_id + "/tasks")
        by_app[app_id] = tasks
    every = ordered(api(cluster, "GET", "/v2/tasks").text)[0][1]
    assert sorted(map(json.dumps, every)) == sorted(
        json.dumps(t) for ts in by_app.values() for t in ts)
    running = ordered(api(cluster, "GET", "/v2/tasks?status=running").text)[0][1]
    assert running == [t for t in every if dict(t)["state"] == "TASK_RUNNING"]


def test_listings_are_the_single_answers_through_changes(cluster):
    start(cluster)
    web = sleeper("/shop/web", 2, labels={"tier": "front"}, env={"HOST": "mine"},
                  portDefinitions=[{"port": 0, "name": "http"}, {"port": 0}])
    db = sleeper("/shop/db", 1, portDefinitions=[])
    for app in (web, db):
        r = api(cluster, "POST", "/v2/apps", app)
        assert r.status_code == 201, r.text
    wait_running(cluster, "/shop/web", 2)
    wait_running(cluster, "/shop/db", 1)
    settled(cluster)
    assert_listings_match(cluster)

    # a task dies: it is listed as failed or gone, its replacement as running
    pid = next(iter(app_processes(cluster, "/shop/db").values()))
    os.kill(pid, signal.SIGKILL)
    old = {t["id"] for t in http("GET", cluster.relay_url + "/v2/tasks").json()["tasks"]}
    wait_for(lambda: wait_running(cluster, "/shop/db", 1)["tasks"][0]["id"] not in old,
             timeout=30, what="the killed task's replacement")
    assert_listings_match(cluster)

    # scale, a config change (new definition text) and a kill without scale
    settled(cluster)
    r = api(cluster, "PUT", "/v2/apps/shop/web", {"instances": 3})
    assert r.status_code == 200, r.text
    wait_running(cluster, "/shop/web", 3)
    settled(cluster)
    assert_listings_match(cluster)
    r = api(cluster, "PUT", "/v2/apps/shop/db", {"labels": {"v": "2"}})
    assert r.status_code == 200, r.text
    wait_for(lambda: (dict(listed_apps(cluster)[0]).get("labels") is not None
                      and api(cluster, "GET", "/v2/deployments").json() == []),
             timeout=30, what="the config change to finish")
    assert any(dict(a)["id"] == "/shop/db" and dict(dict(a)["labels"]) == {"v": "2"}
               for a in listed_apps(cluster))
    assert_listings_match(cluster)
    task = http("GET", cluster.relay_url + "/v2/apps/shop/web/tasks").json()["tasks"][0]
    r = api(cluster, "DELETE", "/v2/apps/shop/web/tasks/" + task["id"])
    assert r.status_code == 200, r.text
    wait_for(lambda: task["id"] not in {t["id"] for t in wait_running(
        cluster, "/shop/web", 3)["tasks"]}, timeout=30, what="the killed task's replacement")
    settled(cluster)
    assert_listings_match(cluster)
