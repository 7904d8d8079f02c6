"""Item 3: launch overhead against the physical cost.

Real processes. In each run, alternating in the same run:
  raw    -- this process posix_spawn()s N `/bin/sh -c "sleep 1000"` (the
            command line butte's agent runs for a shell task) and waits until
            every one has exec'd sleep (/proc/<pid>/exe);
  relay  -- POST /v2/apps of one app with N instances (cpus 0.01, mem 1, no
            ports) to butte-relay, polled every 10 ms until tasksRunning == N;
  master -- a scheduler on the master's v1 API (JSON) ACCEPTs offers with
            the N TaskInfos; time from ACCEPT to the last TASK_RUNNING on its
            event stream (it acknowledges every update at once, as any
            framework must before the agent sends the task's next one: a
            thread writes the ACKNOWLEDGE calls waiting at that moment as
            pipelined requests on one kept-alive connection).
The ratios butte/raw are taken per run. Afterwards every task is killed
(DELETE the app / KILL the tasks, then wait until no task process is left)
and the raw processes are killed and reaped.
"""
import json
import os
import queue
import signal
import socket
import threading
import time
from urllib.parse import urlsplit

import requests

import harness

TITLE = "Launch overhead against fork/exec"
ORDER = 3
DOC = """\
Real processes: butte bringing N `sleep 1000` tasks to RUNNING against a
plain loop in the benchmark process that `posix_spawn()`s the same N
`/bin/sh -c "sleep 1000"` command lines and waits until each has exec'd
`sleep` (read from `/proc/<pid>/exe`). Both are measured in the same run,
one after the other, and the ratio is taken per run. Through relay: one app
with N instances (0.01 cpus, 1 MiB each, no ports), from `POST /v2/apps`
until `GET /v2/apps/<id>` (polled every 10 ms) shows `tasksRunning` N.
Through the master only: a JSON scheduler on `/api/v1/scheduler` accepts
two offers with the N TaskInfos; from ACCEPT to the last `TASK_RUNNING` on
its event stream (it acknowledges every update at once, the calls waiting
at a moment written as pipelined requests on one kept-alive connection).
Two agents with 8 cpus and 4 GiB each. The relay figure is made again with
every daemon's work directory on tmpfs, to tell what the file system adds."""

CHANGED = ("What changed this round (perf over a launch of 200, the whole machine): each "
           "task's supervisor was a fork of the launcher, and on this virtual machine a fork of "
           "even a small process costs about 1 ms of CPU (page tables copied, then a "
           "copy-on-write fault and a TLB flush for every page either side writes), 2.5 ms under "
           "the launch's load: the launcher took 9.5% of the machine and the supervisors 8%, the "
           "tasks' own sh and sleep 36%. The launcher now clones each supervisor sharing its "
           "memory (CLONE_VM without CLONE_THREAD, with a stack and arguments of its own, as "
           "posix_spawn shares memory until exec; agent/supervise.c), loads the seccomp filter "
           "once on itself for all tasks instead of once per task (each load compiled the BPF "
           "program again), and butte-supervise is linked static (no lazy symbol binding in "
           "each child); the launcher's share fell to 2% and the supervisors' to 2.6%, and a "
           "launch of 200 on tmpfs from about 1.5 s to 1.0 s. Before this round: 1.72x via "
           "relay, 1.59x via the master. Earlier: the agent stopped forking itself per task "
           "(0.6 ms a fork plus copy-on-write faults in its heap) for a launcher; task "
           "checkpoints became journals appended to (one new inode per launch instead of six); "
           "the updates of one loop turn leave in one call; relay spreads an app's instances "
           "over the offers of one event; this benchmark's scheduler acknowledges over one "
           "pipelined connection. Before those: 5.9x via relay, 3.8x via the master. "
           "The file system can add much more than butte does: the work dirs lie on ext4 "
           "without a journal, where the kernel finds each new inode by skipping every inode "
           "freed in the last seconds (recently_deleted(), checked only without a journal); an "
           "agent makes nine inodes per task, and right after thousands of files were removed "
           "(a benchmark before this one, a test suite) 60% of the agents' CPU went to that "
           "search and the ratio rose to 3-5x. The tmpfs row is the same measure without it.")

