"""butte-master resident memory per agent and per task (issue 3, item 5, master part).

A master with no agent, then with N simulated agents (one butte-agent
--simulate=N process, each agent on its own stream), then with M tasks
launched on them by a small Mesos v1 JSON scheduler that accepts every
offer with M/N tasks: VmRSS at each step gives bytes per agent and bytes
per task. The scheduler does not acknowledge updates, so the tasks stay
TASK_STARTING (the master holds the task and its latest status either way).
Each reading is taken once the master has been idle for IDLE_S seconds:
the master returns the heap pages a burst freed once a second (main.c).

Also holds the helpers b_2_placement uses: start_sim() and wait_agents().
"""
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
import mesos_client  # noqa: E402
from benchlib import Stats  # noqa: E402

TITLE = "Master footprint"
ORDER = 5

SIM_RESOURCES = "cpus:64;mem:65536;disk:65536;ports(*):[31000-32000]"
IDLE_S = 1.5
AGENT_RUNS = 3

# Where the bytes go: a heap profile of this scenario made apart from the
# benchmark (an LD_PRELOAD allocator counting live bytes by call stack, at
# 10,000 agents and 100,000 tasks, on this machine). The figures themselves
# are measured in every run.
AGENT_BREAKDOWN = (
    "Where the bytes go (the master's /proc/PID/smaps and a heap profile, an LD_PRELOAD "
    "allocator counting live bytes by call stack, at 10,000 agents on this machine): the "
    "arena of long-lived objects (common/keep.c) holds about 1.2 KB per agent, in blocks "
    "rounded up to 16 B: the agent record with its id 304 B; the allocator's copy of the "
    "agent's resources 304 B (four resources and the ports' range list); its stream 224 B "
    "(the socket and one event); its AgentInfo packed, without the id, 144 B; attributes "
    "112 B; hostname, peer address and table entry 64 B; libevent's records of two "
    "descriptor numbers 64 B. The heap adds about 0.3 KB per agent: the allocator's slot "
    "arrays, the agent table's buckets, SQLite's page cache (capped at 512 KiB) and "
    "libevent's arrays. Before the arena (2,370 B, 2,334 to 2,614 B over three masters): "
    "these objects were in the heap, each in a free chunk between the short-lived buffers of "
    "the request that made it (evhttp's connection, bufferevent and read buffers, the decoded "
    "call). Once the burst was over those buffers were free, but nearly every page still held "
    "a few hundred bytes of some agent, so about 1 KB per agent of free heap stayed resident "
    "(malloc_stats: a 24.2 MB heap, 14.4 MB of it in use) and malloc_trim(0) could return "
    "none of it; how much depended on how many subscriptions the master took at once. Now the "
    "master allocates what an agent's record holds between bt_keep_begin() and bt_keep_end(), "
    "and libevent's records of descriptor numbers are made ahead of need, in the arena too: "
    "the pages the burst used are wholly free again and are returned. Tried and dropped "
    "before, as neither changed it measurably: pausing accept() after 64 connections per loop "
    "turn, and giving SQLite's page cache a block of its own. Earlier still (8,983 B): evhttp "
    "held each open stream as a connection, bufferevent, request with its headers and "
    "SUBSCRIBE body, and four evbuffers (3.4 KB); the AgentInfo was kept unpacked (1.6 KB); "
    "the allocator copied the total and the free pool (1.1 KB) and the agent record kept a "
    "third copy (560 B); each agent had its own ping timer. The master now takes the socket "
    "of an agent's stream from evhttp once the subscription is accepted (master/stream.c), "
    "keeps the AgentInfo packed and the total only as the four scalars the metrics sum, "
    "pings all agents from one timer, and shares the common resource names (cpus, mem, "
    "disk, ports, gpus) and the role \"*\" as constants.")
