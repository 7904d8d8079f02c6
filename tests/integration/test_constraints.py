"""Placement constraints in relay, with Marathon's semantics and validation.

Three real agents with their own addresses and hostnames (127.0.0.1,
127.0.0.2, 127.0.0.3) and attributes:

    agent1  rack:a  kind:ssd-fast  level:10
    agent2  rack:b  kind:ssd       level:2.5
    agent3  rack:c                 level:10.0004   (no "kind")

Each test creates apps with constraints through the REST API and checks
where their tasks run (the task's host) and, for instances that cannot be
placed, that /v2/queue says why (UnfulfilledConstraint).
"""
import collections

import pytest

from harness import http, wait_for

MASTER_FLAGS = ("--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=3",
                "--allocation_interval=100ms")
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
AGENTS = (("127.0.0.1", "rack:a;kind:ssd-fast;level:10", "[31000-31099]"),
          ("127.0.0.2", "rack:b;kind:ssd;level:2.5", "[31100-31199]"),
          ("127.0.0.3", "rack:c;level:10.0004", "[31200-31299]"))
HOSTS = [a[0] for a in AGENTS]


def start(cluster):
    cluster.start_master(*MASTER_FLAGS)
    for ip, attrs, ports in AGENTS:
        cluster.start_agent(f"--attributes={attrs}", f"--hostname={ip}",
                            resources=f"cpus:8;mem:4096;disk:1024;ports(*):{ports}", ip=ip)
    cluster.start_relay()
    # relay learns every agent's attributes from its offers: one task per agent first
    create(cluster, "/warmup", 3, [["hostname", "UNIQUE"]])
    wait_placed(cluster, "/warmup", 3)
    return cluster


def api(cluster, method, path, body=None, **kw):
    return http(method, cluster.relay_url + path, json=body, headers=JSON, **kw)


def create(cluster, app_id, instances, constraints, status=201):
    r = api(cluster, "POST", "/v2/apps", {
        "id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": instances,
        "backoffSeconds": 0.1, "constraints": constraints})
    assert r.status_code == status, r.text
    return r.json()


def tasks(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.lstrip("/"))
    assert r.status_code == 200, r.text
    return [t for t in r.json()["app"]["tasks"] if t["state"] == "TASK_RUNNING"]


def hosts(cluster, app_id):
    """host -> number of running tasks of the app"""
    return collections.Counter(t["host"] for t in tasks(cluster, app_id))


def wait_placed(cluster, app_id, n, timeout=30):
    return wait_for(lambda: (lambda h: h if sum(h.values()) == n else None)(
        hosts(cluster, app_id)), timeout=timeout, what=f"{app_id} to run {n} tasks")


def queue_item(cluster, app_id, embed=False):
    path = "/v2/queue?embed=lastUnusedOffers" if embed else "/v2/queue"
    for item in api(cluster, "GET", path).json()["queue"]:
        if item["app"]["id"] == app_id:
            return item
    return None


def wait_refused_for_constraint(cluster, app_id, count):
    """The queue holds `count` instances of the app, refused for UnfulfilledConstraint."""
    def refused():
        item = queue_item(cluster, app_id, embed=True)
        if item is None or item["count"] != count:
            return None
        summary = item["processedOffersSummary"]
        last = {r["reason"]: r["declined"] for r in summary["rejectSummaryLastOffers"]}
        if last.get("UnfulfilledConstraint", 0) < 1:
            return None
        offers = item.get("lastUnusedOffers") or []
        if not any("UnfulfilledConstraint" in o["reason"] for o in offers):
            return None
        return item
    return wait_for(refused, timeout=30, what=f"/v2/queue to say why {app_id} waits")


def offers_seen(cluster):
    counters = api(cluster, "GET", "/metrics").json()["counters"]
    return counters["marathon.mesos.offers.incoming.counter"]["count"]


def stays(cluster, app_id, expected, offers=6):
    """The placement holds while relay matches `offers` more offers (something must wait)."""
    before = offers_seen(cluster)
    wait_for(lambda: offers_seen(cluster) >= before + offers, timeout=30,
             what=f"{offers} more offers")
    assert hosts(cluster, app_id) == expected


# --- UNIQUE -----------------------------------------------------------------------------

