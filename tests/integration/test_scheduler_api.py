"""End-to-end tests of POST /api/v1/scheduler on the real butte-master.

Subscription in JSON and protobuf, every bad-input status code of
reference §2.2 (each followed by a health check), truncated streams and
bodies, and with real agents: offers, launch, acknowledgements, decline
filters and revive, kill, suppress, reconciliation and teardown.
"""
import json

import pytest
import requests

from harness import http, wait_for
from mesos_client import (JSON, PROTOBUF, RecordIO, SchedulerClient, command_task, pb_parse,
                          pb_subscribe_call, raw_post, raw_socket, scalar)

FAST = ("--heartbeat_interval=1secs", "--allocation_interval=100ms")


def healthy(cluster):
    r = http("GET", cluster.master_url + "/health")
    assert r.status_code == 200
    return True


@pytest.fixture
def master(cluster):
    cluster.start_master(*FAST)
    return cluster


@pytest.fixture
def client(master):
    c = SchedulerClient(master.master_url)
    yield c
    c.close()


def api(cluster):
    return cluster.master_url + "/api/v1/scheduler"


def streaming():
    s = requests.Session()
    s.trust_env = False
    return s


def metric(cluster, name):
    return http("GET", cluster.master_url + "/metrics/snapshot").json()[name]


# -- subscription ----------------------------------------------------------------

def test_subscribe_json_gets_subscribed_then_heartbeat(master, client):
    ev = client.subscribe(name="json-sub")
    assert client.response.headers["Content-Type"] == JSON
    assert len(client.stream_id) == 36
    sub = ev["subscribed"]
    assert sub["heartbeat_interval_seconds"] == 1
    info = sub["master_info"]
    assert info["port"] == master.master.port
    assert info["address"]["ip"] == "127.0.0.1"
    assert info["ip"] == 0x0100007F  # 127.0.0.1 packed in network byte order
    assert client.framework_id.startswith(info["id"] + "-")
    first = client.mark()
    client.wait_event("HEARTBEAT", start=first, timeout=5)
    fw = [f for f in master.master_state()["frameworks"] if f["id"] == client.framework_id]
    assert fw and fw[0]["active"] and fw[0]["name"] == "json-sub"


def test_subscribe_protobuf(master):
    resp = streaming().post(api(master), data=pb_subscribe_call(name="pb"), stream=True,
                  headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF}, timeout=(5, 10))
    try:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == PROTOBUF
        assert "Mesos-Stream-Id" in resp.headers
        dec, records = RecordIO(), []
        for chunk in resp.iter_content(chunk_size=None):
            records += dec.feed(chunk)
            if len(records) >= 2:
                break
        first, second = pb_parse(records[0]), pb_parse(records[1])
        assert first[1] == [1]                       # Event.type SUBSCRIBED
        subscribed = pb_parse(first[2][0])
        fid = pb_parse(subscribed[1][0])[1][0].decode()
        assert fid.endswith("-0000") or "-" in fid
        assert second[1] == [8]                      # HEARTBEAT
    finally:
        resp.close()
    assert healthy(master)


def test_subscribe_json_request_protobuf_accept(master):
    body = json.dumps({"type": "SUBSCRIBE",
                       "subscribe": {"framework_info": {"user": "u", "name": "mixed"}}})
    resp = streaming().post(api(master), data=body, stream=True, timeout=(5, 10),
                  headers={"Content-Type": JSON, "Accept": PROTOBUF})
    try:
        assert resp.status_code == 200
        assert resp.headers["Content-Type"] == PROTOBUF
        dec = RecordIO()
        for chunk in resp.iter_content(chunk_size=None):
            recs = dec.feed(chunk)
            if recs:
                assert pb_parse(recs[0])[1] == [1]
                break
    finally:
        resp.close()


# -- bad input -----------------------------------------------------------------------

SUB_JSON = json.dumps({"type": "SUBSCRIBE",
                       "subscribe": {"framework_info": {"user": "u", "name": "x"}}})


