"""A real mosquitto broker for the MQTT tests and bench, its certificates and
an observing client.

- make_certs(dir): a test CA, a server certificate for 127.0.0.1/localhost
  and a client certificate signed by it, plus an unrelated "wrong" CA with a
  client certificate of its own; made with the openssl CLI (EC P-256).
- Broker: /usr/sbin/mosquitto -c <generated conf> in a temporary directory
  with three listeners on free 127.0.0.1 ports: `plain` (anonymous), `tls`
  (server certificate, anonymous) and `mtls` (client certificate required and
  a password file). start() waits until every port accepts and an MQTT client
  is served on the plain port; kill()/stop() and start() again reuse the same
  ports and configuration (the outage test). Optional persistence (with a 1 s
  autosave) keeps a persistent observer's subscription across a SIGKILL.
- Observer: a paho client subscribed to '#' (so $SYS is excluded) that
  records every message as Msg(topic, payload bytes, retain, time, seq),
  thread-safely, with wait_for(predicate, timeout). A message the broker
  delivers again (DUP flag) after a restart, identical to one already
  received, is counted in .redelivered, not recorded: that is the broker's
  at-least-once towards this client, not a publication of the daemon.

Debian packages: mosquitto, mosquitto-clients (mosquitto_passwd),
python3-paho-mqtt (1.6), openssl. Run this file to check the set-up alone:
/usr/bin/python3 tests/integration/broker.py
"""
import collections
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port, port_accepts, wait_until  # noqa: E402

import paho.mqtt.client as paho  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
USER = "sgd"
PASSWORD = "Pw-4471-unique"


# ---- certificates ----

def _openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), p.stderr.strip()))


def _key(d, name):
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", name + ".key", cwd=d)


