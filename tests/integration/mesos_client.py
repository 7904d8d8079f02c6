"""A small Mesos v1 scheduler API client for the end-to-end tests.

SchedulerClient subscribes over POST /api/v1/scheduler (JSON by default),
reads the chunked RecordIO event stream in a background thread into an
event list, and sends every other call on its own request with the
Mesos-Stream-Id header. Waits poll the event list with a deadline.

For protobuf, pb_field()/pb_parse() implement just enough of the protobuf
wire format (varints and length-delimited fields) to build a SUBSCRIBE
call and read events without a protobuf library.

raw_post() and raw_socket() send deliberately malformed requests.
"""
import json
import socket
import threading
import time

import requests

JSON = "application/json"
PROTOBUF = "application/x-protobuf"

_session = requests.Session()
_session.trust_env = False


class RecordIO:
    """Incremental RecordIO decoder: feed bytes, take whole records."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                break
            length = int(self.buf[:nl])
            if len(self.buf) < nl + 1 + length:
                break
            out.append(self.buf[nl + 1:nl + 1 + length])
            self.buf = self.buf[nl + 1 + length:]
        return out


# -- a minimal protobuf wire codec -------------------------------------------

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_field(number, value):
    """One field: an int becomes a varint, bytes/str a length-delimited field."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint((number << 3) | 2) + _varint(len(value)) + value