@pytest.mark.parametrize("body,headers,code,words", [
    (SUB_JSON, {}, 400, "Content-Type"),
    (SUB_JSON, {"Content-Type": "text/plain"}, 415, "Content-Type"),
    (SUB_JSON, {"Content-Type": "application/xml"}, 415, "application/xml"),
    ("{not json", {"Content-Type": JSON}, 400, "Failed to parse"),
    ("[]", {"Content-Type": JSON}, 400, "Failed to parse"),
    ('{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}',
     {"Content-Type": JSON}, 400, "user"),
    (b"\xff\xff\xff\xff garbage", {"Content-Type": PROTOBUF}, 400, "Failed to parse"),
    (SUB_JSON, {"Content-Type": JSON, "Mesos-Stream-Id": "abc"}, 400, "Mesos-Stream-Id"),
    (SUB_JSON, {"Content-Type": JSON, "Accept": "text/html"}, 406, "Accept"),
    ('{"type":"REVIVE","framework_id":{"value":"nope"}}',
     {"Content-Type": JSON, "Mesos-Stream-Id": "x"}, 400, "cannot be found"),
    ('{"type":"REVIVE"}', {"Content-Type": JSON}, 400, "framework_id"),
    ('{}', {"Content-Type": JSON}, 400, "type"),
])
def test_bad_input(master, body, headers, code, words):
    r = raw_post(api(master), body, headers)
    assert r.status_code == code, r.text
    assert words in r.json()["message"]
    assert healthy(master)


def test_random_garbage_keeps_master_serving(master, client):
    """Random bytes in both content types, with and without a valid stream id."""
    import random
    client.subscribe(name="target")
    rng = random.Random(1234)
    session = streaming()
    seeds = [pb_subscribe_call(), SUB_JSON.encode(),
             json.dumps({"type": "ACCEPT", "framework_id": {"value": client.framework_id},
                         "accept": {"offer_ids": [{"value": "x"}]}}).encode()]
    for i in range(150):
        base = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(base))
            base[pos] = rng.randrange(256)
        if rng.random() < 0.3:
            base = base[:rng.randrange(len(base))]
        ctype = JSON if i % 2 else PROTOBUF
        headers = {"Content-Type": ctype}
        if i % 3 == 0:
            headers["Mesos-Stream-Id"] = client.stream_id
        r = session.post(api(master), data=bytes(base), headers=headers, stream=True,
                         timeout=10)
        assert r.status_code in (200, 202, 400, 403, 406), (r.status_code, bytes(base))
        r.close()
    assert healthy(master)
    assert client.call("REVIVE").status_code == 202


def test_charset_parameter_is_accepted(master, client):
    client.subscribe()
    r = raw_post(api(master), json.dumps({"type": "REVIVE",
                                          "framework_id": {"value": client.framework_id}}),
                 {"Content-Type": "application/json; charset=utf-8",
                  "Mesos-Stream-Id": client.stream_id})
    assert r.status_code == 202


def test_stream_id_rules(master, client):
    client.subscribe()
    r = client.call("REVIVE", stream_id=False)
    assert r.status_code == 400 and "Mesos-Stream-Id" in r.json()["message"]
    r = client.call("REVIVE", stream_id="00000000-0000-0000-0000-000000000000")
    assert r.status_code == 400 and "didn't match" in r.json()["message"]
    assert client.call("REVIVE").status_code == 202
    assert healthy(master)


def test_not_subscribed_is_403(master):
    c = SchedulerClient(master.master_url)
    c.subscribe(name="failover", failover_timeout=300)
    sid = c.stream_id
    c.close()
    wait_for(lambda: not [f for f in master.master_state()["frameworks"]
                          if f["id"] == c.framework_id and f["connected"]],
             what="framework to be disconnected")
    r = c.call("REVIVE", stream_id=sid)
    assert r.status_code == 403, r.text
    assert healthy(master)
    # it can come back with its id
    c2 = SchedulerClient(master.master_url)
    c2.subscribe(name="failover", framework_id=c.framework_id, failover_timeout=300)
    assert c2.framework_id == c.framework_id
    assert c2.call("REVIVE").status_code == 202
    c2.close()