def test_unique_hostname_places_three_of_four_and_says_why(cluster):
    start(cluster)
    create(cluster, "/uniq", 4, [["hostname", "UNIQUE"]])
    placed = wait_placed(cluster, "/uniq", 3)
    assert sorted(placed) == HOSTS and set(placed.values()) == {1}
    item = wait_refused_for_constraint(cluster, "/uniq", 1)
    summary = item["processedOffersSummary"]
    assert summary["unusedOffersCount"] >= 1
    launch = {r["reason"]: r["declined"] for r in summary["rejectSummaryLaunchAttempt"]}
    assert launch["UnfulfilledConstraint"] >= 1 and launch["InsufficientCpus"] == 0
    unused = item["lastUnusedOffers"][0]
    assert unused["offer"]["hostname"] in HOSTS and unused["reason"] == ["UnfulfilledConstraint"]
    assert hosts(cluster, "/uniq") == placed

    # the python client parses the queue and its reasons
    marathon = pytest.importorskip("marathon")
    q = [i for i in marathon.MarathonClient(cluster.relay_url).list_queue(
        embed_last_unused_offers=True) if i.app.id == "/uniq"]
    assert q and q[0].count == 1 and q[0].last_unused_offers

    # scaled to 3 the queue is empty; "@hostname" is the same field
    api(cluster, "PUT", "/v2/apps/uniq?force=true", {"instances": 3})
    wait_for(lambda: queue_item(cluster, "/uniq") is None, what="/uniq to leave the queue")
    create(cluster, "/uniq2", 4, [["@hostname", "UNIQUE"]])
    assert sorted(wait_placed(cluster, "/uniq2", 3)) == HOSTS
    wait_refused_for_constraint(cluster, "/uniq2", 1)


def test_unique_attribute(cluster):
    start(cluster)
    create(cluster, "/rack-uniq", 3, [["rack", "UNIQUE"], ["level", "UNIQUE"]])
    # level is 10 on agent1 and 10 (10.0004 rounded) on agent3: only two distinct levels
    placed = wait_placed(cluster, "/rack-uniq", 2)
    assert "127.0.0.2" in placed and set(placed.values()) == {1}
    wait_refused_for_constraint(cluster, "/rack-uniq", 1)


# --- GROUP_BY ----------------------------------------------------------------------------

def test_group_by_attribute_spreads_evenly(cluster):
    start(cluster)
    create(cluster, "/spread", 6, [["rack", "GROUP_BY"]])
    placed = wait_placed(cluster, "/spread", 6)
    assert placed == {h: 2 for h in HOSTS}, placed
    api(cluster, "PUT", "/v2/apps/spread?force=true", {"instances": 9})
    placed = wait_placed(cluster, "/spread", 9)
    assert placed == {h: 3 for h in HOSTS}, placed


def test_group_by_with_a_count(cluster):
    start(cluster)
    create(cluster, "/counted", 3, [["rack", "GROUP_BY", "3"]])
    assert wait_placed(cluster, "/counted", 3) == {h: 1 for h in HOSTS}
    # a count as a JSON number, as the python client sends MarathonConstraint(..., 3)
    app = create(cluster, "/numbered", 6, [["hostname", "GROUP_BY", 3]])
    assert app["constraints"] == [["hostname", "GROUP_BY", "3"]]
    assert wait_placed(cluster, "/numbered", 6) == {h: 2 for h in HOSTS}
    # a count above the values there are: one task per value, the rest wait
    create(cluster, "/toomany", 4, [["rack", "GROUP_BY", "4"]])
    assert wait_placed(cluster, "/toomany", 3) == {h: 1 for h in HOSTS}
    wait_refused_for_constraint(cluster, "/toomany", 1)


# --- MAX_PER ------------------------------------------------------------------------------

def test_max_per_holds(cluster):
    start(cluster)
    create(cluster, "/maxper", 7, [["rack", "MAX_PER", "2"]])
    placed = wait_placed(cluster, "/maxper", 6)
    assert placed == {h: 2 for h in HOSTS}, placed
    wait_refused_for_constraint(cluster, "/maxper", 1)
    stays(cluster, "/maxper", placed)

    # per value: level 10 (agents 1 and 3) counts as one value
    create(cluster, "/maxlevel", 5, [["level", "MAX_PER", "2"]])
    placed = wait_placed(cluster, "/maxlevel", 4)
    assert placed["127.0.0.2"] == 2
    assert placed["127.0.0.1"] + placed["127.0.0.3"] == 2
    wait_refused_for_constraint(cluster, "/maxlevel", 1)


