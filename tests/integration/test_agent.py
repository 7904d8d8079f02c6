"""End-to-end tests of butte-agent: detection, endpoints, subscription, tasks, recovery.

The tests that run tasks drive the real butte-master with a small JSON v1
scheduler written here (subscribe, accept an offer with a LAUNCH,
acknowledge, kill), so every update the test sees went agent -> master ->
framework over the real protocols.
"""
import base64
import json
import os
import platform
import queue
import signal
import socket
import subprocess
import threading

import pytest

from harness import BUILD, free_port, http, task_pids, wait_for

AGENT = os.path.join(BUILD, "butte-agent")
ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "ppc64le": "ppc64le",
        "aarch64": "aarch64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())
FAST = ["--registration_backoff_factor=100ms"]


# --------------------------------------------------------------------------
# a minimal JSON v1 scheduler
# --------------------------------------------------------------------------

class Scheduler:
    """Subscribes a framework to the master and records every event it gets."""

    def __init__(self, master_url, name="agent-test", capabilities=()):
        self.url = master_url + "/api/v1/scheduler"
        self.events = []
        self.acked = set()
        self.used = set()
        self.cond = threading.Condition()
        info = {"user": "root", "name": name, "failover_timeout": 0,
                "capabilities": [{"type": c} for c in capabilities]}
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        self.resp = http("POST", self.url, json=body, stream=True, timeout=(5, None),
                         headers={"Accept": "application/json"})
        assert self.resp.status_code == 200, self.resp.text
        self.stream_id = self.resp.headers["Mesos-Stream-Id"]
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        sub = self.wait_event(lambda e: e["type"] == "SUBSCRIBED", what="SUBSCRIBED")
        self.framework_id = sub["subscribed"]["framework_id"]["value"]

    def _read(self):
        buf = b""
        try:
            for chunk in self.resp.raw.stream(4096, decode_content=False):
                buf += chunk
                while b"\n" in buf:
                    head, rest = buf.split(b"\n", 1)
                    n = int(head)
                    if len(rest) < n:
                        break
                    record, buf = rest[:n], rest[n:]
                    with self.cond:
                        self.events.append(json.loads(record))
                        self.cond.notify_all()
        except Exception:  # noqa: BLE001 - the stream ends when the test closes it
            pass

    def close(self):
        """End the subscription now (closing alone waits for the next chunk)."""
        self.closed = True
        try:
            self.resp.raw.connection.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        self.resp.close()

    def wait_event(self, pred, timeout=30, what="event", start=0):
        def find():
            with self.cond:
                for e in self.events[start:]:
                    if pred(e):
                        return e
            return None
        return wait_for(find, timeout=timeout, what=what)

    def call(self, body, expect=202):
        body = dict(body, framework_id={"value": self.framework_id})
        r = http("POST", self.url, json=body, headers={"Mesos-Stream-Id": self.stream_id})
        assert r.status_code == expect, f"{body['type']}: {r.status_code} {r.text}"
        return r

    def updates(self, task_id):
        with self.cond:
            return [e["update"]["status"] for e in self.events
                    if e["type"] == "UPDATE" and e["update"]["status"]["task_id"]["value"] == task_id]

    def wait_update(self, task_id, state, timeout=30, skip=0, ack=False):
        """The (skip+1)-th update to state; with ack, acknowledge every update on the way."""
        def find():
            ups = self.updates(task_id)
            if ack:
                for u in ups:
                    if u.get("uuid") and u["uuid"] not in self.acked:
                        self.ack(u)
            ups = [s for s in ups if s["state"] == state]
            return ups[skip] if len(ups) > skip else None
        return wait_for(find, timeout=timeout, what=f"{state} for {task_id}")

    def ack(self, status):
        self.acked.add(status["uuid"])
        self.call({"type": "ACKNOWLEDGE", "acknowledge": {
            "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}})

    def offer(self, agent_id=None, timeout=30):
        def find():
            with self.cond:
                for e in self.events:
                    if e["type"] != "OFFERS":
                        continue
                    for o in e["offers"]["offers"]:
                        if o["id"]["value"] in self.used:
                            continue
                        if agent_id is None or o["agent_id"]["value"] == agent_id:
                            return o
            return None
        return wait_for(find, timeout=timeout, what="an offer")

    def launch(self, task_id, command, agent_id=None, shell=True, arguments=None, ports=None,
               env=None, discovery=None, kill_grace=None):
        """Accept the next offer with one task; returns the offer used."""
        o = self.offer(agent_id)
        self.used.add(o["id"]["value"])
        res = []
        for r in o["resources"]:
            if r["name"] == "cpus":
                res.append(dict(r, scalar={"value": 0.1}))
            elif r["name"] == "mem":
                res.append(dict(r, scalar={"value": 32}))
            elif r["name"] == "ports" and ports:
                res.append(dict(r, ranges={"range": [{"begin": p, "end": p} for p in ports]}))
        cmd = {"value": command, "shell": shell}
        if arguments is not None:
            cmd["arguments"] = arguments
        if env:
            cmd["environment"] = {"variables": [{"name": k, "value": v} for k, v in env.items()]}
        task = {"name": task_id, "task_id": {"value": task_id}, "agent_id": o["agent_id"],
                "resources": res, "command": cmd}
        if discovery:
            task["discovery"] = discovery
        if kill_grace is not None:
            task["kill_policy"] = {"grace_period": {"nanoseconds": int(kill_grace * 1e9)}}
        self.call({"type": "ACCEPT", "accept": {
            "offer_ids": [o["id"]], "filters": {"refuse_seconds": 0.1},
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}})
        return o

    def kill(self, task_id, agent_id):
        self.call({"type": "KILL", "kill": {"task_id": {"value": task_id},
                                            "agent_id": {"value": agent_id}}})


@pytest.fixture
def sched_cluster(cluster):
    """A master, one agent, a subscribed scheduler."""
    cluster.start_master()
    agent = cluster.start_agent(*FAST)
    s = Scheduler(cluster.master_url)
    yield cluster, agent, s
    s.close()


def agent_state(agent):
    r = http("GET", agent.url + "/state")
    assert r.status_code == 200, r.text
    return r.json()


def agent_id_of(agent):
    return wait_for(lambda: agent_state(agent)["id"], what="the agent's id")


def find_task(state, task_id):
    """(executor, task) of a task the agent runs or ran, or (None, None)."""
    for f in state["frameworks"] + state["completed_frameworks"]:
        for key in ("executors", "completed_executors"):
            for e in f[key]:
                for t in e["tasks"] + e["completed_tasks"]:
                    if t["id"] == task_id:
                        return e, t
    return None, None


def sandbox_of(agent, task_id):
    def find():
        e, _ = find_task(agent_state(agent), task_id)
        return e and e["directory"]
    return wait_for(find, what=f"the sandbox of {task_id}")


def read_file(agent, path, offset=0, length=None):
    params = {"path": path, "offset": offset}
    if length is not None:
        params["length"] = length
    return http("GET", agent.url + "/files/read", params=params)


def wait_stdout(agent, sandbox, text, timeout=20):
    def ok():
        r = read_file(agent, sandbox + "/stdout")
        return r.status_code == 200 and text in r.json()["data"] and r.json()["data"]
    return wait_for(ok, timeout=timeout, what=f"'{text}' in stdout")


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def run_to_running(s, task_id, command, **kw):
    s.launch(task_id, command, **kw)
    starting = s.wait_update(task_id, "TASK_STARTING")
    s.ack(starting)
    running = s.wait_update(task_id, "TASK_RUNNING")
    s.ack(running)
    return starting, running


def standalone_agent(cluster, *flags, resources=None, name="solo"):
    """An agent whose master never answers (a free port nobody listens on)."""
    port = free_port()
    args = ["--ip=127.0.0.1", f"--port={port}", f"--master=127.0.0.1:{free_port()}"] + FAST
    if resources is not None:
        args.append(f"--resources={resources}")
    p = cluster._proc(name, "butte-agent", args + list(flags), port, f"http://127.0.0.1:{port}")
    p.wait_healthy()
    return p


# --------------------------------------------------------------------------
# flags, detection and endpoints without a master
# --------------------------------------------------------------------------

def test_detects_what_resources_leave_out(cluster):
    agent = standalone_agent(cluster)
    st = agent_state(agent)
    res = st["resources"]
    assert res["cpus"] == os.cpu_count()
    assert res["mem"] > 0 and res["disk"] > 0
    assert res["ports"] == "[31000-32000]"
    assert st["attributes"]["arch"] == ARCH
    assert st["id"] == "" and st["subscribed"] is False


def test_explicit_resources_win(cluster):
    agent = standalone_agent(cluster, "--attributes=rack:r1;arch:custom",
                             resources="cpus:3;mem:512;ports(*):[7000-7010]")
    st = agent_state(agent)
    assert st["resources"]["cpus"] == 3
    assert st["resources"]["mem"] == 512
    assert st["resources"]["ports"] == "[7000-7010]"
    assert st["resources"]["disk"] > 0          # still detected
    assert st["attributes"] == {"rack": "r1", "arch": "custom"}


def test_serves_while_master_is_away_and_keeps_trying(cluster):
    agent = standalone_agent(cluster)
    assert http("GET", agent.url + "/health").status_code == 200
    wait_for(lambda: agent.log().count("subscribing to the master") >= 3,
             what="repeated subscription attempts")
    assert http("GET", agent.url + "/version").json()["version"]
    assert http("GET", agent.url + "/flags").json()["flags"]["port"] == str(agent.port)
    assert http("GET", agent.url + "/monitor/statistics").json() == []
    assert agent.alive()


@pytest.mark.parametrize("flag,words", [
    ("--resources=cpus:x", ["cpus:x"]),
    ("--port=abc", ["port", "abc"]),
    ("--containerizers=lxc", ["lxc"]),
    ("--master=zk://127.0.0.1:2181/mesos", ["zk://"]),
    ("--attributes=rack", ["rack"]),
    ("--no-such-flag=1", ["no-such-flag"]),
])
def test_bad_flags_exit_with_a_message(tmp_path, flag, words):
    r = subprocess.run([AGENT, f"--work_dir={tmp_path}/w", "--port=0", flag],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    for w in words:
        assert w in r.stderr, r.stderr


def test_env_flags(cluster, tmp_path):
    port = free_port()
    env = {"BUTTE_RESOURCES": "cpus:5;mem:100", "BUTTE_ATTRIBUTES": "zone:west"}
    p = cluster._proc("envagent", "butte-agent",
                      ["--ip=127.0.0.1", f"--port={port}", f"--master=127.0.0.1:{free_port()}"],
                      port, f"http://127.0.0.1:{port}", env)
    p.wait_healthy()
    st = agent_state(p)
    assert st["resources"]["cpus"] == 5 and st["attributes"]["zone"] == "west"


def test_files_endpoints_reject_bad_input(cluster):
    agent = standalone_agent(cluster)
    sandbox = os.path.join(agent.work_dir, "slaves", "S0", "frameworks", "F", "executors",
                           "t", "runs", "c")
    os.makedirs(sandbox)
    with open(os.path.join(sandbox, "stdout"), "w") as f:
        f.write("0123456789")
    outside = os.path.join(agent.work_dir, "secret")
    with open(outside, "w") as f:
        f.write("no")
    os.symlink(outside, os.path.join(sandbox, "link"))
    url = agent.url + "/files/read"

    def get(**params):
        return http("GET", url, params=params)

    r = get(path=sandbox + "/stdout", offset=2, length=3)
    assert r.status_code == 200 and r.json() == {"data": "234", "offset": 2}
    assert get(path=sandbox + "/stdout", offset=-1).json() == {"data": "", "offset": 10}
    assert get(path=sandbox + "/stdout", offset=50).json()["data"] == ""
    for params, code in [
        ({}, 400),
        ({"path": "/etc/passwd", "offset": 0}, 403),
        ({"path": outside, "offset": 0}, 403),
        ({"path": sandbox + "/link", "offset": 0}, 403),
        ({"path": sandbox + "/../../../../../../../../secret", "offset": 0}, 403),
        ({"path": sandbox + "/missing", "offset": 0}, 404),
        ({"path": sandbox + "/stdout", "offset": "abc"}, 400),
        ({"path": sandbox + "/stdout", "offset": -5}, 400),
        ({"path": sandbox + "/stdout", "offset": 0, "length": "x"}, 400),
        ({"path": sandbox, "offset": 0}, 400),
    ]:
        r = get(**params)
        assert r.status_code == code, (params, r.status_code, r.text)
        assert r.json()["message"], r.text
    r = http("GET", agent.url + "/files/browse", params={"path": sandbox})
    assert r.status_code == 200
    names = sorted(os.path.basename(e["path"]) for e in r.json())
    assert names == ["link", "stdout"]
    entry = [e for e in r.json() if e["path"].endswith("/stdout")][0]
    assert entry["size"] == 10 and entry["mode"].startswith("-rw")
    assert http("GET", agent.url + "/files/browse",
                params={"path": "/etc"}).status_code == 403
    assert http("GET", agent.url + "/files/browse",
                params={"path": sandbox + "/nope"}).status_code == 404
    assert agent.alive()


# --------------------------------------------------------------------------
# subscription
# --------------------------------------------------------------------------

def test_registers_with_detected_arch(cluster):
    cluster.start_master()
    agent = cluster.start_agent(*FAST, resources="cpus:2;mem:1024")
    slave = cluster.wait_agent_registered(agent)
    assert slave["attributes"]["arch"] == ARCH
    assert slave["resources"]["ports"] == "[31000-32000]"
    assert slave["resources"]["disk"] > 0
    st = agent_state(agent)
    assert st["id"] == slave["id"]
    assert st["subscribed"] is True


def test_resubscribes_after_master_restart(cluster):
    cluster.start_master()
    agent = cluster.start_agent(*FAST)
    first = cluster.wait_agent_registered(agent)["id"]
    cluster.master.restart()

    def back():
        for s in cluster.master_state()["slaves"]:
            if s["port"] == agent.port and s.get("active", True):
                return s["id"]
        return None
    assert wait_for(back, timeout=30, what="the agent to subscribe again") == first
    assert agent_state(agent)["id"] == first
    assert agent.alive()


def test_keeps_its_id_across_agent_restart(cluster):
    cluster.start_master()
    agent = cluster.start_agent(*FAST)
    first = cluster.wait_agent_registered(agent)["id"]
    agent.restart()
    wait_for(lambda: agent_state(agent)["subscribed"], what="resubscription")
    assert agent_state(agent)["id"] == first


# --------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------

def test_task_runs_reports_and_is_killed(sched_cluster):
    cluster, agent, s = sched_cluster
    starting, running = run_to_running(s, "t-echo", "echo hello; sleep 30")
    for st in (starting, running):
        assert len(base64.b64decode(st["uuid"])) == 16
        assert st["source"] == "SOURCE_EXECUTOR"
    assert starting["uuid"] != running["uuid"]
    cs = running["container_status"]
    assert cs["network_infos"][0]["ip_addresses"][0]["ip_address"] == "127.0.0.1"
    assert cs["container_id"]["value"]
    sandbox = sandbox_of(agent, "t-echo")
    assert sandbox.startswith(os.path.realpath(agent.work_dir) + "/slaves/")
    wait_stdout(agent, sandbox, "hello\n")
    pids = wait_for(lambda: task_pids(sandbox), what="the task's processes")
    pgid = os.getpgid(pids[0])
    assert all(os.getpgid(p) == pgid for p in pids if os.path.exists(f"/proc/{p}"))
    stats = http("GET", agent.url + "/monitor/statistics").json()
    assert [e["executor_id"] for e in stats] == ["t-echo"]
    s.kill("t-echo", running["agent_id"]["value"])
    killed = s.wait_update("t-echo", "TASK_KILLED")
    assert "signal" in killed["message"]
    s.ack(killed)
    wait_for(lambda: not group_alive(pgid), what="the task's process group to vanish")
    # acknowledged terminal update: the task is forgotten, listed as completed only
    def forgotten():
        st = agent_state(agent)
        return not st["frameworks"] and find_task(st, "t-echo")[1]["state"] == "TASK_KILLED"
    wait_for(forgotten, what="the task to move to completed_frameworks")


def test_task_environment(sched_cluster):
    cluster, agent, s = sched_cluster
    disc = {"visibility": "FRAMEWORK", "name": "web",
            "ports": {"ports": [{"number": 31001, "name": "http"},
                                {"number": 31000, "name": "admin"}]}}
    s.launch("t-env", "env; pwd", ports=[31000, 31001], discovery=disc,
             env={"MARATHON_APP_ID": "/web", "PORT1": "9999"})
    done = s.wait_update("t-env", "TASK_FINISHED", ack=True)
    assert done["message"] == "Command exited with status 0"
    sandbox = sandbox_of(agent, "t-env")
    out = wait_stdout(agent, sandbox, "MESOS_TASK_ID=")
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env["MESOS_TASK_ID"] == "t-env"
    assert env["MESOS_SANDBOX"] == sandbox and env["MESOS_DIRECTORY"] == sandbox
    assert env["MESOS_FRAMEWORK_ID"] == s.framework_id
    assert env["MESOS_AGENT_ID"] == agent_state(agent)["id"]
    assert env["HOST"] == "127.0.0.1"
    assert env["PORT0"] == "31001" and env["PORT"] == "31001"   # discovery order
    assert env["PORT1"] == "9999"                               # the task's own value wins
    assert env["PORTS"] == "31001,31000"
    assert env["PORT_HTTP"] == "31001" and env["PORT_ADMIN"] == "31000"
    assert env["MARATHON_APP_ID"] == "/web"
    assert sandbox in out.splitlines()                          # pwd


def test_nonzero_exit_fails(sched_cluster):
    cluster, agent, s = sched_cluster
    s.launch("t-exit", "echo oops >&2; exit 3")
    failed = s.wait_update("t-exit", "TASK_FAILED", ack=True)
    assert failed["message"] == "Command exited with status 3"
    r = read_file(agent, sandbox_of(agent, "t-exit") + "/stderr")
    assert r.json()["data"] == "oops\n"


def test_exec_failure_is_reported(sched_cluster):
    cluster, agent, s = sched_cluster
    s.launch("t-missing", "/nonexistent/program", shell=False,
             arguments=["program", "--flag"])
    failed = s.wait_update("t-missing", "TASK_FAILED", ack=True)
    assert failed["message"] == \
        "failed to execute '/nonexistent/program': No such file or directory"
    assert not [u for u in s.updates("t-missing") if u["state"] == "TASK_RUNNING"]


def test_argv_without_shell(sched_cluster):
    cluster, agent, s = sched_cluster
    s.launch("t-argv", "printf", shell=False, arguments=["printf", "%s|%s", "a b", "$HOME"])
    s.wait_update("t-argv", "TASK_FINISHED", ack=True)
    wait_stdout(agent, sandbox_of(agent, "t-argv"), "a b|$HOME")


def test_path_search_uses_the_tasks_path(sched_cluster, tmp_path):
    """A command without a slash is looked up in the task's PATH, as execvp does: a file
    without a known format runs under /bin/sh; one that is not executable is refused."""
    cluster, agent, s = sched_cluster
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "greet"
    script.write_text('echo "hello from $0 $1"\n')
    script.chmod(0o755)
    (bin_dir / "locked").write_text("echo never\n")
    s.launch("t-path", "greet", shell=False, arguments=["greet", "there"],
             env={"PATH": f"/nonexistent:{bin_dir}"})
    s.wait_update("t-path", "TASK_FINISHED", ack=True)
    wait_stdout(agent, sandbox_of(agent, "t-path"), f"hello from {script} there")
    s.launch("t-locked", "locked", shell=False, env={"PATH": str(bin_dir)})
    failed = s.wait_update("t-locked", "TASK_FAILED", ack=True)
    assert failed["message"] == "failed to execute 'locked': Permission denied"
    s.launch("t-nowhere", "nowhere", shell=False, env={"PATH": str(bin_dir)})
    failed = s.wait_update("t-nowhere", "TASK_FAILED", ack=True)
    assert failed["message"] == "failed to execute 'nowhere': No such file or directory"

def test_kill_escalates_to_sigkill(sched_cluster):
    cluster, agent, s = sched_cluster
    run_to_running(s, "t-stubborn", "trap '' TERM; echo ready; while true; do sleep 0.1; done",
                   kill_grace=0.5)
    wait_stdout(agent, sandbox_of(agent, "t-stubborn"), "ready")
    s.kill("t-stubborn", agent_state(agent)["id"])
    killed = s.wait_update("t-stubborn", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Killed"


def test_unacknowledged_update_is_resent_after_resubscription(sched_cluster):
    cluster, agent, s = sched_cluster
    s.launch("t-retry", "sleep 30")
    first = s.wait_update("t-retry", "TASK_STARTING")
    # no acknowledgement: RUNNING must wait behind STARTING
    agent.restart()
    again = s.wait_update("t-retry", "TASK_STARTING", skip=1)
    assert again["uuid"] == first["uuid"]
    assert not [u for u in s.updates("t-retry") if u["state"] == "TASK_RUNNING"]
    s.ack(again)
    running = s.wait_update("t-retry", "TASK_RUNNING")
    s.ack(running)


def test_task_survives_agent_restart(sched_cluster):
    cluster, agent, s = sched_cluster
    _, running = run_to_running(s, "t-survive", "echo up; sleep 60")
    sandbox = sandbox_of(agent, "t-survive")
    wait_stdout(agent, sandbox, "up")
    pids = wait_for(lambda: task_pids(sandbox), what="task processes")
    pgid = os.getpgid(pids[0])
    agent.terminate()
    agent.wait(timeout=10)
    assert group_alive(pgid), "stopping the agent killed the task"
    agent.start()
    agent.wait_healthy()
    wait_for(lambda: agent_state(agent)["subscribed"], what="resubscription")
    _, t = find_task(agent_state(agent), "t-survive")
    assert t["state"] == "TASK_RUNNING"
    assert group_alive(pgid)
    s.kill("t-survive", running["agent_id"]["value"])
    killed = s.wait_update("t-survive", "TASK_KILLED")
    assert killed["message"] == "Command terminated with signal Terminated"
    s.ack(killed)
    wait_for(lambda: not group_alive(pgid), what="the process group to vanish")


def test_task_that_ends_while_agent_is_down(sched_cluster):
    cluster, agent, s = sched_cluster
    run_to_running(s, "t-gate", "while [ ! -e go ]; do sleep 0.05; done; exit 0")
    sandbox = sandbox_of(agent, "t-gate")
    agent.terminate()
    agent.wait(timeout=10)
    open(os.path.join(sandbox, "go"), "w").close()
    wait_for(lambda: not task_pids(sandbox), what="the task to end")
    agent.start()
    agent.wait_healthy()
    done = s.wait_update("t-gate", "TASK_FINISHED")
    assert done["message"] == "Command exited with status 0"
    s.ack(done)


def test_sigusr1_kills_tasks_and_exits(sched_cluster):
    cluster, agent, s = sched_cluster
    run_to_running(s, "t-down", "sleep 60")
    sandbox = sandbox_of(agent, "t-down")
    pgid = os.getpgid(wait_for(lambda: task_pids(sandbox), what="task processes")[0])
    agent.kill(signal.SIGUSR1)
    assert agent.wait(timeout=20) == 0
    assert not group_alive(pgid)
    killed = s.wait_update("t-down", "TASK_KILLED")
    assert killed["state"] == "TASK_KILLED"


def test_task_runs_with_seccomp_and_no_core_dumps(sched_cluster):
    cluster, agent, s = sched_cluster
    s.launch("t-limits", "grep '^Seccomp:' /proc/self/status; ulimit -c; echo end")
    s.wait_update("t-limits", "TASK_FINISHED", ack=True)
    out = wait_stdout(agent, sandbox_of(agent, "t-limits"), "end")
    lines = out.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"], out
    assert lines[1] == "0", out



def _stat(pid):
    """(comm, ppid) of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    comm = text[text.index("(") + 1:text.rindex(")")]
    return comm, int(text[text.rindex(")") + 2:].split()[1])


def _children(ppid, comm):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _stat(int(entry)) == (comm, ppid):
                    found.append(int(entry))
            except (OSError, ValueError):
                pass
    return found


def _mappings(pid):
    with open(f"/proc/{pid}/maps") as f:
        return len(f.readlines())


def test_a_faulting_supervisor_takes_only_its_own_task(sched_cluster):
    """The supervisors share the launcher's memory: one that crashes must not take the
    others (or the launcher) with it, and its task is reported lost."""
    cluster, agent, s = sched_cluster
    names = ["t-fault-a", "t-fault-b", "t-fault-c"]
    for name in names:
        run_to_running(s, name, "sleep 60")
    sups = {}
    for name in names:
        pids = wait_for(lambda n=name: task_pids(sandbox_of(agent, n)), what="task processes")
        sups[name] = _stat(pids[0])[1]
        assert _stat(sups[name]) == ("butte-supervise", agent.pid)
    os.kill(sups["t-fault-a"], signal.SIGSEGV)
    failed = s.wait_update("t-fault-a", "TASK_FAILED", ack=True)
    assert "supervisor ended without an exit status" in failed["message"], failed
    for name in ("t-fault-b", "t-fault-c"):
        assert _stat(sups[name])[0] == "butte-supervise"
        _, t = find_task(agent_state(agent), name)
        assert t["state"] == "TASK_RUNNING"
    # the launcher is still there for the next task
    run_to_running(s, "t-fault-d", "sleep 60")
    for name in ("t-fault-b", "t-fault-c", "t-fault-d"):
        s.kill(name, agent_id_of(agent))
        s.wait_update(name, "TASK_KILLED", ack=True)


def test_launcher_unmaps_what_ended_supervisors_used(sched_cluster):
    """Each supervisor's stack and arguments live in a mapping of the launcher's;
    it is unmapped once the supervisor is gone."""
    cluster, agent, s = sched_cluster
    run_to_running(s, "t-map-0", "sleep 60")
    launcher = wait_for(lambda: _children(agent.pid, "butte-launcher"), what="the launcher")[0]
    before = _mappings(launcher)
    for i in range(1, 9):
        s.launch(f"t-map-{i}", "sleep 60")
    for i in range(1, 9):
        s.wait_update(f"t-map-{i}", "TASK_RUNNING", ack=True)
    sup = _stat(wait_for(lambda: task_pids(sandbox_of(agent, "t-map-1")), what="a task")[0])[1]
    with open(f"/proc/{sup}/maps") as a, open(f"/proc/{launcher}/maps") as b:
        shared = a.read() == b.read()
    # the AddressSanitizer build forks its supervisors (they hold no mapping of the launcher's)
    with open(os.path.join(BUILD, "butte-supervise"), "rb") as f:
        assert shared == (b"__asan_init" not in f.read())
    if shared:
        assert _mappings(launcher) >= before + 8, "a supervisor without a mapping of its own"
    for i in range(1, 9):
        s.kill(f"t-map-{i}", agent_id_of(agent))
    for i in range(1, 9):
        s.wait_update(f"t-map-{i}", "TASK_KILLED", ack=True)
    wait_for(lambda: _mappings(launcher) <= before, timeout=10,
             what="the launcher to unmap the ended supervisors' slots")
    s.kill("t-map-0", agent_id_of(agent))
    s.wait_update("t-map-0", "TASK_KILLED", ack=True)


def test_silent_master_is_detected_by_missed_heartbeats(cluster):
    cluster.start_master("--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=50")
    agent = cluster.start_agent(*FAST)
    first = cluster.wait_agent_registered(agent)["id"]
    wait_for(lambda: agent.log().count("heartbeat from the master") >= 2, what="heartbeats")
    cluster.master.kill(signal.SIGSTOP)
    try:
        # 5 x 200 ms without a heartbeat: the agent gives the master up
        wait_for(lambda: not agent_state(agent)["subscribed"], timeout=10,
                 what="the agent to notice the silent master")
        assert "no heartbeat from the master" in agent.log()
    finally:
        cluster.master.kill(signal.SIGCONT)
    wait_for(lambda: agent_state(agent)["subscribed"], timeout=40, what="resubscription")
    assert agent_state(agent)["id"] == first


def test_unacknowledged_update_is_retried_after_ten_seconds(sched_cluster):
    cluster, agent, s = sched_cluster
    s.launch("t-timer", "sleep 30")
    first = s.wait_update("t-timer", "TASK_STARTING")
    again = s.wait_update("t-timer", "TASK_STARTING", skip=1, timeout=20)
    assert again["uuid"] == first["uuid"]
    assert again["timestamp"] == first["timestamp"]
    s.wait_update("t-timer", "TASK_RUNNING", ack=True)


def test_second_agent_on_the_same_work_dir_is_refused(cluster):
    agent = standalone_agent(cluster)
    r = subprocess.run([AGENT, f"--work_dir={agent.work_dir}", "--ip=127.0.0.1",
                        f"--port={free_port()}", "--master=127.0.0.1:1"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert "in use by another butte-agent" in r.stderr, r.stderr
    assert agent.alive()
