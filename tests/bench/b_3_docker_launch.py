"""Item 3 (containers): Docker launch overhead against direct Engine API calls.

A private dockerd (tests/integration/dockerd.py) with the busybox image,
one master and one agent with --containerizers=docker,mesos. In each run,
one after the other against the same engine:
  direct -- this process creates and starts N containers itself, N threads
            each doing POST /containers/create + POST /containers/{id}/start
            (bridge network, `sleep 1000`), timed until the last start
            returned;
  butte  -- a scheduler on the master's v1 API ACCEPTs one offer with N
            DOCKER TaskInfos (same image and command, bridge network); time
            from ACCEPT to the last TASK_RUNNING (every update acknowledged
            at once).
The ratio butte/direct is taken per run. Afterwards every container is
removed (direct: DELETE ?force=1; butte: KILL, then wait until the agent
removed its containers). When dockerd cannot start here, the module reports
that with met=None instead of failing.
"""
import json
import threading
import time

import harness
from b_3_launch import MasterLauncher
from benchlib import Stats

TITLE = "Container launch overhead against direct Docker Engine API calls"
ORDER = 3
DOC = """\
Real containers from a private dockerd (Debian docker.io) and a busybox
image: butte bringing N DOCKER tasks (bridge network, `sleep 1000`) to
RUNNING, from the scheduler's ACCEPT to the last `TASK_RUNNING` on its
event stream, against this process creating and starting the same N
containers itself through the Engine API (N threads, each
`POST /containers/create` + `POST /containers/{id}/start`) on the same
engine, in the same run. The agent checks the image, creates, starts and
inspects each container and follows its logs and exit. One agent."""

IMAGE = "localhost/busybox"
CMD = "sleep 1000"


def direct_launch(dockerd, n, seq):
    """Create and start n containers concurrently; seconds until all started."""
    ids, errors = [None] * n, []

    def one(i):
        try:
            status, body = dockerd.api("POST", "/containers/create",
                                       params={"name": f"direct-{seq}-{i}"},
                                       body={"Image": IMAGE, "Cmd": ["/bin/sh", "-c", CMD],
                                             "HostConfig": {"NetworkMode": "bridge"}})
            if status != 201:
                raise AssertionError(f"create: {status} {body}")
            ids[i] = body["Id"]
            status, body = dockerd.api("POST", f"/containers/{ids[i]}/start")
            if status not in (204, 304):
                raise AssertionError(f"start: {status} {body}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(str(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for cid in ids:
        if cid:
            dockerd.api("DELETE", f"/containers/{cid}", params={"force": "1"})
    if errors:
        raise AssertionError(f"direct launch: {errors[:3]}")
    return elapsed


class DockerLauncher(MasterLauncher):
    """The v1 scheduler of b_3_launch, launching DOCKER tasks on one agent."""

    def take_offer(self, n, deadline):
        need = 0.05 * n - 1e-9
        while True:
            with self.cv:
                self.cv.wait_for(lambda: self.offers,
                                 timeout=max(0.05, deadline - time.monotonic()))
                offers, self.offers = self.offers, []
            fit = [o for o in offers if sum(r["scalar"]["value"] for r in o["resources"]
                                            if r["name"] == "cpus") >= need]
            rest = [o for o in offers if o not in fit[:1]]
            if rest:
                self.call("DECLINE", {"offer_ids": [o["id"] for o in rest],
                                      "filters": {"refuse_seconds": 0}})
            if fit:
                return fit[0]
            if time.monotonic() > deadline:
                raise AssertionError("no offer with room for the containers")

    def launch(self, n, deadline):
        self.seq += 1
        offer = self.take_offer(n, deadline)
        ids = [f"c{self.seq}-t{i}" for i in range(n)]
        infos = [{"name": tid, "task_id": {"value": tid}, "agent_id": offer["agent_id"],
                  "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.05}},
                                {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}}],
                  "command": {"shell": True, "value": CMD},
                  "container": {"type": "DOCKER", "docker": {"image": IMAGE,
                                                             "network": "BRIDGE"}}}
                 for tid in ids]
        body = json.dumps({"type": "ACCEPT", "framework_id": {"value": self.fid}, "accept": {
            "offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0},
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": infos}}]}})
        t0 = time.perf_counter()
        r = self.s.post(self.url, data=body, timeout=10, headers={
            "Content-Type": "application/json", "Mesos-Stream-Id": self.stream_id})
        if r.status_code != 202:
            raise AssertionError(f"ACCEPT: {r.status_code} {r.text[:300]}")
        return self.await_running(ids, t0, deadline, "containers")


def unavailable(n, why):
    return [{"name": f"ratio butte / direct for {n} containers", "value": None, "unit": "×",
             "anchor": "1.0 = no overhead", "target": "< 1.3", "met": None,
             "note": f"not measured: {why}"}]


def run(ctx):
    from dockerd import Dockerd

    n = 4 if ctx.quick else 20
    runs, warmup = (1, 1) if ctx.quick else (5, 1)
    budget = 60 if ctx.quick else 120
    engine = Dockerd(ctx.tmpdir + "/dockerd")
    try:
        engine.start()
        engine.import_busybox(IMAGE)
    except Exception as exc:  # noqa: BLE001 - no engine here: say so
        engine.stop()
        return unavailable(n, f"dockerd could not start ({str(exc).splitlines()[0]})")
    launcher = None
    try:
        c = ctx.cluster()
        c.start_master("--allocation_interval=100ms")
        agent = c.start_agent("--containerizers=docker,mesos",
                              f"--docker_socket={engine.socket}",
                              "--executor_shutdown_grace_period=1secs",
                              resources="cpus:8;mem:8192;disk:4096;ports(*):[31000-31999]")
        launcher = DockerLauncher(c.master_url)
        label = "butte.work_dir=" + __import__("os").path.realpath(agent.work_dir)
        direct, butte = [], []

        def one():
            dl = time.monotonic() + budget
            d = direct_launch(engine, n, len(direct))
            b = launcher.launch(n, dl)
            harness.wait_for(lambda: not engine.containers(label=label), timeout=budget,
                             what="butte's containers to be removed")
            direct.append(d * 1000)
            butte.append(b * 1000)
            ctx.log(f"n={n}: direct {d * 1000:.0f} ms, butte {b * 1000:.0f} ms, "
                    f"ratio {b / d:.2f}")
            return b / d

        ratio = ctx.repeat(one, warmup=warmup, runs=runs)
    finally:
        if launcher is not None:
            launcher.close()
        engine.stop()
    return [
        {"name": f"{n} containers via master API: ACCEPT to last TASK_RUNNING",
         "value": Stats(butte[warmup:]), "unit": "ms", "anchor": "—", "target": "—",
         "met": None, "note": "one agent; image check, create, start, inspect per task"},
        {"name": f"{n} direct create+start (same run, same dockerd)",
         "value": Stats(direct[warmup:]), "unit": "ms", "anchor": "physical cost",
         "target": "—", "met": None, "note": f"{n} concurrent Engine API clients"},
        {"name": "ratio butte / direct", "value": ratio, "unit": "×",
         "anchor": "1.0 = no overhead", "target": "< 1.3", "met": ratio.median < 1.3,
         "note": None},
    ]
