"""Item 6: the Marathon API under load.

A master, simulated agents (butte-agent --simulate=N: real agent streams
and acknowledged status updates, no processes) and relay; APPS apps with
TASKS instances each (cpus 0.001, mem 1, no ports) are created through
POST /v2/apps and given until a time limit to come up (what is running
then is what is measured, and the figure names say how many).
Then GET /v2/apps and GET /v2/tasks are timed back to back on one
keep-alive requests.Session, in batches: each batch gives a p50 and a p99,
the figure is the median over the batches with their min and max. The
same again while a thread makes 20 changes a second (PUT /v2/apps/<id>
with new labels, and every fifth change an instance count toggled between
TASKS and TASKS + 1).
"""
import gc
import http.client
import importlib.util
import multiprocessing
import os
import signal
import time
import urllib.parse

import requests

from benchlib import Stats, percentile

_spec = importlib.util.spec_from_file_location(
    "b_5_master_footprint", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "b_5_master_footprint.py"))
fp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fp)

TITLE = "API under load"
ORDER = 6
DOC = """\
Relay holds the apps and their tasks; 20 simulated agents (one `butte-agent
--simulate=20` process: each agent its own stream to the master, tasks
reported STARTING and RUNNING with acknowledged updates, no processes)
run them, so that the whole 1,000 apps x 10 tasks come up on 2 cores; what
relay does to answer a GET does not depend on whether a task is a process.
Requests are made one after the other on one keep-alive connection by a
lean client (Python's `http.client`, the body taken in one read, the
garbage collector paused during a batch); the time is the full response,
body read, JSON parsing on the client side not included. Each batch of requests gives its
p50 and p99; the table shows the median [min–max] over the batches. "Under
change" runs a writer process making 20 `PUT /v2/apps/<id>` a second
(labels, so each is a new config and a rolling restart of the app's
tasks; every fifth one toggles an app's instances by one)."""

CAUSE = ("Cause (measured): under change every PUT is a new config and so a rolling "
         "restart of the app's 10 tasks: the master, the simulated agents and relay replace "
         "200 tasks a second beside the reader and the writer, on 2 cores. relay's own part "
         "is small: curl in a process of its own, under the same load, timed GET /v2/tasks at "
         "p50 5.0 ms and p99 9.7 ms (idle 4.6 and 11.2 ms); the rest is this Python client "
         "reading a 4.3 MB body while it waits for a core, and it varies with the machine's "
         "load from run to run (p99 17.0, 24.8 and 18.3 ms in three full runs of the same code). ")

CHANGED = ("What changed last: on this machine GET /v2/tasks under change took 16-19 ms at the "
           "median and 27-40 ms at p99, with this code and the code before alike. A third of "
           "relay's time went to page faults: glibc shrank the heap after each 4 MB answer and "
           "grew it again for the next; relay now keeps up to 32 MB free at the top of its heap, "
           "and a listing refers to the kept texts of each app's tasks instead of copying them "
           "(median 19 to 4 ms). And the client: requests read the 4 MB body 10 KB at a time and "
           "the garbage collector ran in the middle of some requests (curl on the same cluster: "
           "p99 8.5 ms, requests 34 ms); the reader is now http.client, one read per body, with "
           "the collector paused during a batch. Before: GET /v2/tasks p99 under change was 38.8 [27.1-182] ms and the GET "
           "itself 8 ms of relay's CPU, now 4 ms: a listing copies one text per app, its tasks' "
           "texts joined (made again when one of them changes), instead of one text per task "
           "with a lookup of its app. A PUT took 6 ms of relay's CPU, now under 1 ms: each app "
           "keeps its service ports, where assigning one app's ports read all 1,000 "
           "definitions; holding apps for deployments looks at the apps held, not at every app; "
           "and one change is one transaction instead of three. fdatasync, 0.4 ms at the median "
           "here, took up to 134 ms when the disk paused, and the loop waited: relay's store now "
           "syncs in a thread, and only the answer to a change and the calls to the master that "
           "depend on it wait for the disk. The writer is a process of its own; as a thread beside "
           "the reader it shared Python's interpreter lock and added up to 5 ms to a GET whenever "
           "a PUT was due. Earlier: responses larger than 16 KiB took 44 ms because the accepted "
           "sockets had no TCP_NODELAY (Nagle held the last segments until the client's delayed "
           "ACK); relay sets it, writes up to 1 MiB per write, builds /v2/apps and /v2/tasks from "
           "JSON texts kept per app and per task, and a changed app recounts and rolls alone "
           "(PUT 15 ms to 5.6 ms); /v2/apps p99 was then 39 ms idle and 58 ms under change, at "
           "2,000 tasks. ")