def test_method_not_allowed(master):
    r = http("GET", api(master))
    assert r.status_code == 405
    assert healthy(master)


def test_truncated_subscription_stream(master):
    """The client goes away mid-stream: the framework is removed, the master serves on."""
    c = SchedulerClient(master.master_url)
    c.subscribe(name="truncated")
    c.close()

    def removed():
        st = master.master_state()
        return any(f["id"] == c.framework_id for f in st["completed_frameworks"])
    wait_for(removed, what="framework removal after the stream closed")
    assert healthy(master)


def test_truncated_request_body(master):
    port = master.master.port
    req = (b"POST /api/v1/scheduler HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"type\":")
    raw_socket("127.0.0.1", port, req, read=False)
    assert healthy(master)
    raw_socket("127.0.0.1", port, b"GARBAGE\r\n\r\n")
    assert healthy(master)
    # a half-written protobuf body with an honest length
    body = pb_subscribe_call()[:-3]
    r = raw_post(api(master), body, {"Content-Type": PROTOBUF})
    assert r.status_code == 400
    assert healthy(master)


def test_subscribe_twice_closes_the_old_stream(master):
    a = SchedulerClient(master.master_url)
    a.subscribe(name="twice", failover_timeout=60)
    b = SchedulerClient(master.master_url)
    b.subscribe(name="twice", framework_id=a.framework_id, failover_timeout=60)
    with a.lock:
        a.lock.wait_for(lambda: a.closed, timeout=10)
    assert a.closed
    assert b.call("REVIVE").status_code == 202
    r = a.call("REVIVE")
    assert r.status_code == 400
    b.close()


def test_teardown(master, client):
    client.subscribe(name="bye")
    client.checked("TEARDOWN")
    wait_for(lambda: any(f["id"] == client.framework_id
                         for f in master.master_state()["completed_frameworks"]),
             what="framework in completed_frameworks")
    # it may not come back
    body = {"type": "SUBSCRIBE", "framework_id": {"value": client.framework_id},
            "subscribe": {"framework_info": {"user": "u", "name": "bye",
                                             "id": {"value": client.framework_id}}}}
    resp = streaming().post(api(master), data=json.dumps(body), stream=True, timeout=(5, 10),
                  headers={"Content-Type": JSON})
    dec, recs = RecordIO(), []
    for chunk in resp.iter_content(chunk_size=None):
        recs += dec.feed(chunk)
        if recs:
            break
    resp.close()
    ev = json.loads(recs[0])
    assert ev["type"] == "ERROR" and "removed" in ev["error"]["message"]


# -- with agents -------------------------------------------------------------------------

@pytest.fixture
def with_agent(master):
    master.start_agent()
    return master


def run_task(client, task_id):
    """Acknowledge TASK_STARTING, wait for TASK_RUNNING and acknowledge it."""
    starting = client.wait_update(task_id, "TASK_STARTING")
    assert starting["uuid"]
    client.acknowledge(starting)
    running = client.wait_update(task_id, "TASK_RUNNING")
    client.acknowledge(running)
    return running


def test_offers_carry_agent_resources(with_agent, client):
    client.subscribe(name="offers")
    offers = client.wait_offers()
    o = offers[0]
    assert scalar(o, "cpus") == 2 and scalar(o, "mem") == 1024 and scalar(o, "disk") == 1024
    ports = [r for r in o["resources"] if r["name"] == "ports"][0]
    assert ports["ranges"]["range"] == [{"begin": 31000, "end": 31099}]
    assert all(r["role"] == "*" and r["allocation_info"]["role"] == "*" for r in o["resources"])
    assert o["url"]["scheme"] == "http" and o["url"]["path"] == "/slave(1)"
    assert o["url"]["address"]["port"] == with_agent.agents[0].port
    assert o["framework_id"]["value"] == client.framework_id
    assert o["attributes"]
    assert metric(with_agent, "master/outstanding_offers") == 1