# --- LIKE / UNLIKE -------------------------------------------------------------------------

def test_like_and_unlike_match_the_whole_value(cluster):
    start(cluster)
    # "ssd" matches agent2's "ssd" but not agent1's "ssd-fast"
    create(cluster, "/like", 2, [["kind", "LIKE", "ssd"]])
    assert wait_placed(cluster, "/like", 2) == {"127.0.0.2": 2}
    # an agent without the attribute is only ever good for UNLIKE
    create(cluster, "/unlike", 2, [["kind", "UNLIKE", "ssd.*"]])
    assert wait_placed(cluster, "/unlike", 2) == {"127.0.0.3": 2}
    create(cluster, "/likeany", 3, [["kind", "LIKE", "ssd.*"], ["hostname", "UNIQUE"]])
    assert sorted(wait_placed(cluster, "/likeany", 2)) == ["127.0.0.1", "127.0.0.2"]
    wait_refused_for_constraint(cluster, "/likeany", 1)
    # hostnames, alternation anchored as a whole, Java's \d
    create(cluster, "/likehost", 3, [["hostname", "LIKE", r"127\.0\.0\.[12]"],
                                     ["hostname", "UNIQUE"]])
    assert sorted(wait_placed(cluster, "/likehost", 2)) == ["127.0.0.1", "127.0.0.2"]
    create(cluster, "/unlikehost", 3, [["hostname", "UNLIKE", "127.0.0.1"],
                                       ["hostname", "UNIQUE"]])
    assert sorted(wait_placed(cluster, "/unlikehost", 2)) == ["127.0.0.2", "127.0.0.3"]
    create(cluster, "/alt", 3, [["rack", "LIKE", "a|c"], ["hostname", "UNIQUE"]])
    assert sorted(wait_placed(cluster, "/alt", 2)) == ["127.0.0.1", "127.0.0.3"]
    wait_refused_for_constraint(cluster, "/alt", 1)
    create(cluster, "/digits", 2, [["hostname", "LIKE", r"127\.0\.0\.\d"],
                                   ["rack", "LIKE", "b"]])
    assert wait_placed(cluster, "/digits", 2) == {"127.0.0.2": 2}
    # "ss" is only part of "ssd": nothing matches as a whole
    create(cluster, "/partial", 1, [["kind", "LIKE", "ss"]])
    wait_refused_for_constraint(cluster, "/partial", 1)
    assert hosts(cluster, "/partial") == {}


# --- IS and CLUSTER --------------------------------------------------------------------------

def test_is_and_cluster(cluster):
    start(cluster)
    create(cluster, "/israck", 2, [["rack", "IS", "b"]])
    assert wait_placed(cluster, "/israck", 2) == {"127.0.0.2": 2}
    # scalars compared as Marathon formats them: to the thousandth
    create(cluster, "/islevel", 4, [["level", "IS", "10.000"], ["hostname", "UNIQUE"]])
    assert sorted(wait_placed(cluster, "/islevel", 2)) == ["127.0.0.1", "127.0.0.3"]
    create(cluster, "/isfrac", 1, [["level", "IS", "2.5"]])
    assert wait_placed(cluster, "/isfrac", 1) == {"127.0.0.2": 1}
    create(cluster, "/ishost", 2, [["hostname", "IS", "127.0.0.3"]])
    assert wait_placed(cluster, "/ishost", 2) == {"127.0.0.3": 2}

    create(cluster, "/clustered", 3, [["rack", "CLUSTER", "c"]])
    assert wait_placed(cluster, "/clustered", 3) == {"127.0.0.3": 3}
    # without a value, the first task's value holds for the others
    create(cluster, "/together", 4, [["hostname", "CLUSTER"]])
    placed = wait_placed(cluster, "/together", 4)
    assert len(placed) == 1, placed
    api(cluster, "PUT", "/v2/apps/together?force=true", {"instances": 6})
    assert wait_placed(cluster, "/together", 6) == {list(placed)[0]: 6}
    create(cluster, "/nowhere", 1, [["rack", "CLUSTER", "z"]])
    wait_refused_for_constraint(cluster, "/nowhere", 1)


