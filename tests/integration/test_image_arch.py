"""End-to-end tests: a Docker app runs only on agents of its image's architecture.

One private dockerd (dockerd.py) serves every agent. It holds two images of
the same app: localhost/busybox, imported from the host's busybox-static
(the engine records the host's architecture, amd64), and
localhost/busybox-ppc64le, loaded with POST /images/load from an archive
whose config names "architecture": "ppc64le" and whose one layer holds
Debian's busybox-static for ppc64el (taken from the .deb in the ppc64le
build's apt cache, downloaded there through its private apt setup when
missing). Its containers run through binfmt_misc's qemu-ppc64le entry,
which needs the F flag to work inside a container.

The agent compares an image's architecture with its own `arch` and fails
a mismatch at once ("image 'X' is built for ppc64le but this agent is
x86_64 ..."); relay learns the image's arch from that and places the app
only on agents of that arch, without any constraint from the user. The
cluster is a native master, relay and x86_64 agent plus the ppc64le agent
under qemu (test_ppc64le.py builds it), both agents with
--containerizers=docker,mesos on the same engine socket.
"""
import glob
import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from dockerd import BUSYBOX, dockerd  # noqa: F401
from harness import http, wait_for
from test_ppc64le import (PPC_BUILD, PPC_ENV, QEMU_WAIT, agent_ids,  # noqa: F401
                          constraint_reason, ppc64le_build)

MASTER_FLAGS = ("--agent_ping_timeout=1secs", "--max_agent_ping_timeouts=3",
                "--allocation_interval=100ms")
X86_RES = "cpus:4;mem:2048;disk:1024;ports(*):[31000-31099]"
PPC_RES = "cpus:4;mem:2048;disk:1024;ports(*):[31100-31199]"
JSON = {"Content-Type": "application/json", "Accept": "application/json"}
AMD64_IMAGE = "localhost/busybox"
PPC_IMAGE = "localhost/busybox-ppc64le"
BINFMT = "/proc/sys/fs/binfmt_misc/qemu-ppc64le"
ARCHIVES = os.path.join(PPC_BUILD, "apt", "cache", "archives")


# --- the ppc64le image ----------------------------------------------------------------

def ppc_busybox_deb():
    """Debian's busybox-static for ppc64el: from the apt cache, else downloaded there."""
    found = glob.glob(os.path.join(ARCHIVES, "busybox-static_*_ppc64el.deb"))
    if found:
        return found[0]
    apt = os.path.join(PPC_BUILD, "apt")
    os.makedirs(ARCHIVES, exist_ok=True)
    p = subprocess.run(
        ["apt-get", "-q", "-o", f"Dir::State={apt}/state",
         "-o", f"Dir::State::status={apt}/state/status", "-o", f"Dir::Cache={apt}/cache",
         "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
         "-o", "APT::Architecture=ppc64el", "-o", "APT::Architectures::=ppc64el",
         "-o", "APT::Sandbox::User=root", "download", "busybox-static"],
        cwd=ARCHIVES, capture_output=True, text=True, timeout=120)
    found = glob.glob(os.path.join(ARCHIVES, "busybox-static_*_ppc64el.deb"))
    if not found:
        pytest.fail("no busybox-static for ppc64el could be obtained (looked in "
                    f"{ARCHIVES}, then 'apt-get download' through {apt} said: "
                    f"{(p.stdout + p.stderr)[-1500:]})")
    return found[0]


def ppc_busybox(deb):
    """the bytes of bin/busybox in the .deb"""
    p = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, timeout=60)
    assert p.returncode == 0, f"dpkg-deb cannot read {deb}: {p.stderr.decode()[-500:]}"
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
        for m in tar.getmembers():
            if m.name.lstrip("./") == "bin/busybox" and m.isfile():
                return tar.extractfile(m).read()
    pytest.fail(f"{deb} holds no bin/busybox")


def layer_tar(busybox):
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             timeout=10).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(busybox)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(busybox))
        for applet in applets:
            if applet == "busybox" or "/" in applet:
                continue
            info = tarfile.TarInfo("bin/" + applet)
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            tar.addfile(info)
    return buf.getvalue()