CAUSE = ("Not met in this run. Both sides are CPU-bound: the raw loop's sh and sleep execs fill "
         "both cores, and butte adds relay, the master, the agent's messages and two "
         "acknowledged round trips per task (TASK_RUNNING may only leave once the framework "
         "acknowledged TASK_STARTING); a busy disk (see above) or a noisy neighbour on this "
         "shared machine widens the gap. ")

TMPFS = "/dev/shm"
TMPFS_NOTE = ("not a target: the raw loop creates no file, while an agent makes a sandbox per "
              "task (nine inodes: the Mesos directory layout, stdout, stderr, the checkpoint) "
              "and removes three when the task is gone; on tmpfs the inodes cost next to "
              "nothing, so this ratio is what butte's processes and messages add")

AGENT_RES = "cpus:8;mem:4096;disk:4096;ports(*):[31000-31999]"
CMD = "sleep 1000"


def _exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _runs_sleep(pid):
    """True once the shell pid, or a child it forked, has exec'd sleep."""
    if _exe(pid).endswith("/sleep"):
        return True
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
    except OSError:
        return False
    return any(_exe(k).endswith("/sleep") for k in kids)


def raw_launch(n, deadline):
    """Spawn n shells running sleep; seconds until all have exec'd sleep. Kills them after."""
    pids = []
    t0 = time.perf_counter()
    try:
        for _ in range(n):
            pids.append(os.posix_spawn("/bin/sh", ["/bin/sh", "-c", CMD], {}, setsid=True))
        waiting = list(pids)
        while waiting:
            waiting = [p for p in waiting if not _runs_sleep(p)]
            if waiting and time.monotonic() > deadline:
                raise AssertionError(f"{len(waiting)} raw processes never exec'd sleep")
        return time.perf_counter() - t0
    finally:
        for p in pids:
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass
        for p in pids:
            try:
                os.waitpid(p, 0)
            except OSError:
                pass


def wait_no_tasks(cluster, what, timeout=60):
    harness.wait_for(lambda: not harness.task_pids(cluster.dir), timeout=timeout,
                     interval=0.05, what=what)


class RelayLauncher:
    def __init__(self, cluster):
        self.cluster = cluster
        self.s = requests.Session()
        self.s.trust_env = False
        self.seq = 0

    def launch(self, n, deadline):
        self.seq += 1
        app = f"/launch{self.seq}"
        body = {"id": app, "cmd": CMD, "instances": n, "cpus": 0.01, "mem": 1,
                "disk": 0, "portDefinitions": []}
        url = self.cluster.relay_url + "/v2/apps"
        t0 = time.perf_counter()
        r = self.s.post(url, json=body, timeout=10)
        if r.status_code not in (200, 201):
            raise AssertionError(f"POST /v2/apps: {r.status_code} {r.text[:300]}")
        elapsed = None
        while time.monotonic() < deadline:
            got = self.s.get(url + app, timeout=10).json()["app"]
            if got.get("tasksRunning", 0) >= n:
                elapsed = time.perf_counter() - t0
                break
            time.sleep(0.01)
        self.s.delete(url + app, params={"force": "true"}, timeout=10)
        wait_no_tasks(self.cluster, f"the tasks of {app} to end")
        if elapsed is None:
            raise AssertionError(f"{app}: {n} tasks not RUNNING before the deadline")
        return elapsed