def _ca(d, name, cn):
    _key(d, name)
    _openssl("req", "-x509", "-new", "-key", name + ".key", "-out", name + ".pem", "-days", "30",
             "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, cn, ca, ext):
    _key(d, name)
    _openssl("req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
             cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
        f.write(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "30", "-extfile", name + ".ext",
             cwd=d)


CERT_FILES = ("ca.pem", "server.pem", "server.key", "client.pem", "client.key", "wrong-ca.pem",
              "wrong-client.pem", "wrong-client.key")
_cert_cache = {}


def make_certs(d=None):
    """Make (once per process) the test PKI; returns {name: absolute path} for
    CERT_FILES (ca, server, client, wrong-ca, wrong-client)."""
    if _cert_cache and d is None:
        return dict(_cert_cache)
    d = d or tempfile.mkdtemp(prefix="sgd-pki-")
    os.makedirs(d, exist_ok=True)
    _ca(d, "ca", "sgd test CA")
    _leaf(d, "server", "localhost", "ca",
          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _leaf(d, "client", "sgd-client", "ca", "extendedKeyUsage=clientAuth\n")
    _ca(d, "wrong-ca", "unrelated CA")
    _leaf(d, "wrong-client", "sgd-client", "wrong-ca", "extendedKeyUsage=clientAuth\n")
    out = {n: os.path.join(d, n) for n in CERT_FILES}
    if not _cert_cache:
        _cert_cache.update(out)
    return out


# ---- broker ----

class Broker:
    """mosquitto with a plain, a TLS and a mutual-TLS (+ password) listener.

    Ports: .plain, .tls, .mtls (and .plain2, a second anonymous plain listener,
    when extra_plain). .certs: make_certs() paths."""

    def __init__(self, workdir=None, persistence=False, extra_plain=False, users=None):
        self.dir = tempfile.mkdtemp(prefix="mosq-", dir=workdir)
        self.certs = make_certs()
        self.plain, self.tls, self.mtls = free_port(), free_port(), free_port()
        self.plain2 = free_port() if extra_plain else None
        self.users = dict(users or {USER: PASSWORD})
        self.passwd = os.path.join(self.dir, "passwd")
        first = True
        for u, p in self.users.items():
            subprocess.run([MOSQUITTO_PASSWD, "-b"] + (["-c"] if first else []) +
                           [self.passwd, u, p], check=True, capture_output=True)
            first = False
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.logpath = os.path.join(self.dir, "mosquitto.log")
        c = self.certs
        lines = ["per_listener_settings true",
                 "user %s" % pwd.getpwuid(os.geteuid()).pw_name,
                 "log_dest file %s" % self.logpath,
                 "log_type error", "log_type warning", "log_type notice",
                 "log_type information", "connection_messages true",
                 "log_timestamp_format %H:%M:%S",
                 "max_queued_messages 100000", "queue_qos0_messages true"]
        if persistence:
            lines += ["persistence true", "persistence_location %s/" % self.dir,
                      "autosave_interval 1"]
        else:
            lines += ["persistence false"]
        lines += ["", "listener %d 127.0.0.1" % self.plain, "allow_anonymous true"]
        if self.plain2:
            lines += ["", "listener %d 127.0.0.1" % self.plain2, "allow_anonymous true"]
        lines += ["", "listener %d 127.0.0.1" % self.tls, "allow_anonymous true",
                  "cafile %s" % c["ca.pem"], "certfile %s" % c["server.pem"],
                  "keyfile %s" % c["server.key"],
                  "", "listener %d 127.0.0.1" % self.mtls, "allow_anonymous false",
                  "cafile %s" % c["ca.pem"], "certfile %s" % c["server.pem"],
                  "keyfile %s" % c["server.key"], "require_certificate true",
                  "use_identity_as_username false", "password_file %s" % self.passwd]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        self.out = None

    def ports(self):
        return [p for p in (self.plain, self.plain2, self.tls, self.mtls) if p]

    def start(self, timeout=15):
        assert not self.running(), "broker already running"
        self.out = open(os.path.join(self.dir, "mosquitto.out"), "a")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=self.out,
                                     stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            return all(port_accepts(p) for p in self.ports()) and self._mqtt_ok()
        r = wait_until(ready, timeout, "mosquitto on ports %s" % self.ports())
        if r == "exited":
            raise AssertionError("mosquitto exited with %d:\n%s" % (self.proc.returncode,
                                                                   self.logtext()))
        return self

    def _mqtt_ok(self):
        """An MQTT CONNECT on the plain port gets a CONNACK."""
        ok = threading.Event()
        c = paho.Client(client_id="ready-%d-%d" % (os.getpid(), time.monotonic_ns()))
        c.on_connect = lambda cl, u, f, rc: rc == 0 and ok.set()
        try:
            c.connect("127.0.0.1", self.plain, keepalive=10)
            c.loop_start()
            return ok.wait(2)
        except OSError:
            return False
        finally:
            try:
                c.disconnect()
            except Exception:
                pass
            c.loop_stop()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _end(self, sig):
        if self.running():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.out:
            self.out.close()
            self.out = None
        wait_until(lambda: not any(port_accepts(p) for p in self.ports()), 5,
                   "broker ports closed")

    def kill(self):
        """SIGKILL: the broker vanishes without a word (no will, no goodbye)."""
        self._end(signal.SIGKILL)

    def stop(self):
        self._end(signal.SIGTERM)

    def restart(self):
        self.stop()
        return self.start()

    def logtext(self):
        try:
            with open(self.logpath) as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- observing client ----

Msg = collections.namedtuple("Msg", "topic payload retain t seq")


class Observer:
    """paho client recording every message of its subscriptions (default '#').

    persistent: a fixed client id with clean_session False and QoS 1, so a
    broker with persistence queues messages for it while it is away."""

    def __init__(self, port, host="127.0.0.1", topics=("#",), client_id=None, persistent=False,
                 tls=None, username=None, password=None, timeout=10):
        self.msgs = []
        self._seen = set()
        self.redelivered = 0
        self.cond = threading.Condition()
        self.topics = list(topics)
        self.connects = 0
        self._subscribed = threading.Event()
        cid = client_id or "obs-%d-%d" % (os.getpid(), time.monotonic_ns())
        self.c = paho.Client(client_id=cid, clean_session=not persistent)
        self.c.reconnect_delay_set(0.1, 0.5)
        if tls:
            self.c.tls_set(**tls)
        if username:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, q: self._subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect(host, port, keepalive=10)
        self.c.loop_start()
        if not self._subscribed.wait(timeout):
            self.close()
            raise AssertionError("observer: no SUBACK from 127.0.0.1:%d" % port)

    def _on_connect(self, c, userdata, flags, rc):
        if rc == 0:
            self.connects += 1
            c.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, c, userdata, m):
        payload = bytes(m.payload)
        with self.cond:
            key = (m.topic, hash(payload))
            if m.dup and key in self._seen:
                # the broker delivering again what this client already has (it was in
                # flight to us when the broker went down): not a new publication
                self.redelivered += 1
                return
            self._seen.add(key)
            self.msgs.append(Msg(m.topic, payload, bool(m.retain), time.time(), len(self.msgs)))
            self.cond.notify_all()

    def mark(self):
        """Sequence number of the next message to arrive."""
        with self.cond:
            return len(self.msgs)

    def since(self, mark=0, topic=None, prefix=None):
        with self.cond:
            return [m for m in self.msgs[mark:]
                    if (topic is None or m.topic == topic) and
                    (prefix is None or m.topic.startswith(prefix))]

    def wait_for(self, pred, timeout, what="a message"):
        """Wait until pred(list of all messages) returns a true value; return it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                r = pred(self.msgs)
                if r:
                    return r
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = ["%s %r" % (m.topic, m.payload[:120]) for m in self.msgs[-8:]]
                    raise AssertionError("timed out after %.1fs waiting for %s; last messages:"
                                         "\n  %s" % (timeout, what, "\n  ".join(tail)))
                self.cond.wait(min(left, 0.5))

    def wait_msg(self, topic, mark=0, match=None, timeout=10, what=None):
        """First message on topic (exact, or a prefix ending with '/#') at or
        after mark for which match(msg) holds."""
        def pred(msgs):
            for m in msgs[mark:]:
                hit = (m.topic.startswith(topic[:-1]) if topic.endswith("#")
                       else m.topic == topic)
                if hit and (match is None or match(m)):
                    return m
            return None
        return self.wait_for(pred, timeout, what or "message on %s" % topic)

    def publish(self, topic, payload, qos=1, retain=False, timeout=10):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout) if _wfp_has_timeout() else info.wait_for_publish()
        return info

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


def _wfp_has_timeout():
    import inspect
    return "timeout" in inspect.signature(paho.MQTTMessageInfo.wait_for_publish).parameters


def retained(port, prefix="#", settle=1.0, timeout=10):
    """The retained messages under prefix as {topic: Msg}, from a fresh client
    (waits until settle seconds pass without a new retained message; live
    messages arriving meanwhile are ignored)."""
    o = Observer(port, topics=(prefix,), timeout=timeout)
    try:
        last = [time.monotonic(), 0]

        def quiet(msgs):
            n = sum(1 for m in msgs if m.retain)
            if n != last[1]:
                last[:] = [time.monotonic(), n]
            return time.monotonic() - last[0] >= settle
        o.wait_for(quiet, timeout + settle, "retained messages to settle")
        return {m.topic: m for m in o.since(0) if m.retain}
    finally:
        o.close()


def _selftest():
    b = Broker(persistence=True, extra_plain=True)
    try:
        t0 = time.monotonic()
        b.start()
        print("broker up on plain %d, plain2 %d, tls %d, mtls %d in %.2fs" % (
            b.plain, b.plain2, b.tls, b.mtls, time.monotonic() - t0))
        c = b.certs
        o = Observer(b.plain)
        o.publish("x/y", b"plain", retain=True)
        o.wait_msg("x/y")
        for port, kw, user, want in (
                (b.tls, dict(ca_certs=c["ca.pem"]), None, True),
                (b.mtls, dict(ca_certs=c["ca.pem"], certfile=c["client.pem"],
                              keyfile=c["client.key"]), (USER, PASSWORD), True),
                (b.mtls, dict(ca_certs=c["ca.pem"], certfile=c["client.pem"],
                              keyfile=c["client.key"]), (USER, "wrong"), False),
                (b.mtls, dict(ca_certs=c["ca.pem"], certfile=c["wrong-client.pem"],
                              keyfile=c["wrong-client.key"]), (USER, PASSWORD), False),
                (b.tls, dict(ca_certs=c["wrong-ca.pem"]), None, False)):
            try:
                t = Observer(port, tls=kw, username=user and user[0],
                             password=user and user[1], timeout=3)
                t.publish("x/tls", json.dumps({"port": port}))
                t.close()
                got = True
            except Exception as e:
                got = False
                err = e
            print("  port %d %s user %s: %s" % (port, os.path.basename(kw.get("certfile") or
                                                                    kw["ca_certs"]), user,
                                               "connected" if got else "refused (%s)" %
                                               str(err).splitlines()[0][:60]))
            assert got == want, (port, kw, user)
        p = Observer(b.plain, client_id="persist-test", persistent=True)
        time.sleep(1.5)  # autosave
        b.kill()
        b.start()
        o2 = Observer(b.plain2)
        o2.publish("after/restart", b"1")
        p.wait_msg("after/restart", timeout=5)
        print("persistent observer kept its subscription across SIGKILL; retained:",
              sorted(retained(b.plain)))
        p.close()
        o.close()
        o2.close()
        print("ok")
    finally:
        b.cleanup()


if __name__ == "__main__":
    _selftest()