TASK_BREAKDOWN = (
    "Where the bytes go (the same heap profile): about 340 B per task. The "
    "task record with its id and name in one allocation 145 B; the latest "
    "status, packed without what reconciliation replaces, 80 B; the state "
    "history 60 B; the task-table entry 32 B (its key is the task's own id); "
    "the agent's free pool filling again with what the tasks left of its "
    "offer, 56 B per task. Resources made of scalars only (cpus, mem, disk) "
    "are shared by every task with the same set. Before (2,349 B): a "
    "32-entry state history inline (768 B), a full TaskStatus protobuf copy "
    "(670 B), a private resources copy (290 B), an empty JSON object for "
    "labels (224 B) and a copied map key. The first OFFERS event to the JSON "
    "scheduler (10,000 offers) was also built as one jansson tree of some "
    "120 MB, freed at once, which left the heap fragmented under the tasks "
    "allocated after it; it is now encoded one offer at a time, large buffers "
    "are always mapped (M_MMAP_THRESHOLD), and the master returns free heap "
    "pages after a burst (malloc_trim). Since the agents' records moved to an arena of "
    "their own, this figure is the tasks' own: before, the tasks first filled the free heap "
    "the agents' burst had left (234 B per task then), so the master's total at 10,000 "
    "agents and 100,000 tasks is about the same either way (50.1 MB then).")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def metrics(master_url):
    return harness.http("GET", master_url + "/metrics/snapshot").json()


