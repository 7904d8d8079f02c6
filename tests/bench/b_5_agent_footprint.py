"""Item 5, the agent's part: butte-agent's resident memory.

VmRSS from /proc/<pid>/status of a butte-agent registered with a master:
idle (no task), and with N tasks running (`sleep 1000` launched through
relay). With tasks, two figures: the agent process alone, and the agent plus
the supervisor it starts per task (its children, counted by Pss), which Mesos and kubelet
would count elsewhere (executors, container shims) but which are memory
butte costs per task all the same (the agent's task launcher is one of
them). Task processes themselves are not counted. Idle is measured on fresh agents (one warm-up, five runs).
"""
import ctypes
import os
import time

import requests

import harness
from benchlib import Stats

TITLE = "Footprint: the agent"
ORDER = 5
DOC = """\
Resident memory (`VmRSS` in `/proc/<pid>/status`, which counts the shared
pages of libc, libcurl, libevent, SQLite and the other libraries mapped)
of a `butte-agent` registered with a master. Idle: five fresh agents after
a warm-up one, each measured once registered. With tasks: one agent running
N `sleep 1000` tasks deployed through relay; the agent process alone, and
the agent with its per-task supervisor processes, counted by their
proportional share (`Pss` in `/proc/<pid>/smaps_rollup`) once per address
space, since they share the launcher's memory (the task processes
themselves are not counted)."""

MIB = 1024 * 1024


def pss_kib(pid):
    """Proportional resident memory: each page shared by n processes counts 1/n."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def children(pid):
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(e))
    return out


_KCMP = {"x86_64": 312, "ppc64le": 354, "aarch64": 272}   # the kcmp system call
KCMP_VM = 1
_libc = ctypes.CDLL(None, use_errno=True)


def same_memory(a, b):
    """True when processes a and b share one address space (kcmp KCMP_VM)."""
    nr = _KCMP.get(os.uname().machine)
    return nr is not None and _libc.syscall(nr, a, b, KCMP_VM, 0, 0) == 0


def memory_owners(pids):
    """One pid per address space among pids: processes sharing memory count once."""
    owners = []
    for p in pids:
        if not any(same_memory(p, o) for o in owners):
            owners.append(p)
    return owners


def run(ctx):
    ntasks = 10 if ctx.quick else 100
    runs = 1 if ctx.quick else 5
    c = ctx.cluster()
    c.start_master()
    anon = []

    def idle_agent():
        a = c.start_agent(resources="cpus:4;mem:4096;disk:4096;ports(*):[31000-31099]")
        time.sleep(0.2)  # let start-up allocations settle; the value read is not a sync point
        rss = status_kib(a.pid, "VmRSS")
        anon.append(status_kib(a.pid, "RssAnon"))
        a.stop()
        return rss / 1024

    idle = ctx.repeat(idle_agent, warmup=1, runs=runs)

    agent = c.start_agent(resources="cpus:4;mem:4096;disk:4096;ports(*):[31000-31099]")
    c.start_relay()
    s = requests.Session()
    s.trust_env = False
    body = {"id": "/footprint", "cmd": "sleep 1000", "instances": ntasks, "cpus": 0.01,
            "mem": 1, "disk": 0, "portDefinitions": []}
    r = s.post(c.relay_url + "/v2/apps", json=body, timeout=10)
    if r.status_code not in (200, 201):
        raise AssertionError(f"POST /v2/apps: {r.status_code} {r.text[:300]}")
    harness.wait_for(lambda: s.get(c.relay_url + "/v2/apps/footprint", timeout=10)
                     .json()["app"]["tasksRunning"] >= ntasks, timeout=60, interval=0.1,
                     what=f"{ntasks} tasks running")
    agent_rss, total_rss, sup_counts = [], [], []
    for _ in range(1 + runs):  # one sample as warm-up, then one per run, 0.2 s apart
        a = status_kib(agent.pid, "VmRSS")
        kids = children(agent.pid)
        sup = sum(pss_kib(k) for k in memory_owners(kids))
        agent_rss.append(a / 1024)
        total_rss.append((a + sup) / 1024)
        sup_counts.append(len(kids))
        time.sleep(0.2)
    busy = Stats(agent_rss[1:])
    total = Stats(total_rss[1:])
    nsup = sup_counts[-1]
    anon_mib = Stats([x / 1024 for x in anon[1:]]).median
    per_sup = (total.median - busy.median) / nsup if nsup else float("nan")
    return [
        {"name": "butte-agent RSS, idle", "value": idle, "unit": "MiB",
         "anchor": "kubelet 200 MiB", "target": "< 10 MiB", "met": idle.median < 10,
         "note": f"of which anonymous (RssAnon, the agent's own memory) {anon_mib:.2f} MiB; "
                 "the rest is file-backed pages of the shared libraries it maps: libcurl and "
                 "its ~30 libraries (GnuTLS, Kerberos, LDAP, libssh2 with OpenSSL's libcrypto, "
                 "nghttp2...; Debian builds them BIND_NOW, so the loader relocates all of them) "
                 "are most of it. What changed (measured with smaps): the agent no longer loads "
                 "libm (0.3 MiB) nor keeps the seccomp filter context; it links Debian's GnuTLS "
                 "flavour of libcurl, so OpenSSL's libssl is not loaded at all (0.5 MiB; "
                 "libcrypto, about 2 MiB resident, still comes in through libssh2); and "
                 "OpenSSL is initialised, before curl_global_init() lets libssh2 do it, without "
                 "openssl.cnf and without its error strings (1 MiB resident for text butte "
                 "never prints). Before: 10.8 MiB. "
                 "Those pages are shared with every other process using the libraries; PSS "
                 "would show the agent's own cost."},
        {"name": f"butte-agent RSS, {ntasks} tasks (agent process)", "value": busy,
         "unit": "MiB", "anchor": "kubelet 300 MiB with 100 pods", "target": "—",
         "met": None, "note": "samples 0.2 s apart with every task RUNNING"},
        {"name": f"butte-agent + {nsup} supervisors RSS, {ntasks} tasks", "value": total,
         "unit": "MiB", "anchor": "kubelet 300 MiB with 100 pods (shims not counted)",
         "target": "—", "met": None,
         "note": f"the agent's VmRSS plus the Pss of each address space among its children "
                 "(Pss counts a page mapped by n address spaces 1/n; the supervisors share the "
                 "launcher's, told apart with kcmp(KCMP_VM), so it is counted once): about "
                 f"{per_sup * 1024:.0f} KiB per supervisor, its stack and arguments in the "
                 "launcher's memory (a static program). Before: forked supervisors, each "
                 "1.33 MiB VmRSS of mostly shared C library pages, 144 MiB summed by VmRSS "
                 "for 100 tasks"},
    ]
