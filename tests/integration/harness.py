"""Start real butte daemons on loopback for end-to-end tests.

A Cluster owns a temporary directory; every daemon it starts gets its own
work dir and log file there, and ports found free at run time. Waits poll
a condition with a deadline (wait_for); nothing sleeps to synchronise.
stop() ends every daemon, kills task processes left under the directory,
and fails when a daemon log shows a sanitizer report.
"""
import json
import os
import signal
import socket
import subprocess
import time

import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUTTE_BUILD") or os.path.join(REPO, "build")
SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")

_session = requests.Session()
_session.trust_env = False  # never go through a proxy: traffic stays on loopback


def http(method, url, **kw):
    """One HTTP request with a default timeout; returns the requests.Response."""
    kw.setdefault("timeout", 10)
    return _session.request(method, url, **kw)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout=20.0, interval=0.05, what="condition"):
    """Poll fn() until it returns something truthy; return that value.

    Exceptions raised by fn count as "not yet". Raises AssertionError
    naming `what` (and the last exception, if any) at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def _cwd_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def task_pids(root):
    """Pids of processes whose working directory lies under root (task processes)."""
    root = os.path.realpath(str(root))
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == os.getpid():
            continue
        cwd = _cwd_of(pid)
        if cwd and (cwd == root or cwd.startswith(root + os.sep)):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append(pid)
    return found


def task_env(root, task_id):
    """(pid, environment) of the process of task task_id under root, or None."""
    for pid in task_pids(root):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.decode().split("=", 1) for kv in f.read().split(b"\0")
                           if b"=" in kv)
        except OSError:
            continue
        if env.get("MESOS_TASK_ID") == task_id:
            return pid, env
    return None


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def relay_api(cluster, method, path, body=None, **kw):
    """A JSON request to the cluster's relay."""
    return http(method, cluster.relay_url + path, json=body, headers=JSON_HEADERS, **kw)


def settled(cluster, timeout=30):
    """Wait until no deployment runs: a change to a deploying app is 409 (as in Marathon),
    and a deployment ends a moment after its last task is RUNNING."""
    wait_for(lambda: relay_api(cluster, "GET", "/v2/deployments").json() == [],
             timeout=timeout, what="every deployment to finish")


def start_relay_cluster(cluster, agent=None, master_flags=("--allocation_interval=100ms",)):
    """A master, an agent with resources `agent` (none when None) and relay."""
    cluster.start_master(*master_flags)
    if agent is not None:
        cluster.start_agent(resources=agent)
    cluster.start_relay()


def ok(r, code=200):
    """The JSON body of a response that must have status code (None when empty)."""
    assert r.status_code == code, (r.status_code, r.text)
    return r.json() if r.content else None