# --- validation ------------------------------------------------------------------------------

def test_constraint_validation_messages(cluster):
    cluster.start_master(*MASTER_FLAGS)
    cluster.start_relay()
    cases = [
        (["hostname", "UNIQUE", "x"], "UNIQUE does not accept a value"),
        (["rack", "GROUP_BY", "two"],
         "GROUP BY must define an integer value or else no value at all"),
        (["rack", "MAX_PER"], "MAX_PER requires an integer value"),
        (["rack", "MAX_PER", "x"], "MAX_PER requires an integer value"),
        (["rack", "LIKE"], "LIKE and UNLIKE require a non-empty, regular expression value"),
        (["rack", "UNLIKE", ""], "LIKE and UNLIKE require a non-empty, regular expression value"),
        (["rack", "LIKE", "(unclosed"], "is not a valid regular expression"),
        (["rack", "NEAR"], "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, "
                           "LIKE, MAX_PER or UNLIKE"),
        (["rack"], "Each constraint must have either 2 or 3 fields"),
        (["rack", "LIKE", "a", "b"], "Each constraint must have either 2 or 3 fields"),
        (["", "UNIQUE"], "illegal constraint specification"),
        (["rack", "IS", "a b"], "IS only supports Mesos text and float values "
                                "(see http://mesos.apache.org/documentation/latest/"
                                "attributes-resources/)"),
    ]
    for constraint, message in cases:
        r = api(cluster, "POST", "/v2/apps", {"id": "/v", "cmd": "true", "instances": 0,
                                             "constraints": [["hostname", "UNIQUE"], constraint]})
        assert r.status_code == 422, (constraint, r.text)
        assert r.json() == {"message": "Object is not valid", "details": [
            {"path": "/constraints(1)", "errors": [message]}]}, constraint

    # wrong JSON types are 400s with Play's path
    r = api(cluster, "POST", "/v2/apps", {"id": "/v", "cmd": "true", "constraints": [["rack", 1]]})
    assert r.status_code == 400
    assert r.json() == {"message": "Invalid JSON", "details": [
        {"path": "/constraints(0)(1)", "errors": ["error.expected.jsstring"]}]}
    r = api(cluster, "POST", "/v2/apps", {"id": "/v", "cmd": "true", "constraints": ["rack"]})
    assert r.status_code == 400 and r.json()["details"][0]["path"] == "/constraints(0)"
    r = api(cluster, "POST", "/v2/apps", {"id": "/v", "cmd": "true", "constraints": "rack"})
    assert r.status_code == 400 and r.json()["details"][0]["path"] == "/constraints"

    # accepted forms: any case of the operator, optional values, answered canonically
    r = api(cluster, "POST", "/v2/apps", {"id": "/ok", "cmd": "true", "instances": 0,
                                         "constraints": [["hostname", "unique"],
                                                         ["rack", "group_by"],
                                                         ["rack", "GROUP_BY", "3"],
                                                         ["rack", "CLUSTER"],
                                                         ["rack", "CLUSTER", "a"],
                                                         ["rack", "LIKE", "a|b"],
                                                         ["rack", "UNLIKE", r"\d+"],
                                                         ["rack", "MAX_PER", "2"],
                                                         ["level", "IS", "2.5"]]})
    assert r.status_code == 201, r.text
    assert r.json()["constraints"] == [["hostname", "UNIQUE"], ["rack", "GROUP_BY"],
                                       ["rack", "GROUP_BY", "3"], ["rack", "CLUSTER"],
                                       ["rack", "CLUSTER", "a"], ["rack", "LIKE", "a|b"],
                                       ["rack", "UNLIKE", r"\d+"], ["rack", "MAX_PER", "2"],
                                       ["level", "IS", "2.5"]]
    # a partial update with a bad constraint keeps the app as it was
    r = api(cluster, "PUT", "/v2/apps/ok", {"constraints": [["rack", "MAX_PER"]]})
    assert r.status_code == 422
    assert len(api(cluster, "GET", "/v2/apps/ok").json()["app"]["constraints"]) == 9
    assert api(cluster, "GET", "/ping").status_code == 200