class Acker:
    """ACKNOWLEDGE calls from a thread, pipelined on one kept-alive connection.

    Every call waiting when the thread wakes leaves in one write; then the
    thread reads as many responses. (A requests.post() per call cost the
    benchmark about a millisecond of CPU each, on the same cores as the
    agents it measures.)"""

    def __init__(self, url, stream_id):
        u = urlsplit(url)
        self.addr = (u.hostname, u.port)
        self.head = (f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
                     f"Content-Type: application/json\r\nMesos-Stream-Id: {stream_id}\r\n")
        self.q = queue.SimpleQueue()
        self.sock = None
        self.buf = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def submit(self, body):
        self.q.put(body)

    def close(self):
        self.q.put(None)
        self.thread.join(timeout=10)
        if self.sock is not None:
            self.sock.close()

    def _request(self, body):
        data = body.encode()
        return (self.head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data

    def _response(self):
        """Consume one response; its status code."""
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buf) < length:
            self._recv()
        self.buf = self.buf[length:]
        return int(lines[0].split()[1])

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the master closed the connection")
        self.buf += chunk

    def _run(self):
        while True:
            batch = [self.q.get()]
            while True:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            batch = [b for b in batch if b is not None]
            try:
                if batch and self.sock is None:
                    self.sock = socket.create_connection(self.addr)
                    self.buf = b""
                if batch:
                    self.sock.sendall(b"".join(self._request(b) for b in batch))
                    for _ in batch:
                        self._response()
            except OSError:  # the agent resends an unacknowledged update
                if self.sock is not None:
                    self.sock.close()
                self.sock = None
            if done:
                return