def start_sim(ctx, master_port, n, resources=SIM_RESOURCES, flags=("--simulate_starting",)):
    """One butte-agent process running n simulated agents; caller terminates it.
    By default their tasks report TASK_STARTING and TASK_RUNNING, as a real
    agent's do (and the master keeps both statuses of every task)."""
    work = os.path.join(ctx.tmpdir, "sim")
    os.makedirs(work, exist_ok=True)
    log = open(os.path.join(ctx.tmpdir, "sim.log"), "w")
    proc = subprocess.Popen(
        [os.path.join(ctx.build, "butte-agent"), "--simulate=%d" % n,
         "--master=127.0.0.1:%d" % master_port, "--work_dir=" + work,
         "--resources=" + resources, "--log_level=warn",
         "--registration_backoff_factor=%s" % ("2secs" if n > 2000 else "200ms")]
        + list(flags),
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def stop_proc(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_agents(ctx, master_url, n, timeout):
    def ready():
        return metrics(master_url).get("master/slaves_active", 0) >= n
    harness.wait_for(ready, timeout=timeout, interval=0.2, what="%d simulated agents" % n)


class LightScheduler(mesos_client.SchedulerClient):
    """Keeps only SUBSCRIBED and OFFERS events; counts the rest (a fast reader)."""

    def __init__(self, master_url):
        super().__init__(master_url)
        self.others = 0

    def _read(self):
        decoder = mesos_client.RecordIO()
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                for rec in decoder.feed(chunk):
                    head = rec[:64]
                    if b"OFFERS" not in head and b"SUBSCRIBED" not in head:
                        self.others += 1
                        continue
                    ev = json.loads(rec)
                    with self.lock:
                        self.events.append(ev)
                        self.lock.notify_all()
        except Exception as exc:  # noqa: BLE001 - the stream ended or was closed
            self.error = exc
        with self.lock:
            self.closed = True
            self.lock.notify_all()


def launch_tasks(ctx, master_url, nagents, ntasks, timeout):
    """Launch ntasks spread over nagents offers; returns the scheduler (close it)."""
    per = max(1, ntasks // nagents)
    s = LightScheduler(master_url)
    s.subscribe(name="footprint", failover_timeout=3600.0)
    offers, seen, start = [], set(), 0
    deadline = time.monotonic() + timeout
    while len(seen) < nagents and time.monotonic() < deadline:
        with s.lock:
            evs = s.events[start:]
            start = len(s.events)
        for ev in evs:
            if ev.get("type") == "OFFERS":
                for o in ev["offers"]["offers"]:
                    if o["agent_id"]["value"] not in seen:
                        seen.add(o["agent_id"]["value"])
                        offers.append(o)
        time.sleep(0.05)
    if len(seen) < nagents:
        raise RuntimeError("offers for %d of %d agents within %.0f s" % (len(seen), nagents, timeout))
    counter = iter(range(10 ** 9))
    lock = threading.Lock()

    def accept(o):
        with lock:
            ids = [next(counter) for _ in range(per)]
        tasks = [mesos_client.command_task(o, "t%d" % i, cmd="sleep 1000", cpus=0.01, mem=1)
                 for i in ids]
        s.launch(o, tasks, refuse_seconds=3600)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(accept, offers))
    return s, per * len(offers)


def agents_phase(ctx, nagents):
    """A fresh master and nagents simulated agents: (cluster, master, sim, rss0, rss1)."""
    c = ctx.cluster(log_level="warn")
    master = c.start_master()
    time.sleep(IDLE_S)
    rss0 = rss_kib(master.pid)
    sim = start_sim(ctx, master.port, nagents)
    try:
        t0 = time.monotonic()
        wait_agents(ctx, c.master_url, nagents, timeout=20 if ctx.quick else 120)
        ctx.log("%d agents subscribed in %.1f s" % (nagents, time.monotonic() - t0))
        time.sleep(IDLE_S)
        rss1 = rss_kib(master.pid)
    except BaseException:
        stop_proc(sim)
        raise
    return c, master, sim, rss0, rss1


def run(ctx):
    nagents = 200 if ctx.quick else 10000
    ntasks = 2000 if ctx.quick else 100000
    # where a burst of subscriptions leaves free heap between the agents' objects varies
    # from run to run: the agents' figure is the median of AGENT_RUNS fresh masters
    per_agent_runs = []
    for _ in range(AGENT_RUNS - 1 if not ctx.quick else 0):
        c, master, sim, rss0, rss1 = agents_phase(ctx, nagents)
        stop_proc(sim)
        c.stop()
        per_agent_runs.append((rss1 - rss0) * 1024.0 / nagents)
    c, master, sim, rss0, rss1 = agents_phase(ctx, nagents)
    per_agent_runs.append((rss1 - rss0) * 1024.0 / nagents)
    pid = master.pid
    sched = None
    t0 = time.monotonic()
    try:
        sched, launched = launch_tasks(ctx, c.master_url, nagents, ntasks,
                                       timeout=20 if ctx.quick else 120)

        def counts():
            m = metrics(c.master_url)
            return {k: int(m.get("master/tasks_%s" % k, 0))
                    for k in ("staging", "starting", "running")}

        def known():
            return sum(counts().values()) >= launched
        harness.wait_for(known, timeout=30 if ctx.quick else 120, interval=0.2,
                         what="%d tasks in the master" % launched)
        drain = time.monotonic() + (15 if ctx.quick else 60)
        while counts()["staging"] > 0 and time.monotonic() < drain:
            time.sleep(0.2)
        final = counts()
        ctx.log("%d tasks launched in %.1f s" % (launched, time.monotonic() - t0))
        time.sleep(IDLE_S)
        rss2 = rss_kib(pid)
    finally:
        if sched is not None:
            sched.close()
        stop_proc(sim)
    per_agent = Stats(per_agent_runs) if len(per_agent_runs) > 1 else per_agent_runs[0]
    per_task = (rss2 - rss1) * 1024.0 / launched
    scale = "%s agents, %s tasks" % ("{:,}".format(nagents), "{:,}".format(launched))
    note = ("The median of %d masters, each fresh, %s agents subscribing at once. VmRSS of the "
            "last: %d KiB idle, %d KiB with the agents, %d KiB with the tasks (%s). %s"
            % (len(per_agent_runs), "{:,}".format(nagents), rss0, rss1, rss2, scale,
               AGENT_BREAKDOWN))
    task_note = ("Task states when measured: %d staging, %d starting, %d running (updates "
                 "not acknowledged). %s" % (final["staging"], final["starting"],
                                            final["running"], TASK_BREAKDOWN))
    return [
        {"name": "master RSS idle", "value": rss0 / 1024.0, "unit": "MiB",
         "anchor": "", "target": "", "met": None, "note": "no agent, no framework"},
        {"name": "master bytes per agent (%s)" % scale, "value": per_agent, "unit": "B",
         "anchor": "", "target": "< 2,048 B", "met": float(per_agent) < 2048, "note": note},
        {"name": "master bytes per task (%s)" % scale, "value": per_task, "unit": "B",
         "anchor": "", "target": "< 1,024 B", "met": per_task < 1024, "note": task_note},
    ]