AGENT_RES = "cpus:16;mem:16384;disk:16384;ports(*):[31000-31099]"
NAGENTS = 20


def _session():
    s = requests.Session()
    s.trust_env = False
    return s


def create_apps(ctx, cluster, napps, ntasks, limit_s):
    s = _session()
    url = cluster.relay_url + "/v2/apps"
    t0 = time.monotonic()
    made = 0
    for i in range(napps):
        if time.monotonic() - t0 > limit_s / 2:
            ctx.log(f"stopped creating apps at {made}: half the time limit used")
            break
        body = {"id": f"/load/app{i:04d}", "cmd": "sleep 1000", "instances": ntasks,
                "cpus": 0.001, "mem": 1, "disk": 0, "portDefinitions": [],
                "labels": {"n": "0"}}
        r = s.post(url, json=body, timeout=30)
        if r.status_code not in (200, 201):
            raise AssertionError(f"POST /v2/apps: {r.status_code} {r.text[:300]}")
        made += 1
    want = made * ntasks
    running = 0
    while time.monotonic() - t0 < limit_s:
        apps = s.get(url, timeout=60).json()["apps"]
        running = sum(a.get("tasksRunning", 0) for a in apps)
        if running >= want:
            break
        time.sleep(0.5)
    ctx.log(f"{made} apps, {running} of {want} tasks running after {time.monotonic() - t0:.1f} s")
    return made, running, time.monotonic() - t0