class Proc:
    """One daemon process started by the harness."""

    def __init__(self, name, binary, args, port, work_dir, log_path, url, env=None):
        self.name = name
        self.binary = binary
        self.args = list(args)
        self.port = port
        self.work_dir = work_dir
        self.log_path = log_path
        self.url = url
        self.env = env
        self.popen = None
        self.start()

    @property
    def pid(self):
        return self.popen.pid

    def start(self):
        os.makedirs(self.work_dir, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        if self.env:
            env.update(self.env)
        log = open(self.log_path, "ab")
        log.write(f"=== start {self.binary} {' '.join(self.args)}\n".encode())
        log.flush()
        self.popen = subprocess.Popen(
            [self.binary] + self.args, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.popen.pid, sig)

    def terminate(self):
        self.kill(signal.SIGTERM)

    def wait(self, timeout=10):
        return self.popen.wait(timeout=timeout)

    def stop(self, timeout=5):
        if not self.alive():
            return
        self.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.popen.wait(timeout=10)

    def restart(self, wait=True):
        self.stop()
        self.start()
        if wait:
            self.wait_healthy()

    def wait_healthy(self, timeout=20):
        path = "/ping" if self.name.startswith("relay") else "/health"

        def ok():
            if not self.alive():
                raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
            return http("GET", self.url + path, timeout=2).status_code == 200
        wait_for(ok, timeout=timeout, what=f"{self.name} to answer {path}")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Cluster:
    """A master, agents and relays on loopback inside one temporary directory."""

    log_level = "debug"         # every daemon's --log_level

    def __init__(self, tmpdir):
        self.dir = str(tmpdir)
        self.master = None
        self.relay = None
        self.agents = []
        self.procs = []

    # -- starting daemons ---------------------------------------------------
    def _proc(self, name, binary, args, port, url, env=None, build=None):
        work_dir = os.path.join(self.dir, name)
        args = list(args) + [f"--work_dir={work_dir}", f"--log_level={self.log_level}"]
        p = Proc(name, os.path.join(build or BUILD, binary), args, port, work_dir,
                 os.path.join(self.dir, name + ".log"), url, env)
        self.procs.append(p)
        return p

    def start_master(self, *flags, port=None, env=None):
        port = port or free_port()
        p = self._proc("master", "butte-master",
                       ["--ip=127.0.0.1", f"--port={port}"] + list(flags),
                       port, f"http://127.0.0.1:{port}", env)
        self.master = p
        p.wait_healthy()
        return p

    def start_agent(self, *flags, resources="cpus:2;mem:1024;disk:1024;ports(*):[31000-31099]",
                    ip="127.0.0.1", port=None, name=None, wait_registered=True, env=None,
                    build=None, timeout=20):
        """build: another build folder for this agent's binary (e.g. build-ppc64le,
        with env={"QEMU_LD_PREFIX": ...}); timeout bounds its start and registration."""
        assert self.master is not None, "start the master first"
        port = port or free_port()
        name = name or f"agent{len(self.agents) + 1}"
        args = [f"--ip={ip}", f"--port={port}", f"--master=127.0.0.1:{self.master.port}"]
        if resources is not None:
            args.append(f"--resources={resources}")
        p = self._proc(name, "butte-agent", args + list(flags), port, f"http://{ip}:{port}", env,
                       build)
        self.agents.append(p)
        p.wait_healthy(timeout=timeout)
        if wait_registered:
            self.wait_agent_registered(p, timeout=timeout)
        return p

    def wait_agent_registered(self, agent, timeout=20):
        def registered():
            for s in self.master_state().get("slaves", []):
                if s.get("port") == agent.port and s.get("active", True):
                    return s
            return None
        return wait_for(registered, timeout=timeout, what=f"{agent.name} to register")

    def start_relay(self, *flags, port=None, env=None):
        assert self.master is not None, "start the master first"
        port = port or free_port()
        p = self._proc("relay", "butte-relay",
                       [f"--http_port={port}", f"--master=127.0.0.1:{self.master.port}"]
                       + list(flags), port, f"http://127.0.0.1:{port}", env)
        self.relay = p
        p.wait_healthy()
        return p

    # -- looking at the cluster ---------------------------------------------
    @property
    def master_url(self):
        return self.master.url

    @property
    def relay_url(self):
        return self.relay.url

    def master_state(self):
        r = http("GET", self.master_url + "/master/state")
        r.raise_for_status()
        return r.json()

    def relay_get(self, path, **kw):
        return http("GET", self.relay_url + path, **kw)

    def dump_logs(self, tail=4000):
        out = []
        for p in self.procs:
            out.append(f"----- {p.name} ({p.log_path}) -----\n{p.log()[-tail:]}")
        return "\n".join(out)

    # -- tearing down ---------------------------------------------------------
    def stop(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                pass
        for pid in task_pids(self.dir):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        reports = []
        for p in self.procs:
            text = p.log()
            if any(m in text for m in SANITIZER_MARKERS):
                reports.append(f"{p.name}:\n{text[-6000:]}")
        if reports:
            raise AssertionError("sanitizer report in daemon logs:\n" + "\n".join(reports))


def pretty(obj):
    return json.dumps(obj, indent=2, sort_keys=True)
