"""End-to-end tests of a mixed x86_64 and ppc64le (OpenPower) cluster.

The master, relay and one agent are the native binaries (BUTTE_BUILD); the
second agent is the ppc64le build (build-ppc64le, brought up to date with
`make ppc64le` first) started as it is: the kernel hands it to qemu-user
through binfmt_misc and QEMU_LD_PREFIX points qemu at the ppc64el sysroot.
The agents report their `arch` attribute, relay places apps by it with
Marathon constraints, and an app that may only run on ppc64le waits in
/v2/queue when the ppc64le agent is gone instead of landing on x86_64.
Tasks launched by the emulated agent are ordinary x86_64 processes
(/bin/sh): only the agent is emulated.

The emulated agent is slow to start and to answer, so its waits are longer
than the native ones, but every wait is bounded.
"""
import os
import signal
import subprocess

import pytest

from harness import BUILD, REPO, http, wait_for

PPC_BUILD = os.environ.get("BUTTE_PPC64LE_BUILD") or os.path.join(REPO, "build-ppc64le")
SYSROOT = os.path.join(PPC_BUILD, "sysroot")
PPC_ENV = {"QEMU_LD_PREFIX": SYSROOT}
QEMU_WAIT = 90  # seconds for anything the emulated agent must do

MASTER_FLAGS = ("--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=3",
                "--allocation_interval=100ms")
X86_RES = "cpus:4;mem:2048;disk:1024;ports(*):[31000-31099]"
PPC_RES = "cpus:4;mem:2048;disk:1024;ports(*):[31100-31199]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
BINARIES = ("butte-master", "butte-agent", "butte-supervise", "butte-relay", "butte")
EM_PPC64 = 21


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")


def ppc_build_ready():
    return all(os.path.isfile(os.path.join(PPC_BUILD, b)) for b in BINARIES) and \
        os.path.isdir(os.path.join(SYSROOT, "lib64"))