class MasterLauncher:
    """A tiny JSON scheduler: a reader thread; acknowledgements from an Acker."""

    def __init__(self, master_url):
        self.url = master_url + "/api/v1/scheduler"
        self.s = requests.Session()
        self.s.trust_env = False
        self.cv = threading.Condition()
        self.offers = []
        self.running = {}
        self.ended = {}
        self.held = []
        self.seq = 0
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "root", "name": "bench-launch"}}}
        self.resp = self.s.post(self.url, data=json.dumps(body), stream=True, timeout=(5, None),
                                headers={"Content-Type": "application/json",
                                         "Accept": "application/json"})
        if self.resp.status_code != 200:
            raise AssertionError(f"subscribe: {self.resp.status_code} {self.resp.text}")
        self.stream_id = self.resp.headers["Mesos-Stream-Id"]
        # acknowledgements leave from their own thread, so the event reader never waits on them
        self.acker = Acker(self.url, self.stream_id)
        self.fid = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        with self.cv:
            self.cv.wait_for(lambda: self.fid is not None, timeout=10)
        if self.fid is None:
            raise AssertionError("no SUBSCRIBED event")

    def _read(self):
        buf = b""
        try:
            for chunk in self.resp.iter_content(chunk_size=None):
                buf += chunk
                while True:
                    nl = buf.find(b"\n")
                    if nl < 0:
                        break
                    n = int(buf[:nl])
                    if len(buf) < nl + 1 + n:
                        break
                    ev = json.loads(buf[nl + 1:nl + 1 + n])
                    buf = buf[nl + 1 + n:]
                    self._event(ev)
        except Exception:  # noqa: BLE001 - the stream was closed
            pass

    def _event(self, ev):
        t = ev.get("type")
        if t == "SUBSCRIBED":
            with self.cv:
                self.fid = ev["subscribed"]["framework_id"]["value"]
                self.cv.notify_all()
        elif t == "OFFERS":
            with self.cv:
                self.offers.extend(ev["offers"]["offers"])
                self.cv.notify_all()
        elif t == "UPDATE":
            st = ev["update"]["status"]
            if st.get("uuid"):
                self.acker.submit(json.dumps({
                    "type": "ACKNOWLEDGE", "framework_id": {"value": self.fid},
                    "acknowledge": {"agent_id": st["agent_id"], "task_id": st["task_id"],
                                    "uuid": st["uuid"]}}))
            tid = st["task_id"]["value"]
            with self.cv:
                if st["state"] == "TASK_RUNNING":
                    self.running.setdefault(tid, time.perf_counter())
                elif st["state"] in ("TASK_FINISHED", "TASK_FAILED", "TASK_KILLED",
                                     "TASK_LOST", "TASK_ERROR", "TASK_DROPPED", "TASK_GONE"):
                    self.ended[tid] = st["state"] + " " + st.get("message", "")
                self.cv.notify_all()

    def call(self, type_, payload):
        body = {"type": type_, "framework_id": {"value": self.fid}, type_.lower(): payload}
        r = self.s.post(self.url, data=json.dumps(body), timeout=10, headers={
            "Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id})
        if r.status_code != 202:
            raise AssertionError(f"{type_}: {r.status_code} {r.text[:300]}")

    def take_offers(self, n, deadline):
        """One offer from each of two agents with room for n/2 tasks; the rest declined."""
        need = 0.01 * ((n + 1) // 2) + 1e-9
        while True:
            with self.cv:
                self.cv.wait_for(lambda: self.offers, timeout=max(0.05, deadline - time.monotonic()))
                offers, self.offers = self.offers, []
            best = {}
            for o in offers:
                cpus = sum(r["scalar"]["value"] for r in o["resources"] if r["name"] == "cpus")
                aid = o["agent_id"]["value"]
                if cpus >= need and (aid not in best or cpus > best[aid][0]):
                    best[aid] = (cpus, o)
            chosen = [o for _, o in sorted(best.values(), key=lambda x: -x[0])[:2]]
            if len(chosen) == 2:
                self.held.extend(o for o in offers if o not in chosen)
            else:
                self.held.extend(offers)
            if self.held:
                self.call("DECLINE", {"offer_ids": [o["id"] for o in self.held],
                                      "filters": {"refuse_seconds": 0}})
                self.held = []
            if len(chosen) == 2:
                return chosen
            if time.monotonic() > deadline:
                raise AssertionError("no offers from two agents with room for the tasks")

    def launch(self, n, deadline):
        self.seq += 1
        offers = self.take_offers(n, deadline)
        per = [n // 2 + (1 if i < n % 2 else 0) for i in range(2)]
        ids = []
        accepts = []
        for offer, k in zip(offers[:2], per):
            infos = []
            for _ in range(k):
                tid = f"r{self.seq}-t{len(ids)}"
                ids.append(tid)
                infos.append({"name": tid, "task_id": {"value": tid}, "agent_id": offer["agent_id"],
                              "resources": [
                                  {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 1}}],
                              "command": {"shell": True, "value": CMD}})
            accepts.append({"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0},
                            "operations": [{"type": "LAUNCH", "launch": {"task_infos": infos}}]})
        bodies = [json.dumps(a) for a in accepts]  # encoded before the clock starts
        t0 = time.perf_counter()
        for a in bodies:
            r = self.s.post(self.url, data=f'{{"type":"ACCEPT","framework_id":{{"value":"{self.fid}"}},'
                            f'"accept":{a}}}', timeout=10, headers={
                                "Content-Type": "application/json",
                                "Mesos-Stream-Id": self.stream_id})
            if r.status_code != 202:
                raise AssertionError(f"ACCEPT: {r.status_code} {r.text[:300]}")
        return self.await_running(ids, t0, deadline, "tasks")

    def await_running(self, ids, t0, deadline, what):
        """Seconds from t0 to the last of ids RUNNING; then every one is killed."""
        with self.cv:
            ok = self.cv.wait_for(lambda: all(t in self.running or t in self.ended for t in ids),
                                  timeout=max(0.1, deadline - time.monotonic()))
            last = max((self.running[t] for t in ids if t in self.running), default=None)
            failed = [t for t in ids if t not in self.running]
        for t in ids:
            self.call("KILL", {"task_id": {"value": t}})
        if not ok or failed or last is None:
            why = sorted({self.ended.get(t, "no update") for t in failed})[:3]
            raise AssertionError(f"{len(failed)} of {len(ids)} {what} never RUNNING: {why}")
        return last - t0

    def close(self):
        try:
            self.call("TEARDOWN", None)
        except Exception:  # noqa: BLE001
            pass
        self.acker.close()
        self.resp.close()


def start_cluster(ctx, relay, parent=None):
    c = ctx.cluster(parent=parent)
    c.start_master()
    c.start_agent(resources=AGENT_RES)
    c.start_agent(resources=AGENT_RES)
    if relay:
        c.start_relay()
    return c


def side_by_side(ctx, n, launcher, cluster, runs, warmup, budget_s):
    """Alternate raw and butte launches; returns (raw Stats, butte Stats, ratio Stats)."""
    raw, butte = [], []

    def one():
        dl = time.monotonic() + budget_s
        r = raw_launch(n, dl)
        b = launcher.launch(n, dl)
        if launcher.__class__ is MasterLauncher:
            wait_no_tasks(cluster, "the scheduler's tasks to end")
        raw.append(r * 1000)
        butte.append(b * 1000)
        ctx.log(f"n={n}: raw {r * 1000:.1f} ms, butte {b * 1000:.1f} ms, ratio {b / r:.2f}")
        return b / r

    ratio = ctx.repeat(one, warmup=warmup, runs=runs)
    from benchlib import Stats
    return Stats(raw[warmup:]), Stats(butte[warmup:]), ratio


def run(ctx):
    n = 20 if ctx.quick else 200
    runs, warmup = (1, 1) if ctx.quick else (5, 1)
    budget = 30 if ctx.quick else 90
    figs = []
    cause = CAUSE
    note_raw = ("posix_spawn of `/bin/sh -c \"sleep 1000\"` from Python, until each "
                "/proc/<pid>/exe is sleep")

    c1 = start_cluster(ctx, relay=True)
    rl = RelayLauncher(c1)
    raw1, relay_ms, ratio1 = side_by_side(ctx, n, rl, c1, runs, warmup, budget)
    c1.stop()

    c3 = start_cluster(ctx, relay=True, parent=TMPFS)
    raw3, tmpfs_ms, ratio3 = side_by_side(ctx, n, RelayLauncher(c3), c3, runs, warmup, budget)
    c3.stop()

    c2 = start_cluster(ctx, relay=False)
    ml = MasterLauncher(c2.master_url)
    try:
        raw2, master_ms, ratio2 = side_by_side(ctx, n, ml, c2, runs, warmup, budget)
    finally:
        ml.close()

    figs.append({"name": f"{n} tasks via relay: POST /v2/apps to tasksRunning {n}",
                 "value": relay_ms, "unit": "ms", "anchor": "—", "target": "—", "met": None,
                 "note": "polling GET /v2/apps/<id> every 10 ms"})
    figs.append({"name": f"{n} raw fork/exec (same run as relay)", "value": raw1, "unit": "ms",
                 "anchor": "physical cost", "target": "—", "met": None, "note": note_raw})
    figs.append({"name": "ratio relay / raw", "value": ratio1, "unit": "×",
                 "anchor": "1.0 = no overhead", "target": "< 1.5",
                 "met": ratio1.median < 1.5,
                 "note": (cause if ratio1.median >= 1.5 else "") + CHANGED})
    figs.append({"name": f"{n} tasks via relay, work dirs on tmpfs",
                 "value": tmpfs_ms, "unit": "ms", "anchor": "—", "target": "—", "met": None,
                 "note": f"the same, with every daemon's work_dir on {TMPFS} (tmpfs)"})
    figs.append({"name": f"{n} raw fork/exec (same run as tmpfs)", "value": raw3, "unit": "ms",
                 "anchor": "physical cost", "target": "—", "met": None, "note": note_raw})
    figs.append({"name": "ratio relay / raw, work dirs on tmpfs (isolates the file system)",
                 "value": ratio3, "unit": "×", "anchor": "1.0 = no overhead", "target": "—",
                 "met": None, "note": TMPFS_NOTE})
    figs.append({"name": f"{n} tasks via master API: ACCEPT to last TASK_RUNNING",
                 "value": master_ms, "unit": "ms", "anchor": "—", "target": "—", "met": None,
                 "note": "JSON scheduler in Python acknowledging every update, pipelined on one "
                         "connection"})
    figs.append({"name": f"{n} raw fork/exec (same run as master)", "value": raw2,
                 "unit": "ms", "anchor": "physical cost", "target": "—", "met": None,
                 "note": note_raw})
    figs.append({"name": "ratio master API / raw (isolates the agent)", "value": ratio2,
                 "unit": "×", "anchor": "1.0 = no overhead", "target": "< 1.5",
                 "met": ratio2.median < 1.5,
                 "note": (cause if ratio2.median >= 1.5 else "") +
                         "the same agents and supervisors as via relay; what changed: see above"})
    return figs
