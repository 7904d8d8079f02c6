"""A private Docker engine (Debian's dockerd) for the container tests.

Dockerd(tmpdir).start() runs dockerd with its own data root, exec root,
pid file, config file, Unix socket and bridge, so it never touches a
system-wide engine and two engines started by different test processes do
not clash: each gets a private Linux bridge (own name, own /24 subnet),
dockerd's iptables handling is off and published ports are served by the
userland proxy (reachable on 127.0.0.1), and each runs its own containerd
under its exec root with a private containerd namespace. Inside one pytest
process only one Dockerd runs at a time: starting a second stops the first.

api() speaks the Engine API over the Unix socket with http.client;
import_busybox() builds an image from Debian's busybox-static (the host's
architecture, so it runs on x86_64 and ppc64le alike). stop() removes every
container the engine holds, stops dockerd and its containerd, deletes the
bridge and the directories.

The module-scoped pytest fixture `dockerd` yields a started engine with
localhost/busybox imported; test files import it as
    from dockerd import dockerd  # noqa: F401
"""
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.parse

import pytest

BUSYBOX = "/bin/busybox"
_running = None  # the Dockerd started by this process, if any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _run(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)


def _free_subnet():
    """A 10.213.N.0/24 no interface on this host uses yet (N random)."""
    used = _run("ip", "-o", "-4", "addr").stdout
    choices = list(range(1, 255))
    random.shuffle(choices)
    for n in choices:
        if f" 10.213.{n}." not in used:
            return n
    raise RuntimeError("no free 10.213.N.0/24 subnet for the test bridge")