@pytest.fixture(scope="module", autouse=True)
def ppc64le_build():
    """build-ppc64le is up to date (`make ppc64le`, a no-op when it is) and runs here.

    BUTTE_PPC64LE_BUILD names a ready-made build instead; it is used as it is.
    """
    if "BUTTE_PPC64LE_BUILD" not in os.environ:
        # a make that runs these tests must not hand its flags (BUILD, SAN) on
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        try:
            p = subprocess.run(["make", "-C", REPO, "--no-print-directory", "ppc64le"],
                               capture_output=True, text=True, timeout=280, env=env)
        except subprocess.TimeoutExpired:
            pytest.fail("'make ppc64le' did not finish within 280 s")
        assert p.returncode == 0, f"'make ppc64le' failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    assert ppc_build_ready(), (
        f"no ppc64le build in {PPC_BUILD}: run 'make ppc64le' (needs 'make deps')")
    for b in BINARIES:
        assert elf_machine(os.path.join(PPC_BUILD, b)) == EM_PPC64, f"{b} is not a ppc64le program"
    p = subprocess.run(["sh", os.path.join(REPO, "tools", "ppc64le-binfmt.sh")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"ppc64le programs cannot start here: {p.stderr.strip()}"


def api(cluster, method, path, body=None):
    return http(method, cluster.relay_url + path, json=body, headers=JSON)


def sleeper(app_id, instances, **extra):
    app = {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 16,
           "instances": instances, "backoffSeconds": 0.1}
    app.update(extra)
    return app


def start(cluster):
    """master, a native agent, a ppc64le agent under qemu, relay; returns the two agents."""
    cluster.start_master(*MASTER_FLAGS)
    x86 = cluster.start_agent("--hostname=x86-node", resources=X86_RES, name="x86")
    ppc = cluster.start_agent("--hostname=power-node", resources=PPC_RES, name="ppc",
                              build=PPC_BUILD, env=PPC_ENV, timeout=QEMU_WAIT)
    return x86, ppc


def slaves_by_port(cluster):
    return {s["port"]: s for s in cluster.master_state()["slaves"]}


def agent_ids(cluster, *agents):
    slaves = slaves_by_port(cluster)
    return [slaves[a.port]["id"] for a in agents]


def running_tasks(cluster, app_id, n):
    """the app's tasks once exactly n are listed and all of them run"""
    r = api(cluster, "GET", "/v2/apps/" + app_id.lstrip("/"))
    assert r.status_code == 200, r.text
    app = r.json()["app"]
    tasks = app["tasks"]
    if app["tasksRunning"] != n or len(tasks) != n:
        return None
    return tasks if all(t["state"] == "TASK_RUNNING" for t in tasks) else None


def wait_running(cluster, app_id, n):
    return wait_for(lambda: running_tasks(cluster, app_id, n), timeout=QEMU_WAIT,
                    what=f"{app_id} to run {n} tasks")


# --- the build --------------------------------------------------------------------

def test_ppc64le_binaries_start_under_qemu():
    for b in BINARIES:
        p = subprocess.run([os.path.join(PPC_BUILD, b), "--help"], env=dict(os.environ, **PPC_ENV),
                           capture_output=True, text=True, timeout=QEMU_WAIT)
        out = p.stdout + p.stderr
        assert p.returncode == 0, f"{b} --help exited {p.returncode}: {out[-2000:]}"
        assert "usage" in out.lower(), out


# --- arch is reported -------------------------------------------------------------

def test_mixed_cluster_reports_each_agents_arch(cluster):
    x86, ppc = start(cluster)
    slaves = slaves_by_port(cluster)
    assert slaves[x86.port]["attributes"]["arch"] == "x86_64"
    assert slaves[ppc.port]["attributes"]["arch"] == "ppc64le"
    assert slaves[ppc.port]["hostname"] == "power-node"
    # the emulated agent says the same about itself
    own = http("GET", ppc.url + "/state", timeout=QEMU_WAIT).json()
    assert own["attributes"]["arch"] == "ppc64le", own.get("attributes")

    # `butte agent list`, native and emulated, shows the ARCH column
    for build, env in ((BUILD, {}), (PPC_BUILD, PPC_ENV)):
        p = subprocess.run([os.path.join(build, "butte"), "--dir", cluster.dir,
                            "--master", cluster.master_url, "agent", "list"],
                           env=dict(os.environ, **env), capture_output=True, text=True,
                           timeout=QEMU_WAIT)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0].split()[:3] == ["ID", "HOSTNAME", "ARCH"], p.stdout
        rows = {ln.split()[1]: ln.split()[2] for ln in lines[1:] if ln.strip()}
        assert rows == {"x86-node": "x86_64", "power-node": "ppc64le"}, p.stdout


def test_agent_attributes_flag_may_name_arch(cluster):
    cluster.start_master(*MASTER_FLAGS)
    a = cluster.start_agent("--attributes=arch:ppc64le;rack:r1", resources=X86_RES)
    attrs = slaves_by_port(cluster)[a.port]["attributes"]
    assert attrs == {"arch": "ppc64le", "rack": "r1"}, attrs


# --- placement by arch ------------------------------------------------------------

def test_arch_constraints_place_apps(cluster):
    x86, ppc = start(cluster)
    cluster.start_relay()
    x86_id, ppc_id = agent_ids(cluster, x86, ppc)

    r = api(cluster, "POST", "/v2/apps", sleeper("/power", 2, constraints=[["arch", "LIKE", "ppc64le"]]))
    assert r.status_code == 201, r.text
    r = api(cluster, "POST", "/v2/apps", sleeper("/intel", 2, constraints=[["arch", "UNLIKE", "ppc64le"]]))
    assert r.status_code == 201, r.text
    r = api(cluster, "POST", "/v2/apps", sleeper("/spread", 2, constraints=[["hostname", "UNIQUE"]]))
    assert r.status_code == 201, r.text

    tasks = wait_running(cluster, "/power", 2)
    assert {t["slaveId"] for t in tasks} == {ppc_id}, tasks
    assert {t["host"] for t in tasks} == {"power-node"}, tasks
    tasks = wait_running(cluster, "/intel", 2)
    assert {t["slaveId"] for t in tasks} == {x86_id}, tasks
    tasks = wait_running(cluster, "/spread", 2)
    assert sorted(t["slaveId"] for t in tasks) == sorted([x86_id, ppc_id]), tasks


# --- losing the ppc64le agent ---------------------------------------------------------

def relay_offers_seen(cluster):
    r = api(cluster, "GET", "/metrics")
    return r.json()["counters"]["marathon.mesos.offers.incoming.counter"]["count"]


def queued(cluster, app_id, count):
    for q in api(cluster, "GET", "/v2/queue").json()["queue"]:
        if q["app"]["id"] == app_id and q["count"] == count:
            return q
    return None


def constraint_reason(entry):
    """Marathon's reject summary for UnfulfilledConstraint, when relay gives one"""
    summary = entry.get("processedOffersSummary") or {}
    for r in summary.get("rejectSummaryLastOffers") or []:
        if r.get("reason") == "UnfulfilledConstraint":
            return r
    return None


def test_killed_ppc64le_agent_leaves_its_tasks_queued(cluster):
    x86, ppc = start(cluster)
    cluster.start_relay()
    x86_id, ppc_id = agent_ids(cluster, x86, ppc)
    api(cluster, "POST", "/v2/apps", sleeper("/power", 2, constraints=[["arch", "LIKE", "ppc64le"]]))
    api(cluster, "POST", "/v2/apps", sleeper("/any", 1))
    tasks = wait_running(cluster, "/power", 2)
    assert {t["slaveId"] for t in tasks} == {ppc_id}
    wait_running(cluster, "/any", 1)

    ppc.kill(signal.SIGKILL)

    def power_on_x86():
        r = api(cluster, "GET", "/v2/apps/power")
        return [t for t in r.json()["app"]["tasks"] if t["slaveId"] == x86_id]

    def waiting():
        assert not power_on_x86(), "a ppc64le-only task landed on x86_64"
        return queued(cluster, "/power", 2)
    wait_for(waiting, timeout=60, what="/power to wait in /v2/queue with count 2")

    # relay keeps getting the x86_64 agent's offers and keeps leaving them
    seen = relay_offers_seen(cluster)

    def more_offers():
        assert not power_on_x86(), "a ppc64le-only task landed on x86_64"
        return relay_offers_seen(cluster) >= seen + 3
    wait_for(more_offers, timeout=60, what="relay to process more offers of the x86_64 agent")

    entry = queued(cluster, "/power", 2)
    assert entry is not None, api(cluster, "GET", "/v2/queue").text
    app = api(cluster, "GET", "/v2/apps/power").json()["app"]
    assert app["tasksRunning"] == 0 and not power_on_x86(), app

    def any_on_x86():
        r = api(cluster, "GET", "/v2/apps/any")
        return [t for t in r.json()["app"]["tasks"]
                if t["slaveId"] == x86_id and t["state"] == "TASK_RUNNING"]
    wait_for(any_on_x86, timeout=30, what="the unconstrained app to run on x86_64")
    # Marathon says why: the offers were declined for the constraint
    reason = constraint_reason(entry)
    assert reason is not None and reason["declined"] > 0, entry.get("processedOffersSummary")
    assert entry["processedOffersSummary"]["unusedOffersCount"] > 0, entry