def test_launch_ack_kill(with_agent, client):
    client.subscribe(name="launcher")
    offer = client.wait_offers()[0]
    client.launch(offer, [command_task(offer, "t1")])
    st = run_task(client, "t1")
    assert st["uuid"] and st["source"] == "SOURCE_EXECUTOR"
    state = with_agent.master_state()
    fw = [f for f in state["frameworks"] if f["id"] == client.framework_id][0]
    assert [t["state"] for t in fw["tasks"]] == ["TASK_RUNNING"]
    assert fw["tasks"][0]["resources"]["cpus"] == pytest.approx(0.1)
    wait_for(lambda: metric(with_agent, "master/tasks_running") == 1, what="tasks_running 1")
    assert metric(with_agent, "master/cpus_used") == pytest.approx(0.1)
    # the unused rest comes back as a new offer after the 5 s default filter... or sooner
    mark = client.mark()
    client.kill("t1")
    killed = client.wait_update("t1", "TASK_KILLED", start=mark)
    client.acknowledge(killed)
    wait_for(lambda: metric(with_agent, "master/tasks_killed") == 1, what="tasks_killed 1")
    assert metric(with_agent, "master/tasks_running") == 0


def test_failover_gets_fresh_offers(with_agent):
    a = SchedulerClient(with_agent.master_url)
    a.subscribe(name="first", failover_timeout=60)
    old = a.wait_offers()[0]
    b = SchedulerClient(with_agent.master_url)
    try:
        b.subscribe(name="second", framework_id=a.framework_id, failover_timeout=60)
        new = b.wait_offers(timeout=5)[0]
        assert new["id"] != old["id"] and new["agent_id"] == old["agent_id"]
        assert scalar(new, "cpus") == 2
        r = b.call("DECLINE", {"offer_ids": [old["id"]]})
        assert r.status_code == 202     # unknown offers are ignored
        assert metric(with_agent, "master/outstanding_offers") == 1
    finally:
        a.close()
        b.close()


def test_invalid_tasks_get_task_error(with_agent, client):
    client.subscribe(name="invalid")
    offer = client.wait_offers()[0]
    too_big = command_task(offer, "big", cpus=64)
    no_cmd = command_task(offer, "nocmd")
    del no_cmd["command"]
    executor = command_task(offer, "exec")
    executor["executor"] = {"executor_id": {"value": "e"}, "command": {"value": "x"}}
    del executor["command"]
    bad_id = command_task(offer, "a/b")
    client.launch(offer, [too_big, no_cmd, executor, bad_id])
    for tid, words in (("big", "more resources"), ("nocmd", "CommandInfo"),
                       ("exec", "executor"), ("a/b", "invalid characters")):
        st = client.wait_update(tid, "TASK_ERROR")
        assert words in st["message"] and "uuid" not in st
        assert st["reason"] == "REASON_TASK_INVALID"


def test_used_offer_is_invalid(with_agent, client):
    client.subscribe(name="reuse")
    offer = client.wait_offers()[0]
    client.decline([offer["id"]])
    client.launch(offer, [command_task(offer, "late")])
    st = client.wait_update("late", "TASK_LOST")
    assert st["reason"] == "REASON_INVALID_OFFERS" and "uuid" not in st


def test_decline_filter_and_revive(with_agent, client):
    client.subscribe(name="decliner")
    offer = client.wait_offers()[0]
    client.decline([offer["id"]], refuse_seconds=3600)
    mark = client.mark()
    runs = metric(with_agent, "allocator/mesos/allocation_runs")
    wait_for(lambda: metric(with_agent, "allocator/mesos/allocation_runs") >= runs + 5,
             what="five allocation runs")
    with client.lock:
        assert not [e for e in client.events[mark:] if e["type"] == "OFFERS"]
    client.checked("REVIVE")
    again = client.wait_offers(start=mark, timeout=5)
    assert again[0]["agent_id"] == offer["agent_id"]
    assert again[0]["id"] != offer["id"]


