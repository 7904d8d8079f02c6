"""End-to-end tests of /v2/groups beyond creating and deleting: group
versions and rollbacks, embed parameters and dryRun.

A real butte-master, butte-agent and butte-relay on loopback; apps are
`sleep` processes (instances 0 where no process is needed). Every wait
polls a condition with a deadline.
"""
import pytest

from harness import ok, relay_api, start_relay_cluster, wait_for

AGENT = "cpus:8;mem:4096;disk:1024;ports(*):[33200-33299]"
SLEEPER = {"cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0, "backoffSeconds": 0.1}


def start(cluster, agent=False):
    start_relay_cluster(cluster, AGENT if agent else None)


api = relay_api


def app(app_id, **extra):
    return dict(SLEEPER, id=app_id, **extra)


def settled(cluster, timeout=30):
    wait_for(lambda: ok(api(cluster, "GET", "/v2/deployments")) == [], timeout=timeout,
             what="every deployment to finish")


def app_ids(group):
    return sorted(a["id"] for a in group.get("apps", []))


def test_group_versions_and_rollback(cluster):
    start(cluster)
    v1 = ok(api(cluster, "POST", "/v2/groups", {"id": "/shop", "apps": [
        app("web", cmd="sleep 601"), app("db")]}), 201)["version"]
    settled(cluster)
    v2 = ok(api(cluster, "PUT", "/v2/groups/shop", {"id": "/shop", "apps": [
        app("web", cmd="sleep 602"), app("cache")], "dependencies": ["/other"]}))["version"]
    settled(cluster)
    assert app_ids(ok(api(cluster, "GET", "/v2/groups/shop"))) == ["/shop/cache", "/shop/web"]

    versions = ok(api(cluster, "GET", "/v2/groups/shop/versions"))
    assert versions[:2] == [v2, v1], versions
    assert v2 in ok(api(cluster, "GET", "/v2/groups/versions"))      # the root's
    old = ok(api(cluster, "GET", f"/v2/groups/shop/versions/{v1}"))
    assert old["id"] == "/shop" and old["version"] == v1
    assert app_ids(old) == ["/shop/db", "/shop/web"]
    assert [a["cmd"] for a in old["apps"] if a["id"] == "/shop/web"] == ["sleep 601"]
    r = api(cluster, "GET", "/v2/groups/shop/versions/2001-01-01T00:00:00.000Z")
    assert r.status_code == 404 and r.json()["message"].startswith("Group '/shop' does not exist")

    # back to v1: web's old command, db back although it was deleted, cache stopped
    r = api(cluster, "PUT", "/v2/groups/shop", {"version": v1})
    res = ok(r)
    assert set(res) == {"deploymentId", "version"}
    assert r.headers["Marathon-Deployment-Id"] == res["deploymentId"]
    g = ok(api(cluster, "GET", "/v2/groups/shop"))
    assert app_ids(g) == ["/shop/db", "/shop/web"] and g["dependencies"] == []
    assert ok(api(cluster, "GET", "/v2/apps/shop/web"))["app"]["cmd"] == "sleep 601"
    assert api(cluster, "GET", "/v2/apps/shop/cache").status_code == 404
    settled(cluster)

    # a rollback is a version of its own, and survives a restart
    v3 = res["version"]
    cluster.relay.restart()
    assert ok(api(cluster, "GET", "/v2/groups/shop/versions"))[0] == v3
    # ... and the group can go forward again, by the older rollback path
    ok(api(cluster, "PUT", f"/v2/groups/shop/versions/{v2}"))
    assert app_ids(ok(api(cluster, "GET", "/v2/groups/shop"))) == ["/shop/cache", "/shop/web"]
    assert ok(api(cluster, "GET", "/v2/groups/shop"))["dependencies"] == ["/other"]
    settled(cluster)

    # a deleted group can be brought back from one of its versions
    ok(api(cluster, "DELETE", "/v2/groups/shop"))
    settled(cluster)
    assert api(cluster, "GET", "/v2/groups/shop").status_code == 404
    ok(api(cluster, "PUT", "/v2/groups/shop", {"version": v1}))
    assert app_ids(ok(api(cluster, "GET", "/v2/groups/shop"))) == ["/shop/db", "/shop/web"]

    # errors leave relay serving
    r = api(cluster, "PUT", "/v2/groups/shop", {"version": "2001-01-01T00:00:00.000Z"})
    assert r.status_code == 404 and "does not exist in version" in r.json()["message"]
    r = api(cluster, "PUT", "/v2/groups/shop", {"version": 5})
    assert r.status_code == 422 and r.json()["details"][0]["path"] == "/version"
    assert api(cluster, "GET", "/v2/groups/nope/versions").status_code == 404
    assert api(cluster, "DELETE", f"/v2/groups/shop/versions/{v1}").status_code == 405
    assert ok(api(cluster, "GET", "/v2/groups/shop"))["id"] == "/shop"


def test_group_rollback_with_the_python_client(cluster):
    marathon = pytest.importorskip("marathon")
    from marathon.models import MarathonGroup
    start(cluster)
    c = marathon.MarathonClient(cluster.relay_url)
    group = MarathonGroup(id="/py", apps=[marathon.MarathonApp(**{
        "id": "/py/a", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0})])
    v1 = c.create_group(group)["version"]
    settled(cluster)
    c.update_group("py", MarathonGroup(id="/py", apps=[marathon.MarathonApp(**{
        "id": "/py/b", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 0})]))
    settled(cluster)
    assert [a.id for a in c.get_group("py").apps] == ["/py/b"]
    result = c.rollback_group("py", v1)
    assert set(result) == {"deploymentId", "version"}
    assert [a.id for a in c.get_group("py").apps] == ["/py/a"]
    assert [g.id for g in c.list_groups()] == ["/py"]


def test_group_embeds(cluster):
    start(cluster, agent=True)
    ok(api(cluster, "POST", "/v2/groups", {"id": "/e", "apps": [app("top", instances=1)],
                                            "groups": [{"id": "sub", "apps": [app("low")]}]}),
       201)
    wait_for(lambda: ok(api(cluster, "GET", "/v2/apps/e/top"))["app"]["tasksRunning"] == 1,
             timeout=30, what="/e/top to run")

    # no embed: apps, groups and pods, apps as their bare definitions
    g = ok(api(cluster, "GET", "/v2/groups/e"))
    assert set(g) == {"id", "apps", "groups", "pods", "dependencies", "version"}
    assert app_ids(g) == ["/e/top"] and [s["id"] for s in g["groups"]] == ["/e/sub"]
    assert app_ids(g["groups"][0]) == ["/e/sub/low"]
    assert "tasks" not in g["apps"][0] and "tasksRunning" not in g["apps"][0]

    # only the subgroups: no apps at any level
    g = ok(api(cluster, "GET", "/v2/groups/e?embed=group.groups"))
    assert "apps" not in g and "apps" not in g["groups"][0] and "pods" not in g
    # only the apps: no subgroups
    g = ok(api(cluster, "GET", "/v2/groups/e?embed=group.apps"))
    assert app_ids(g) == ["/e/top"] and "groups" not in g

    # apps with their tasks, counts, deployments, lastTaskFailure and taskStats
    q = "&".join("embed=group.apps." + e for e in ("tasks", "counts", "lastTaskFailure",
                                                     "taskStats"))
    g = ok(api(cluster, "GET", f"/v2/groups/e?embed=group.apps&embed=group.groups&{q}"))
    top = g["apps"][0]
    assert len(top["tasks"]) == 1 and top["tasksRunning"] == 1 and top["deployments"] == []
    stats = top["taskStats"]
    assert stats["totalSummary"]["stats"]["counts"]["running"] == 1
    assert stats["withLatestConfig"]["stats"]["counts"]["running"] == 1
    assert stats["totalSummary"]["stats"]["lifeTime"]["averageSeconds"] >= 0
    assert "withOutdatedConfig" not in stats
    low = g["groups"][0]["apps"][0]
    assert low["tasks"] == [] and low["tasksRunning"] == 0 and low["taskStats"] == {}
    # group.apps.<name> alone embeds the apps too
    g = ok(api(cluster, "GET", "/v2/groups?embed=group.apps.counts"))
    assert g["id"] == "/" and "groups" not in g and g["apps"] == []

    # the python client parses every one of them
    pytest.importorskip("marathon")
    from marathon.models import MarathonGroup
    for path in ("/v2/groups/e", f"/v2/groups/e?embed=group.apps&embed=group.groups&{q}",
                 "/v2/groups?embed=group.groups"):
        MarathonGroup.from_json(ok(api(cluster, "GET", path)))


def test_group_dry_run_answers_the_steps(cluster):
    start(cluster)
    ok(api(cluster, "POST", "/v2/groups", {"id": "/d", "apps": [app("a"), app("b")]}), 201)
    settled(cluster)
    r = api(cluster, "PUT", "/v2/groups/d?dryRun=true", {"id": "/d", "apps": [
        app("a", cmd="sleep 601"), app("c")]})
    steps = ok(r)["steps"]
    actions = [[(a["action"], a["app"]) for a in s["actions"]] for s in steps]
    assert actions == [[("StopApplication", "/d/b")], [("StartApplication", "/d/c")],
                       [("RestartApplication", "/d/a"), ("ScaleApplication", "/d/c")]] or \
        actions == [[("StopApplication", "/d/b")], [("StartApplication", "/d/c")],
                    [("ScaleApplication", "/d/c"), ("RestartApplication", "/d/a")]], actions
    # nothing changed
    assert app_ids(ok(api(cluster, "GET", "/v2/groups/d"))) == ["/d/a", "/d/b"]
    assert ok(api(cluster, "GET", "/v2/deployments")) == []