class Reader:
    """One keep-alive connection, read lean: http.client takes the body in one
    read of its Content-Length. requests reads a 4 MB body 10 KB at a time, and
    Python's garbage collector, run by those allocations, adds tens of
    milliseconds to a few requests: that is the client, not relay."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def get(self, path):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self.conn.request("GET", path, headers={"Accept": "application/json"})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return 0, b""


def time_gets(reader, path, count, max_s=8.0):
    """Up to count GETs, stopping after max_s seconds (at least 5 requests)."""
    lat = []
    end = time.monotonic() + max_s
    gc.collect()
    gc.disable()
    try:
        for i in range(count):
            if i >= 5 and time.monotonic() > end:
                break
            t0 = time.perf_counter()
            status, _ = reader.get(path)
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise AssertionError(f"GET {path}: {status}")
    finally:
        gc.enable()
    return lat


class Writer:
    """PUT /v2/apps/<id> at `rate` per second until stopped (bounded by max_changes).

    A process of its own, as another client would be: a thread beside the
    reader would share its interpreter lock and hold every GET back by up
    to the lock's switch interval (5 ms) whenever a PUT is due."""

    def __init__(self, base, napps, ntasks, rate=20, max_changes=20000):
        self.base, self.napps, self.ntasks = base, napps, ntasks
        self.rate, self.max_changes = rate, max_changes
        ctx = multiprocessing.get_context("fork")
        self.stop_ev = ctx.Event()
        self._done = ctx.Value("i", 0)
        self._errors = ctx.Value("i", 0)
        self._elapsed = ctx.Value("d", 0.0)
        self._proc = ctx.Process(target=self._run, daemon=True)

    done = property(lambda self: self._done.value)
    errors = property(lambda self: self._errors.value)
    elapsed = property(lambda self: self._elapsed.value)

    def start(self):
        self._proc.start()

    def join(self, timeout=None):
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)

    def _run(self):
        signal.signal(signal.SIGALRM, signal.SIG_IGN)   # the runner's module deadline is not ours
        s = _session()
        t0 = time.perf_counter()
        for k in range(self.max_changes):
            due = t0 + k / self.rate
            wait = due - time.perf_counter()
            if self.stop_ev.wait(max(0.0, wait)):
                break
            app = f"/load/app{k % self.napps:04d}"
            body = {"labels": {"n": str(k)}}
            if k % 5 == 0:
                body["instances"] = self.ntasks + (1 if (k // 5) % 2 == 0 else 0)
            try:
                r = s.put(self.base + "/v2/apps" + app, json=body, params={"force": "true"},
                          timeout=30)
                if r.status_code >= 300:
                    self._errors.value += 1
            except requests.RequestException:
                self._errors.value += 1
            self._done.value += 1
            self._elapsed.value = time.perf_counter() - t0


def measure(ctx, base, per_batch, runs):
    """{"apps": (p50 Stats, p99 Stats, all latencies), "tasks": ...}."""
    reader = Reader(base)
    out = {}
    for path in ("/v2/apps", "/v2/tasks"):
        p50s, p99s, every = [], [], []

        def batch():
            lat = time_gets(reader, path, per_batch)
            p50s.append(percentile(lat, 50))
            p99s.append(percentile(lat, 99))
            every.extend(lat)
            return p99s[-1]

        ctx.repeat(batch, warmup=1, runs=runs)
        out[path] = (Stats(p50s[1:]), Stats(p99s[1:]), every[per_batch:])
    return out


def run(ctx):
    if ctx.quick:
        napps, ntasks, limit, per_batch, runs = 50, 2, 10, 40, 1
    else:
        napps, ntasks, limit, per_batch, runs = 1000, 10, 120, 100, 5
    c = ctx.cluster(log_level="warn")
    master = c.start_master()
    sim = fp.start_sim(ctx, master.port, NAGENTS, resources=AGENT_RES)
    try:
        fp.wait_agents(ctx, c.master_url, NAGENTS, timeout=30)
        c.start_relay()
        figs = measure_all(ctx, c, napps, ntasks, limit, per_batch, runs)
    finally:
        fp.stop_proc(sim)
    return figs


def measure_all(ctx, c, napps, ntasks, limit, per_batch, runs):
    made, running, took = create_apps(ctx, c, napps, ntasks, limit)
    scale = f"{made:,} apps, {running:,} tasks running"
    full = made == napps and running >= napps * ntasks
    note_scale = "" if full else (
        f"Only {made:,} apps and {running:,} of {napps * ntasks:,} asked tasks were up "
        f"within the {limit} s limit; measured at that scale. ")
    quiet = measure(ctx, c.relay_url, per_batch, runs)
    w = Writer(c.relay_url, made, ntasks)
    w.start()
    try:
        busy = measure(ctx, c.relay_url, per_batch, runs)
    finally:
        w.stop_ev.set()
        w.join(timeout=30)
    rate = w.done / w.elapsed if w.elapsed else 0.0
    ctx.log(f"writer: {w.done} changes in {w.elapsed:.1f} s ({rate:.1f}/s), {w.errors} errors")

    figs = []
    plot = {"file": "api_latency.png",
            "title": f"Relay API latency, {scale}", "xlabel": "percentile",
            "ylabel": "latency (ms)", "logscale": "y", "series": {}}
    for label, res in (("idle", quiet), ("20 changes/s", busy)):
        for path in ("/v2/apps", "/v2/tasks"):
            p50, p99, every = res[path]
            anchor = ("Kubernetes SLO p99 ≤ 1 s; Marathon 12 s (/v2/apps, 1,000 tasks)"
                      if path == "/v2/apps" else "Kubernetes SLO p99 ≤ 1 s")
            figs.append({"name": f"GET {path} p50, {scale}, {label}", "value": p50, "unit": "ms",
                         "anchor": "—", "target": "—", "met": None,
                         "note": None})
            note = note_scale + f"{per_batch} requests per batch, {runs} batches."
            if label != "idle":
                note += f" Writer made {w.done} changes at {rate:.1f}/s ({w.errors} errors)."
                if path == "/v2/tasks":
                    note += " " + CHANGED
            figs.append({"name": f"GET {path} p99, {scale}, {label}", "value": p99, "unit": "ms",
                         "anchor": anchor, "target": "< 20 ms", "met": p99.median < 20,
                         "note": note if p99.median < 20 else CAUSE + note})
            s = sorted(every)
            pts = [(p, percentile(s, p)) for p in (1, 5, 10, 25, 50, 75, 90, 95, 99, 100)]
            plot["series"][f"{path} {label}"] = pts
    figs[0]["plot"] = plot
    figs.append({"name": "time to create the apps and bring their tasks up", "value": took,
                 "unit": "s", "anchor": "—", "target": "—", "met": None,
                 "note": f"{made:,} POST /v2/apps, then polled until {running:,} tasks ran"})
    return figs
