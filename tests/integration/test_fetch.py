"""End-to-end tests of the agent's fetcher: CommandInfo.uris into the sandbox.

A small http.server (a thread of this test, on 127.0.0.1) serves files from
a temporary directory the test fills: a script, a tar.gz, a gzip file, a
corrupt archive; /redirect/<name> answers 302 to /<name> and /slow sends a
few bytes and then stalls (until the client goes away), to kill and time
out fetches mid-download. Tasks are launched through the master's scheduler
API (a JSON v1 scheduler from test_agent.py) and through relay's /v2/apps
with "fetch"; files are checked in the sandbox on disk and in the task's
output.
"""
import functools
import gzip
import http.server
import io
import os
import shutil
import signal
import stat
import tarfile
import threading
import zipfile

import pytest

from dockerd import dockerd  # noqa: F401
from harness import http as request, wait_for
from mesos_client import SchedulerClient
from test_agent import FAST, Scheduler, agent_state, find_task
from test_docker_agent import Follower, containers_of, docker_task, sandbox_file
from test_docker_agent import start as start_docker_agent

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
ARCHIVE_TEXT = "from-the-archive"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        srv = self.server
        with srv.lock:
            srv.paths.append(self.path)
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path[len("/redirect/"):])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/slow"):
            self._stall()
            return
        super().do_GET()

    def _stall(self):
        """Send 10 of 1,000,000 bytes, then a byte every 50 ms until the client leaves."""
        srv = self.server
        srv.slow_started.set()
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            for _ in range(1200):
                if srv.release.wait(0.05):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            srv.slow_closed.set()