def test_suppress_then_revive(with_agent, client):
    client.subscribe(name="suppressor")
    offer = client.wait_offers()[0]
    client.checked("SUPPRESS")
    client.decline([offer["id"]], refuse_seconds=0)
    mark = client.mark()
    runs = metric(with_agent, "allocator/mesos/allocation_runs")
    wait_for(lambda: metric(with_agent, "allocator/mesos/allocation_runs") >= runs + 5,
             what="five allocation runs")
    with client.lock:
        assert not [e for e in client.events[mark:] if e["type"] == "OFFERS"]
    client.checked("REVIVE")
    client.wait_offers(start=mark, timeout=5)


def offers_since(client, mark):
    with client.lock:
        return [o for e in client.events[mark:] if e["type"] == "OFFERS"
                for o in e["offers"]["offers"]]


def test_drf_two_frameworks_share(with_agent):
    with_agent.start_agent(name="agent2")
    a, b = SchedulerClient(with_agent.master_url), SchedulerClient(with_agent.master_url)
    try:
        a.subscribe(name="a")
        first = wait_for(lambda: len(offers_since(a, 0)) == 2 and offers_since(a, 0),
                         what="framework a to be offered both agents")
        b.subscribe(name="b")
        mark_a, mark_b = a.mark(), b.mark()
        a.decline([o["id"] for o in first], refuse_seconds=0)
        # equal (zero) shares: a gets one agent, its share grows, b gets the other
        ob = b.wait_offers(start=mark_b)
        oa = a.wait_offers(start=mark_a)
        assert len(oa) == 1 and len(ob) == 1
        assert oa[0]["agent_id"] != ob[0]["agent_id"]
    finally:
        a.close()
        b.close()


def test_reconciliation(with_agent, client):
    client.subscribe(name="reconciler")
    offer = client.wait_offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [command_task(offer, "r1")])
    run_task(client, "r1")
    # implicit: the running task
    mark = client.mark()
    client.reconcile()
    st = client.wait_update("r1", "TASK_RUNNING", start=mark,
                            pred=lambda s: s.get("reason") == "REASON_RECONCILIATION")
    assert "uuid" not in st and st["message"].startswith("Reconciliation: ")
    # explicit: unknown task on a registered agent, and on an unknown agent
    mark = client.mark()
    client.reconcile([("ghost", agent_id), ("ghost2", "no-such-agent"), ("r1", None)])
    g = client.wait_update("ghost", "TASK_LOST", start=mark)
    assert g["reason"] == "REASON_RECONCILIATION" and "uuid" not in g
    client.wait_update("ghost2", "TASK_LOST", start=mark)
    client.wait_update("r1", "TASK_RUNNING", start=mark)


def test_reconciliation_partition_aware(with_agent, client):
    client.subscribe(name="pa", capabilities=["PARTITION_AWARE"])
    offer = client.wait_offers()[0]
    mark = client.mark()
    client.reconcile([("ghost", offer["agent_id"]["value"]), ("ghost2", "no-such-agent")])
    assert client.wait_update("ghost", "TASK_GONE", start=mark)["reason"] == \
        "REASON_RECONCILIATION"
    client.wait_update("ghost2", "TASK_UNKNOWN", start=mark)


def test_kill_unknown_task(with_agent, client):
    client.subscribe(name="killer")
    client.wait_offers()
    mark = client.mark()
    client.kill("nobody")
    st = client.wait_update("nobody", "TASK_LOST", start=mark)
    assert st["reason"] == "REASON_RECONCILIATION" and "uuid" not in st


def test_task_finishes_and_resources_return(with_agent, client):
    client.subscribe(name="finisher")
    offer = client.wait_offers()[0]
    client.launch(offer, [command_task(offer, "quick", cmd="true", cpus=1)], refuse_seconds=0)
    for state in ("TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"):
        client.acknowledge(client.wait_update("quick", state))
    # all 2 cpus are offered again once the task ended
    offers = client.wait_offers(pred=lambda e: any(scalar(o, "cpus") == 2
                                                   for o in e["offers"]["offers"]))
    assert offers
    wait_for(lambda: metric(with_agent, "master/tasks_finished") == 1, what="tasks_finished")