def image_archive(layer, repo_tag):
    """a `docker save` style archive: manifest.json, the config JSON, one layer"""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "ppc64le", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "busybox-static for ppc64el"}]}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [repo_tag],
                            "Layers": ["layer/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in ((config_name, config), ("layer/layer.tar", layer),
                           ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run_once(engine, image, cmd):
    """(exit code, output) of a container of image running cmd"""
    cid = engine.run(image, cmd)
    try:
        status, body = engine.api("POST", f"/containers/{cid}/wait", timeout=QEMU_WAIT)
        assert status == 200, f"wait: {status} {body}"
        _, logs = engine.api("GET", f"/containers/{cid}/logs",
                             params={"stdout": "1", "stderr": "1"})
        return body.get("StatusCode"), logs if isinstance(logs, str) else json.dumps(logs)
    finally:
        engine.api("DELETE", f"/containers/{cid}", params={"force": "1"})


@pytest.fixture(scope="module")
def ppc_image(dockerd):  # noqa: F811
    """localhost/busybox-ppc64le in the engine, inspected as ppc64le and runnable"""
    busybox = ppc_busybox(ppc_busybox_deb())
    status, body = dockerd.api("POST", "/images/load", params={"quiet": "1"},
                               raw=image_archive(layer_tar(busybox), PPC_IMAGE + ":latest"),
                               timeout=120)
    docs = body if isinstance(body, list) else [body]
    assert status == 200 and not any(isinstance(d, dict) and d.get("error") for d in docs), \
        f"POST /images/load: {status} {body}"
    status, info = dockerd.api("GET", f"/images/{PPC_IMAGE}/json")
    assert status == 200, f"inspect {PPC_IMAGE}: {status} {info}"
    assert info["Architecture"] == "ppc64le", info
    status, info = dockerd.api("GET", f"/images/{AMD64_IMAGE}/json")
    assert status == 200 and info["Architecture"] == "amd64", info

    try:
        with open(BINFMT) as f:
            entry = f.read()
    except OSError as e:
        pytest.fail(f"binfmt_misc has no qemu-ppc64le entry ({e}): install qemu-user-static "
                    "and binfmt-support; ppc64le containers cannot run")
    flags = [ln.split(":", 1)[1].strip() for ln in entry.splitlines() if ln.startswith("flags:")]
    assert "enabled" in entry and flags and "F" in flags[0], (
        f"{BINFMT} lacks the F (fix-binary) flag, so qemu cannot run ppc64le programs "
        f"inside containers:\n{entry}")
    code, out = run_once(dockerd, PPC_IMAGE, ["/bin/uname", "-m"])
    assert code == 0 and "ppc64le" in out, (
        f"a container of {PPC_IMAGE} cannot run ppc64le binaries (exit {code}): {out[-500:]}")
    return PPC_IMAGE


# --- the cluster ------------------------------------------------------------------------

def api(cluster, method, path, body=None):
    return http(method, cluster.relay_url + path, json=body, headers=JSON)


def docker_flags(engine):
    return ("--containerizers=docker,mesos", f"--docker_socket={engine.socket}",
            "--executor_shutdown_grace_period=2secs")


def start_x86(cluster, engine):
    return cluster.start_agent(*docker_flags(engine), "--hostname=x86-node",
                               resources=X86_RES, name="x86")


def start_ppc(cluster, engine):
    return cluster.start_agent(*docker_flags(engine), "--hostname=power-node",
                               resources=PPC_RES, name="ppc", build=PPC_BUILD, env=PPC_ENV,
                               timeout=QEMU_WAIT)


def docker_app(app_id, image, instances, **extra):
    app = {"id": app_id, "cmd": "sleep 600", "cpus": 0.1, "mem": 32, "instances": instances,
           "container": {"type": "DOCKER", "docker": {"image": image, "network": "HOST"}},
           "portDefinitions": [], "backoffSeconds": 0.2}
    app.update(extra)
    return app


def create(cluster, app):
    r = api(cluster, "POST", "/v2/apps", app)
    assert r.status_code == 201, r.text


def get_app(cluster, app_id):
    r = api(cluster, "GET", "/v2/apps/" + app_id.strip("/") + "?embed=app.lastTaskFailure")
    assert r.status_code == 200, r.text
    return r.json()["app"]


def failure_with(cluster, app_id, text):
    f = get_app(cluster, app_id).get("lastTaskFailure")
    return f if f is not None and text in f.get("message", "") else None


def running_on(cluster, app_id, n):
    app = get_app(cluster, app_id)
    tasks = app["tasks"]
    if app["tasksRunning"] != n or len(tasks) != n:
        return None
    return tasks if all(t["state"] == "TASK_RUNNING" for t in tasks) else None


def queue_entry(cluster, app_id):
    for q in api(cluster, "GET", "/v2/queue").json()["queue"]:
        if q["app"]["id"] == app_id:
            return q
    return None


def mismatch(image, built, agent, engine_arch):
    return (f"image '{image}' is built for {built} but this agent is {agent} "
            f"(engine architecture '{engine_arch}')")


# --- tests ------------------------------------------------------------------------------

def test_agent_refuses_an_image_of_another_arch_at_once(cluster, dockerd, ppc_image):  # noqa: F811
    cluster.start_master(*MASTER_FLAGS)
    start_x86(cluster, dockerd)
    cluster.start_relay()
    create(cluster, docker_app("/pinned", ppc_image, 1,
                               constraints=[["hostname", "LIKE", "x86-node"]]))
    text = mismatch(ppc_image, "ppc64le", "x86_64", "ppc64le")
    failure = wait_for(lambda: failure_with(cluster, "/pinned", text), timeout=20,
                       what="the x86_64 agent to refuse the ppc64le image")
    assert failure["message"] == text, failure
    assert failure["state"] == "TASK_FAILED", failure
    assert failure["host"] == "x86-node", failure
    # nothing was created for it in the engine
    assert not [c for c in dockerd.containers() if c.get("Image") == ppc_image]

    # relay learnt the image's arch: the app now waits, its offers refused by constraint
    def waits_by_constraint():
        entry = queue_entry(cluster, "/pinned")
        assert running_on(cluster, "/pinned", 1) is None, "a ppc64le image runs on x86_64"
        return entry if entry and constraint_reason(entry) and \
            constraint_reason(entry)["declined"] > 0 else None
    wait_for(waits_by_constraint, timeout=20,
             what="/pinned to wait in /v2/queue with UnfulfilledConstraint")
    # and keeps the image off the agent instead of failing again and again
    tasks = get_app(cluster, "/pinned")["tasks"]
    assert tasks == [], tasks


def test_apps_converge_onto_their_images_arch(cluster, dockerd, ppc_image):  # noqa: F811
    cluster.start_master(*MASTER_FLAGS)
    ppc = start_ppc(cluster, dockerd)
    cluster.start_relay()

    # only the ppc64le agent so far: the amd64 image lands there and is refused
    create(cluster, docker_app("/intel-img", AMD64_IMAGE, 2))
    text = mismatch(AMD64_IMAGE, "x86_64", "ppc64le", "amd64")
    failure = wait_for(lambda: failure_with(cluster, "/intel-img", text), timeout=QEMU_WAIT,
                       what="the ppc64le agent to refuse the amd64 image")
    assert failure["host"] == "power-node", failure

    def waits_by_constraint():
        entry = queue_entry(cluster, "/intel-img")
        assert running_on(cluster, "/intel-img", 1) is None, "an amd64 image runs on ppc64le"
        reason = entry and constraint_reason(entry)
        return entry if reason and reason["declined"] > 0 else None
    entry = wait_for(waits_by_constraint, timeout=QEMU_WAIT,
                     what="/intel-img to wait in /v2/queue with UnfulfilledConstraint")
    assert entry["count"] == 2, entry

    x86 = start_x86(cluster, dockerd)
    x86_id, ppc_id = agent_ids(cluster, x86, ppc)
    create(cluster, docker_app("/power-img", ppc_image, 2))

    tasks = wait_for(lambda: running_on(cluster, "/intel-img", 2), timeout=QEMU_WAIT,
                     what="/intel-img to run 2 tasks")
    assert {t["slaveId"] for t in tasks} == {x86_id}, tasks
    tasks = wait_for(lambda: running_on(cluster, "/power-img", 2), timeout=QEMU_WAIT,
                     what="/power-img to run 2 tasks")
    assert {t["slaveId"] for t in tasks} == {ppc_id}, tasks
    assert {t["host"] for t in tasks} == {"power-node"}, tasks

    # the engine runs each image's containers, the ppc64le ones under qemu
    images = sorted(c["Image"] for c in dockerd.containers(all=False)
                    if c.get("Image") in (AMD64_IMAGE, ppc_image))
    assert images == sorted([AMD64_IMAGE] * 2 + [ppc_image] * 2), images
    # no user constraint was needed
    for app_id in ("/intel-img", "/power-img"):
        assert get_app(cluster, app_id)["constraints"] == [], app_id
    assert ppc.alive()