def pb_parse(data):
    """{field number: [values]} with varints as ints and the rest as bytes."""
    fields = {}
    i = 0

    def read_varint():
        nonlocal i
        shift = result = 0
        while True:
            b = data[i]
            i += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    while i < len(data):
        key = read_varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = read_varint()
        elif wire == 2:
            n = read_varint()
            value = data[i:i + n]
            i += n
        elif wire == 1:
            value = data[i:i + 8]
            i += 8
        elif wire == 5:
            value = data[i:i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def pb_subscribe_call(user="root", name="pb-test"):
    """Call{type: SUBSCRIBE, subscribe{framework_info{user, name}}} as protobuf bytes."""
    info = pb_field(1, user) + pb_field(2, name)
    return pb_field(2, 1) + pb_field(3, pb_field(1, info))


# -- the client ----------------------------------------------------------------

class SchedulerClient:
    def __init__(self, master_url):
        self.master_url = master_url
        self.url = master_url + "/api/v1/scheduler"
        self.stream_id = None
        self.framework_id = None
        self.response = None
        self.events = []
        self.lock = threading.Condition()
        self.thread = None
        self.closed = False
        self.error = None

    # subscription
    def subscribe(self, name="test", framework_id=None, capabilities=(), failover_timeout=None,
                  extra=None, timeout=10):
        info = {"user": "root", "name": name}
        if framework_id:
            info["id"] = {"value": framework_id}
        if capabilities:
            info["capabilities"] = [{"type": c} for c in capabilities]
        if failover_timeout is not None:
            info["failover_timeout"] = failover_timeout
        if extra:
            info.update(extra)
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if framework_id:
            body["framework_id"] = {"value": framework_id}
        self.response = _session.post(
            self.url, data=json.dumps(body), stream=True, timeout=(5, None),
            headers={"Content-Type": JSON, "Accept": JSON})
        if self.response.status_code != 200:
            raise AssertionError(f"subscribe: {self.response.status_code} {self.response.text}")
        self.stream_id = self.response.headers["Mesos-Stream-Id"]
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        ev = self.wait_event("SUBSCRIBED", timeout=timeout)
        self.framework_id = ev["subscribed"]["framework_id"]["value"]
        return ev

    def _read(self):
        decoder = RecordIO()
        try:
            for chunk in self.response.iter_content(chunk_size=None):
                for rec in decoder.feed(chunk):
                    ev = json.loads(rec)
                    with self.lock:
                        self.events.append(ev)
                        self.lock.notify_all()
        except Exception as exc:  # noqa: BLE001 - the stream ended or was closed
            self.error = exc
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def close(self):
        if self.response is not None:
            try:
                self.response.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)
            except Exception:  # noqa: BLE001 - best effort
                pass
            self.response.close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    # events
    def wait_event(self, type_, pred=None, timeout=20, start=0):
        """The first event of that type (from index start) for which pred is true."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for ev in self.events[start:]:
                    if ev.get("type") == type_ and (pred is None or pred(ev)):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    types = [e.get("type") for e in self.events]
                    raise AssertionError(f"no {type_} event within {timeout}s; got {types}")
                if self.closed:
                    raise AssertionError(f"stream closed while waiting for {type_}")
                self.lock.wait(min(left, 0.2))

    def mark(self):
        with self.lock:
            return len(self.events)

    def updates(self, task_id):
        with self.lock:
            return [e["update"]["status"] for e in self.events
                    if e.get("type") == "UPDATE" and
                    e["update"]["status"]["task_id"]["value"] == task_id]

    def wait_update(self, task_id, state, timeout=20, start=0, pred=None):
        def match(ev):
            st = ev["update"]["status"]
            return (st["task_id"]["value"] == task_id and st["state"] == state and
                    (pred is None or pred(st)))
        return self.wait_event("UPDATE", match, timeout=timeout, start=start)["update"]["status"]

    def wait_offers(self, timeout=20, start=0, pred=None):
        ev = self.wait_event("OFFERS", lambda e: pred is None or pred(e), timeout, start)
        return ev["offers"]["offers"]

    # calls
    def call(self, type_, payload=None, stream_id=True):
        body = {"type": type_, "framework_id": {"value": self.framework_id}}
        if payload is not None:
            body[type_.lower()] = payload
        headers = {"Content-Type": JSON}
        if stream_id is True:
            headers["Mesos-Stream-Id"] = self.stream_id
        elif stream_id:
            headers["Mesos-Stream-Id"] = stream_id
        return _session.post(self.url, data=json.dumps(body), headers=headers, timeout=10)

    def checked(self, type_, payload=None):
        r = self.call(type_, payload)
        assert r.status_code == 202, f"{type_}: {r.status_code} {r.text}"
        return r

    def launch(self, offer, tasks, refuse_seconds=None):
        payload = {"offer_ids": [offer["id"]],
                   "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}]}
        if refuse_seconds is not None:
            payload["filters"] = {"refuse_seconds": refuse_seconds}
        return self.checked("ACCEPT", payload)

    def decline(self, offer_ids, refuse_seconds=None):
        payload = {"offer_ids": [{"value": o} if isinstance(o, str) else o for o in offer_ids]}
        if refuse_seconds is not None:
            payload["filters"] = {"refuse_seconds": refuse_seconds}
        return self.checked("DECLINE", payload)

    def acknowledge(self, status):
        return self.checked("ACKNOWLEDGE", {
            "agent_id": status["agent_id"], "task_id": status["task_id"],
            "uuid": status["uuid"]})

    def kill(self, task_id, agent_id=None):
        payload = {"task_id": {"value": task_id}}
        if agent_id:
            payload["agent_id"] = {"value": agent_id}
        return self.checked("KILL", payload)

    def reconcile(self, tasks=()):
        payload = {"tasks": [
            dict({"task_id": {"value": t}}, **({"agent_id": {"value": a}} if a else {}))
            for t, a in tasks]}
        return self.checked("RECONCILE", payload)


def command_task(offer, task_id, cmd="sleep 30", cpus=0.1, mem=32):
    """A TaskInfo dict for a shell command on the offer's agent."""
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
        ],
        "command": {"shell": True, "value": cmd},
    }


def scalar(offer, name):
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


def raw_post(url, body, headers):
    return _session.post(url, data=body, headers=headers, timeout=10)


def raw_socket(host, port, data, read=True, timeout=5):
    """Send raw bytes on a fresh connection; return what came back (maybe b"")."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
        return out
