"""relay's launch backlog: changes to apps and groups wait while too many
instances are still to be seen RUNNING (--launch_backlog), for at most
--launch_backlog_wait; reads and deletes never wait.

The backlog is made with a cluster that cannot run anything yet (a master
without agents): the instances of a first app stay missing.
"""
import os
import subprocess
import threading
import time

from harness import BUILD, http, wait_for

FAST = ("--allocation_interval=100ms",)


def app(app_id, instances):
    return {"id": app_id, "cmd": "sleep 1000", "instances": instances, "cpus": 0.1, "mem": 16,
            "portDefinitions": []}


def app_ids(relay):
    return sorted(a["id"] for a in http("GET", relay.url + "/v2/apps").json()["apps"])


def gauge(relay, name):
    return http("GET", relay.url + "/metrics").json()["gauges"][name]["value"]


class Request(threading.Thread):
    """One HTTP request made in the background: .response once done."""

    def __init__(self, method, url, **kw):
        super().__init__(daemon=True)
        self.args, self.kw, self.response = (method, url), kw, None

    def run(self):
        try:
            self.response = http(*self.args, timeout=120, **self.kw)
        except OSError:  # requests' ConnectionError: the connection closed unanswered
            self.response = None


def test_change_waits_until_the_backlog_drains(cluster):
    cluster.start_master(*FAST)
    relay = cluster.start_relay("--launch_backlog=3", "--launch_backlog_wait=120000")
    # nothing waits while the backlog is below the bound
    r = http("POST", relay.url + "/v2/apps", json=app("/first", 5))
    assert r.status_code == 201, r.text
    wait_for(lambda: gauge(relay, "relay.instances.launch-backlog.gauge") == 5, timeout=10,
             what="5 missing instances in the backlog")

    second = Request("POST", relay.url + "/v2/apps", json=app("/second", 1))
    second.start()
    wait_for(lambda: gauge(relay, "relay.http.requests-waiting.gauge") == 1, timeout=10,
             what="the POST to wait")
    # it is not handled while it waits: no app, no answer; reads and deletes go on
    assert app_ids(relay) == ["/first"]
    assert second.response is None
    scale = Request("PUT", relay.url + "/v2/apps/first?force=true", json={"instances": 4})
    scale.start()
    wait_for(lambda: gauge(relay, "relay.http.requests-waiting.gauge") == 2, timeout=10,
             what="the PUT to wait too")
    r = http("DELETE", relay.url + "/v2/apps/nothing-here")
    assert r.status_code == 404, r.text
    assert http("GET", relay.url + "/v2/tasks").status_code == 200

    # an agent comes: /first's instances run, the backlog drains, the waiting go on in order
    cluster.start_agent(resources="cpus:2;mem:1024;disk:1024;ports:[31000-31099]")
    second.join(timeout=60)
    assert second.response is not None and second.response.status_code == 201, \
        second.response and second.response.text
    scale.join(timeout=60)
    assert scale.response is not None and scale.response.status_code == 200, \
        scale.response and scale.response.text
    # handled in the order they came: /second created before /first was scaled
    created = http("GET", relay.url + "/v2/apps/second").json()["app"]["version"]
    scaled = http("GET", relay.url + "/v2/apps/first").json()["app"]["versionInfo"]["lastScalingAt"]
    assert created <= scaled, (created, scaled)
    wait_for(lambda: http("GET", relay.url + "/v2/apps/second").json()["app"]["tasksRunning"]
             == 1, timeout=30, what="/second RUNNING")
    assert gauge(relay, "relay.http.requests-waiting.gauge") == 0


def test_change_waits_no_longer_than_the_bound(cluster):
    cluster.start_master(*FAST)
    relay = cluster.start_relay("--launch_backlog=1", "--launch_backlog_wait=1500")
    assert http("POST", relay.url + "/v2/apps", json=app("/stuck", 2)).status_code == 201
    t0 = time.monotonic()
    r = http("POST", relay.url + "/v2/apps", json=app("/next", 1), timeout=60)
    waited = time.monotonic() - t0
    # the cluster cannot place /stuck: the backlog never drains, the wait ends at the bound
    assert r.status_code == 201, r.text
    assert waited >= 1.4, waited
    assert app_ids(relay) == ["/next", "/stuck"]


def test_launch_backlog_zero_never_waits(cluster):
    cluster.start_master(*FAST)
    relay = cluster.start_relay("--launch_backlog=0", "--launch_backlog_wait=120000")
    for i in range(3):
        r = http("POST", relay.url + "/v2/apps", json=app("/app-%d" % i, 5), timeout=30)
        assert r.status_code == 201, r.text
    assert gauge(relay, "relay.instances.launch-backlog.gauge") == 15
    assert gauge(relay, "relay.http.requests-waiting.gauge") == 0


def test_launch_backlog_flags_are_checked(tmp_path):
    relay = os.path.join(BUILD, "butte-relay")
    for flag, words in (("--launch_backlog=-1", "--launch_backlog"),
                        ("--launch_backlog=lots", "launch_backlog"),
                        ("--launch_backlog_wait=soon", "--launch_backlog_wait")):
        p = subprocess.run([relay, "--http_port=0", f"--work_dir={tmp_path}", flag],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (flag, p.stdout, p.stderr)
        assert words in p.stderr, (flag, p.stderr)


def test_relay_stops_cleanly_with_changes_waiting(cluster):
    """SIGTERM while changes wait: relay exits at once and cleanly (the harness
    fails the test on a sanitizer report), the waiting clients see their
    connection close, and what was answered before is still there after a
    restart; what was never handled was never created."""
    cluster.start_master(*FAST)
    relay = cluster.start_relay("--launch_backlog=3", "--launch_backlog_wait=120000")
    assert http("POST", relay.url + "/v2/apps", json=app("/first", 5)).status_code == 201
    waiting = [Request("POST", relay.url + "/v2/apps", json=app("/late-%d" % i, 1))
               for i in range(2)]
    for w in waiting:
        w.start()
    wait_for(lambda: gauge(relay, "relay.http.requests-waiting.gauge") == 2, timeout=10,
             what="two POSTs to wait")
    relay.stop(timeout=10)
    assert relay.popen.returncode == 0, relay.log()[-2000:]
    for w in waiting:
        w.join(timeout=30)
        assert not w.is_alive()
        assert w.response is None, (w.response.status_code, w.response.text)
    relay.start()
    relay.wait_healthy()
    assert app_ids(relay) == ["/first"]