class Dockerd:
    def __init__(self, tmpdir):
        self.tmpdir = str(tmpdir)
        self.data_root = os.path.join(self.tmpdir, "data")
        self.log_path = os.path.join(self.tmpdir, "dockerd.log")
        # exec root and socket live in a short directory: unix socket
        # paths (containerd's among them) are limited to 108 bytes
        self.short = tempfile.mkdtemp(prefix="btd", dir="/tmp")
        self.exec_root = os.path.join(self.short, "x")
        self.pidfile = os.path.join(self.short, "docker.pid")
        self.socket = os.path.join(self.short, "docker.sock")
        tag = os.path.basename(self.short)[3:].lower()
        tag = "".join(c for c in tag if c.isalnum())[:8]
        self.bridge = "btd" + tag
        self.namespace = "butte-test-" + tag
        self.subnet = None
        self.proc = None
        self._log = None

    # ---- lifecycle -------------------------------------------------------

    def start(self, timeout=60.0):
        global _running
        if _running is not None and _running is not self:
            _running.stop()
        _running = self
        os.makedirs(self.data_root, exist_ok=True)
        self._make_bridge()
        config = os.path.join(self.short, "daemon.json")
        with open(config, "w") as f:
            f.write("{}\n")
        argv = ["dockerd",
                f"--data-root={self.data_root}",
                f"--exec-root={self.exec_root}",
                f"--pidfile={self.pidfile}",
                f"--config-file={config}",
                "-H", f"unix://{self.socket}",
                f"--bridge={self.bridge}",
                "--iptables=false", "--ip-masq=false", "--ip-forward=false",
                "--userland-proxy=true",
                f"--containerd-namespace={self.namespace}",
                f"--containerd-plugins-namespace={self.namespace}-plugins",
                "--log-level=info"]
        env = dict(os.environ)
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            if self.ping():
                return self
            if time.monotonic() >= deadline:
                raise RuntimeError("dockerd did not answer /_ping in time:\n"
                                   + self.log_tail())
            time.sleep(0.1)

    def _make_bridge(self):
        _run("ip", "link", "del", self.bridge)
        n = _free_subnet()
        for argv in (("ip", "link", "add", "name", self.bridge, "type", "bridge"),
                     ("ip", "addr", "add", f"10.213.{n}.1/24", "dev", self.bridge),
                     ("ip", "link", "set", self.bridge, "up")):
            r = _run(*argv)
            if r.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {r.stdout.strip()}")
        self.subnet = f"10.213.{n}.0/24"

    def ping(self):
        try:
            status, body = self.api("GET", "/_ping", timeout=2)
        except OSError:
            return False
        return status == 200

    def stop(self):
        global _running
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.remove_all_containers()
            except (OSError, http.client.HTTPException):
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._kill_leftovers()
        self._unmount_under(self.data_root)
        self._unmount_under(self.exec_root)
        _run("ip", "link", "del", self.bridge)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.short, ignore_errors=True)
        shutil.rmtree(self.data_root, ignore_errors=True)
        if _running is self:
            _running = None

    def _kill_leftovers(self):
        """SIGKILL containerd/shims whose command line names our exec root."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if self.exec_root in cmd or self.namespace in cmd:
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass

    @staticmethod
    def _unmount_under(root):
        try:
            with open("/proc/mounts") as f:
                points = [line.split()[1] for line in f]
        except OSError:
            return
        for point in sorted(points, key=len, reverse=True):
            point = point.replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                _run("umount", "-l", point)

    def log_tail(self, size=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-size:]
        except OSError:
            return ""

    # ---- Engine API ------------------------------------------------------

    def api(self, method, path, body=None, params=None, raw=None, timeout=60):
        """One Engine API request; returns (status, parsed JSON or text).

        body is sent as JSON, raw (bytes) as an application/x-tar body.
        A response made of several JSON documents (a progress stream) is
        returned as a list of them.
        """
        if params:
            path += "?" + urllib.parse.urlencode(params, doseq=True)
        headers = {}
        data = None
        if raw is not None:
            data = raw
            headers["Content-Type"] = "application/x-tar"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = _UnixConnection(self.socket, timeout)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode(errors="replace")
            return resp.status, _parse(text)
        finally:
            conn.close()

    def containers(self, label=None, all=True):
        params = {"all": "1" if all else "0"}
        if label:
            params["filters"] = json.dumps({"label": [label]})
        status, body = self.api("GET", "/containers/json", params=params)
        if status != 200:
            raise RuntimeError(f"GET /containers/json: {status} {body}")
        return body

    def inspect(self, cid):
        status, body = self.api("GET", f"/containers/{cid}/json")
        return body if status == 200 else None

    def remove_all_containers(self):
        for c in self.containers():
            self.api("DELETE", f"/containers/{c['Id']}", params={"force": "1", "v": "1"})

    def run(self, image, cmd, name=None, labels=None):
        """create + start a container directly; returns its id."""
        params = {"name": name} if name else None
        status, body = self.api("POST", "/containers/create", params=params,
                                body={"Image": image, "Cmd": cmd, "Labels": labels or {}})
        if status != 201:
            raise RuntimeError(f"create: {status} {body}")
        cid = body["Id"]
        status, body = self.api("POST", f"/containers/{cid}/start")
        if status not in (204, 304):
            raise RuntimeError(f"start: {status} {body}")
        return cid

    def import_busybox(self, name="localhost/busybox"):
        """Import a busybox-static rootfs as image `name` (tag latest)."""
        repo, _, tag = name.partition(":")
        status, body = self.api("POST", "/images/create", raw=busybox_tar(), params={
            "fromSrc": "-", "repo": repo, "tag": tag or "latest",
            "changes": ["ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin",
                        'CMD ["/bin/sh"]']}, timeout=120)
        docs = body if isinstance(body, list) else [body]
        for doc in docs:
            if isinstance(doc, dict) and doc.get("error"):
                raise RuntimeError(f"import {name}: {doc['error']}")
        if status != 200:
            raise RuntimeError(f"import {name}: {status} {body}")
        return name


def _parse(text):
    if not text.strip():
        return text
    try:
        return json.loads(text)
    except ValueError:
        pass
    docs = []
    try:
        for line in text.splitlines():
            if line.strip():
                docs.append(json.loads(line))
    except ValueError:
        return text
    return docs


def busybox_tar():
    """A tar (bytes) of a minimal rootfs: busybox plus one link per applet."""
    applets = _run(BUSYBOX, "--list").stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d, mode in (("bin", 0o755), ("sbin", 0o755), ("etc", 0o755),
                        ("tmp", 0o1777), ("root", 0o700), ("var", 0o755),
                        ("www", 0o755)):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            if applet in ("busybox",) or "/" in applet:
                continue
            info = tarfile.TarInfo("bin/" + applet)
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            tar.addfile(info)
        for fname, content in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                                "nobody:x:65534:65534:nobody:/:/bin/false\n"),
                               ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = content.encode()
            info = tarfile.TarInfo(fname)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory):
    d = Dockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        d.start()
        d.import_busybox("localhost/busybox")
    except Exception:
        d.stop()
        raise
    yield d
    d.stop()