class FileServer:
    """http.server on 127.0.0.1 serving a directory, with /redirect/ and /slow."""

    def __init__(self, root):
        handler = functools.partial(_Handler, directory=root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.lock = threading.Lock()
        self.httpd.paths = []
        self.httpd.slow_started = threading.Event()
        self.httpd.slow_closed = threading.Event()
        self.httpd.release = threading.Event()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _make_files(root):
    with open(os.path.join(root, "hello.sh"), "w") as f:
        f.write("#!/bin/sh\necho hello-from-script\n")
    with open(os.path.join(root, "plain.txt"), "w") as f:
        f.write("plain-content\n")
    with tarfile.open(os.path.join(root, "bundle.tar.gz"), "w:gz") as tar:
        data = (ARCHIVE_TEXT + "\n").encode()
        info = tarfile.TarInfo("bundle/data.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with gzip.open(os.path.join(root, "notes.txt.gz"), "wb") as f:
        f.write(b"gunzipped-content\n")
    with zipfile.ZipFile(os.path.join(root, "pack.zip"), "w") as z:
        z.writestr("zipped/inner.txt", "from-the-zip\n")
    with open(os.path.join(root, "broken.tgz"), "wb") as f:
        f.write(b"this is not a tar archive at all\n" * 4)


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    _make_files(str(root))
    srv = FileServer(str(root))
    srv.root = str(root)
    yield srv
    srv.close()


@pytest.fixture
def sched(cluster):
    cluster.start_master("--allocation_interval=100ms")
    agent = cluster.start_agent(*FAST)
    s = Scheduler(cluster.master_url, name="fetch-test")
    yield cluster, agent, s
    s.close()


def launch(s, task_id, command, uris):
    """Accept the next offer with one shell task that has these CommandInfo.uris."""
    o = s.offer()
    s.used.add(o["id"]["value"])
    res = [dict(r, scalar={"value": 0.1 if r["name"] == "cpus" else 32})
           for r in o["resources"] if r["name"] in ("cpus", "mem")]
    task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": o["agent_id"],
            "resources": res, "command": {"value": command, "shell": True, "uris": uris}}
    s.call({"type": "ACCEPT", "accept": {
        "offer_ids": [o["id"]], "filters": {"refuse_seconds": 0.1},
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})
    return o["agent_id"]["value"]


def sandbox(agent, task_id):
    def find():
        e, _ = find_task(agent_state(agent), task_id)
        return e and e["directory"]
    return wait_for(find, what=f"the sandbox of {task_id}")


def read(path):
    with open(path) as f:
        return f.read()


def still_serving(cluster, agent, s):
    """The agent answers and runs an ordinary task after the failures."""
    assert request("GET", agent.url + "/health").status_code == 200
    launch(s, "t-after", "echo still-here", [])
    s.wait_update("t-after", "TASK_FINISHED", ack=True)


# --- through the master's scheduler API ------------------------------------------

def test_http_files_are_fetched_made_executable_and_extracted(sched, files):
    cluster, agent, s = sched
    uris = [
        {"value": files.url + "/hello.sh", "executable": True},
        {"value": files.url + "/bundle.tar.gz"},
        {"value": files.url + "/redirect/plain.txt?v=1", "output_file": "conf/plain.conf"},
        {"value": files.url + "/notes.txt.gz", "extract": True},
    ]
    launch(s, "t-http", "./hello.sh && cat bundle/data.txt conf/plain.conf notes.txt", uris)
    s.wait_update("t-http", "TASK_STARTING", ack=True)
    done = s.wait_update("t-http", "TASK_FINISHED", ack=True)
    assert done["state"] == "TASK_FINISHED", done
    box = sandbox(agent, "t-http")
    out = read(os.path.join(box, "stdout"))
    for text in ("hello-from-script", ARCHIVE_TEXT, "plain-content", "gunzipped-content"):
        assert text in out, out
    assert stat.S_IMODE(os.stat(os.path.join(box, "hello.sh")).st_mode) == 0o755
    # the archive stays next to what it held, as in Mesos
    assert os.path.isfile(os.path.join(box, "bundle.tar.gz"))
    assert read(os.path.join(box, "bundle", "data.txt")) == ARCHIVE_TEXT + "\n"
    assert not os.path.exists(os.path.join(box, "plain.txt"))
    assert files.httpd.paths.count("/redirect/plain.txt?v=1") == 1
    assert "/plain.txt?v=1" in files.httpd.paths
    err = read(os.path.join(box, "stderr"))
    assert f"Fetching URI '{files.url}/bundle.tar.gz'" in err, err


def test_zip_archives_are_extracted_when_unzip_is_installed(sched, files):
    cluster, agent, s = sched
    launch(s, "t-zip", "cat zipped/inner.txt", [{"value": files.url + "/pack.zip"}])
    if shutil.which("unzip") is None:
        st = s.wait_update("t-zip", "TASK_FAILED", ack=True)
        assert "'unzip' is not installed on this agent" in st["message"], st
        return
    s.wait_update("t-zip", "TASK_FINISHED", ack=True)
    box = sandbox(agent, "t-zip")
    assert "from-the-zip" in read(os.path.join(box, "stdout"))
    assert os.path.isfile(os.path.join(box, "pack.zip"))


def test_file_uris_and_absolute_paths_are_copied(sched, files):
    cluster, agent, s = sched
    tgz = os.path.join(files.root, "bundle.tar.gz")
    uris = [
        {"value": "file://" + os.path.join(files.root, "plain.txt")},
        {"value": tgz, "extract": False},
        {"value": os.path.join(files.root, "hello.sh"), "executable": True,
         "output_file": "bin/run"},
    ]
    launch(s, "t-file", "cat plain.txt && bin/run && test ! -e bundle", uris)
    s.wait_update("t-file", "TASK_FINISHED", ack=True)
    box = sandbox(agent, "t-file")
    assert "plain-content" in read(os.path.join(box, "stdout"))
    with open(os.path.join(box, "bundle.tar.gz"), "rb") as a, open(tgz, "rb") as b:
        assert a.read() == b.read()
    assert stat.S_IMODE(os.stat(os.path.join(box, "bin", "run")).st_mode) == 0o755


FAILURES = [
    ("t-404", lambda f: {"value": f.url + "/missing.tgz"}, "received HTTP return code 404"),
    ("t-refused", lambda f: {"value": "http://127.0.0.1:9/x.tgz"}, "connect"),
    ("t-hdfs", lambda f: {"value": "hdfs://namenode/x.tgz"}, "unsupported URI scheme 'hdfs'"),
    ("t-missing", lambda f: {"value": "file:///nonexistent/fetch/x"},
     "No such file or directory"),
    ("t-relative", lambda f: {"value": "relative/x"}, "relative path"),
    ("t-escape", lambda f: {"value": f.url + "/plain.txt", "output_file": "../../x"},
     "invalid output_file '../../x'"),
    ("t-nofile", lambda f: {"value": f.url + "/"}, "names no file"),
    ("t-corrupt", lambda f: {"value": f.url + "/broken.tgz"}, "unable to extract"),
]


def test_failed_fetches_fail_the_task_and_the_agent_serves_on(sched, files):
    cluster, agent, s = sched
    marker = os.path.join(cluster.dir, "task-ran")
    for task_id, uri, _ in FAILURES:
        # the second URI is fine: one failure is enough to keep the task from starting
        launch(s, task_id, f"touch {marker}", [uri(files), {"value": files.url + "/plain.txt"}])

    def all_failed():
        out = {}
        for task_id, _, _ in FAILURES:
            ups = s.updates(task_id)
            for u in ups:
                if u.get("uuid") and u["uuid"] not in s.acked:
                    s.ack(u)
            if not ups:
                return None
            out[task_id] = ups
        return out
    updates = wait_for(all_failed, timeout=30, what="every task to fail")
    for task_id, uri, words in FAILURES:
        # one update (a resend repeats its uuid)
        assert len({u["uuid"] for u in updates[task_id]}) == 1, updates[task_id]
        st = updates[task_id][0]
        assert st["state"] == "TASK_FAILED", st
        assert st["reason"] == "REASON_CONTAINER_LAUNCH_FAILED", st
        assert st["message"].startswith(f"Failed to fetch '{uri(files)['value']}': "), st
        assert words.lower() in st["message"].lower(), st
    assert not os.path.exists(marker)
    assert "/plain.txt" not in files.httpd.paths
    still_serving(cluster, agent, s)


def test_kill_during_fetch_cancels_the_download(sched, files):
    cluster, agent, s = sched
    agent_id = launch(s, "t-kill", "echo never", [{"value": files.url + "/slow/big.tgz"}])
    assert files.httpd.slow_started.wait(20), "the agent never asked for /slow"
    _, task = find_task(agent_state(agent), "t-kill")
    assert task["state"] == "TASK_STAGING", task
    s.kill("t-kill", agent_id)
    st = s.wait_update("t-kill", "TASK_KILLED", ack=True)
    assert st["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH", st
    assert [u["state"] for u in s.updates("t-kill")] == ["TASK_KILLED"]
    assert files.httpd.slow_closed.wait(20), "the download went on after the kill"
    still_serving(cluster, agent, s)


def test_fetch_is_bounded_by_executor_registration_timeout(cluster, files):
    cluster.start_master("--allocation_interval=100ms")
    agent = cluster.start_agent(*FAST, "--executor_registration_timeout=1secs")
    s = Scheduler(cluster.master_url, name="fetch-timeout")
    try:
        launch(s, "t-slow", "echo never", [{"value": files.url + "/slow/big.tgz"}])
        st = s.wait_update("t-slow", "TASK_FAILED", ack=True)
        assert st["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT", st
        assert st["message"] == (f"Failed to fetch '{files.url}/slow/big.tgz': not done "
                                 "within 1secs (--executor_registration_timeout)"), st
        assert files.httpd.slow_closed.wait(20)
        still_serving(cluster, agent, s)
    finally:
        s.close()


def test_agent_stopped_mid_fetch_exits_cleanly_and_fails_the_task(sched, files):
    cluster, agent, s = sched
    launch(s, "t-stop", "echo never", [{"value": files.url + "/slow/big.tgz"}])
    assert files.httpd.slow_started.wait(20)
    agent.terminate()
    assert agent.wait(10) == 0
    assert files.httpd.slow_closed.wait(20)
    agent.restart()
    st = s.wait_update("t-stop", "TASK_FAILED", ack=True)
    assert st["reason"] == "REASON_AGENT_RESTARTED", st


# --- Docker tasks: the sandbox is /mnt/mesos/sandbox in the container ------------

def test_docker_task_finds_fetched_files_in_its_sandbox(cluster, dockerd, files):
    agent, _ = start_docker_agent(cluster, dockerd)
    client = SchedulerClient(cluster.master_url)
    client.subscribe(name="fetch-docker", failover_timeout=3600)
    follow = Follower(client)
    try:
        offer = client.wait_offers()[0]
        ok = docker_task(offer, "d-fetch", "cd /mnt/mesos/sandbox && cat bundle/data.txt && "
                         "test -x hello.sh && sh hello.sh", network="NONE")
        ok["command"]["uris"] = [{"value": files.url + "/bundle.tar.gz"},
                                 {"value": files.url + "/hello.sh", "executable": True}]
        bad = docker_task(offer, "d-bad", "echo never", network="NONE")
        bad["command"]["uris"] = [{"value": files.url + "/missing.tgz"}]
        client.launch(offer, [ok, bad])
        st = follow.until("d-fetch", "TASK_FINISHED", "TASK_FAILED", timeout=60)
        assert st["state"] == "TASK_FINISHED", st
        out = sandbox_file(agent, "d-fetch", "stdout")
        assert ARCHIVE_TEXT in out and "hello-from-script" in out, out
        st = follow.until("d-bad", "TASK_FINISHED", "TASK_FAILED", timeout=60)
        assert st["state"] == "TASK_FAILED", st
        assert st["reason"] == "REASON_CONTAINER_LAUNCH_FAILED", st
        assert st["message"] == (f"Failed to fetch '{files.url}/missing.tgz': "
                                 "received HTTP return code 404"), st
        assert containers_of(dockerd, "d-bad") == []
        assert [u["state"] for u in client.updates("d-bad")] == ["TASK_FAILED"]
    finally:
        client.close()
        dockerd.remove_all_containers()


# --- through relay's Marathon API ---------------------------------------------------

def relay_cluster(cluster):
    cluster.start_master("--allocation_interval=100ms")
    cluster.start_agent(*FAST)
    cluster.start_relay()


def post_app(cluster, app):
    r = request("POST", cluster.relay_url + "/v2/apps", json=app, headers=JSON)
    assert r.status_code == 201, r.text


def get_app(cluster, app_id):
    r = request("GET", cluster.relay_url + "/v2/apps" + app_id, headers=JSON)
    assert r.status_code == 200, r.text
    return r.json()["app"]


def sandbox_files(cluster, name):
    found = []
    for top, _, names in os.walk(os.path.join(cluster.dir, "agent1")):
        if name in names:
            found.append(os.path.join(top, name))
    return found


def test_relay_app_fetch_extracts_and_runs(cluster, files):
    relay_cluster(cluster)
    post_app(cluster, {
        "id": "/fetcher", "cmd": "cat bundle/data.txt && cat conf/plain.conf && sleep 600",
        "cpus": 0.1, "mem": 16, "instances": 1,
        "fetch": [{"uri": files.url + "/bundle.tar.gz"},
                  {"uri": files.url + "/plain.txt", "destPath": "conf/plain.conf"}]})
    wait_for(lambda: get_app(cluster, "/fetcher")["tasksRunning"] == 1, timeout=30,
             what="the fetching app to run")

    def output():
        for path in sandbox_files(cluster, "stdout"):
            text = read(path)
            if ARCHIVE_TEXT in text and "plain-content" in text:
                return text
        return None
    wait_for(output, what="the archive's file in the task's output")


def test_relay_legacy_uris_are_fetched(cluster, files):
    relay_cluster(cluster)
    post_app(cluster, {"id": "/legacy", "cmd": "cat plain.txt && sleep 600", "cpus": 0.1,
                       "mem": 16, "uris": [files.url + "/plain.txt"]})
    wait_for(lambda: get_app(cluster, "/legacy")["tasksRunning"] == 1, timeout=30,
             what="the legacy app to run")
    wait_for(lambda: any("plain-content" in read(p) for p in sandbox_files(cluster, "stdout")),
             what="the fetched file in the task's output")


def test_relay_app_with_a_missing_uri_reports_the_failure(cluster, files):
    relay_cluster(cluster)
    uri = files.url + "/missing.tgz"
    post_app(cluster, {"id": "/broken-fetch", "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
                       "backoffSeconds": 0.5, "fetch": [{"uri": uri}]})

    def failure():
        return get_app(cluster, "/broken-fetch").get("lastTaskFailure")
    f = wait_for(failure, timeout=30, what="lastTaskFailure")
    assert f["state"] == "TASK_FAILED", f
    assert f["message"] == f"Failed to fetch '{uri}': received HTTP return code 404", f
    assert f["appId"] == "/broken-fetch"
    assert get_app(cluster, "/broken-fetch")["tasksRunning"] == 0
    assert request("GET", cluster.relay_url + "/ping").status_code == 200
    assert request("GET", cluster.agents[0].url + "/health").status_code == 200


def test_agent_flag_is_listed(cluster):
    cluster.start_master()
    agent = cluster.start_agent("--executor_registration_timeout=2mins")
    flags = request("GET", agent.url + "/flags").json()
    flags = flags.get("flags", flags)
    assert flags["executor_registration_timeout"] in ("2mins", "120", "120secs"), flags
    os.kill(agent.pid, signal.SIGTERM)
    assert agent.wait(10) == 0
