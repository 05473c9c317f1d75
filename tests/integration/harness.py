"""Test harness: real sgd + real sgsim processes on ptys, driven over sockets.

Standard library only. Readiness is waited for (simulator prints "ready",
the daemon's control socket accepts), never slept for.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

# bench/http.py is named like the standard library's http package and the
# bench scripts run with bench/ first on the import path: keep it off, so
# that this is the real http.client.
_BENCH_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "bench")
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _BENCH_DIR]
import http.client  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("SG_BUILD", "build"))
DEVICES = os.path.join(ROOT, "etc", "devices")
WWW = os.path.join(ROOT, "www")

# The demo layout of the issue: Left IR IE38@33, Right IR Bicom, RS485
# WM3M4C@1, MC750@2, Bicom@3, IE14@4.
DEMO_SETTINGS = [
    "left_ir_enabled=1", "ir_counter_addr=33", "ir_ext_rel_mode=1",
    "rs485_type_1=1", "rs485_addr_1=1",
    "rs485_type_2=4", "rs485_addr_2=2",
    "rs485_type_3=2", "rs485_addr_3=3",
    "rs485_type_4=1", "rs485_addr_4=4",
]
RIGHT_IR_BICOM_ADDR = 33  # default of right_ir_addr in sgd.conf


def wait_until(fn, timeout, what, interval=0.05):
    """Poll fn() until it returns a true value; fail with what after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # a not-yet-ready socket, etc.
            last = e
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


_handed_out = set()


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that nothing listens on right now (TCP or UDP),
    never one this process was given before: the kernel may hand the same
    free port to two calls in a row, and a broker given it twice fails."""
    while True:
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_accepts(port, host="127.0.0.1"):
    """True when a TCP connection to host:port succeeds."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def decode_body(headers, raw):
    """JSON when the body parses as JSON (any content type); else the raw bytes."""
    if raw:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pass
    return raw


def http_request(port, method, path, body=None, headers=None, timeout=10, host="127.0.0.1",
                 conn=None, raw=False, source=None):
    """One HTTP/1.1 request with http.client (stdlib only).

    body: dict/list (sent as JSON), str or bytes (sent as is), or None.
    conn: an open http.client.HTTPConnection to reuse (keep-alive); else a new
    connection is made (from source, an address to bind, if given) and closed.
    Returns (status, headers, data) where headers is the case-insensitive
    http.client message and data the parsed JSON body, or the raw bytes when
    the body is not JSON or raw is true."""
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
    own = conn is None
    c = conn or http.client.HTTPConnection(host, port, timeout=timeout,
                                           source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        data = r.read()
        return r.status, r.headers, data if raw else decode_body(r.headers, data)
    finally:
        if own:
            c.close()


def raw_http(port, data, timeout=10, host="127.0.0.1", shut_wr=False):
    """Send bytes exactly as given (no client-side normalisation) on a new
    connection and read until the server closes or timeout. Returns
    (status or None, headers dict with lower-case names, body bytes)."""
    s = socket.create_connection((host, port), timeout=timeout)
    buf = b""
    try:
        s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
            st, hd, body = parse_response(buf)
            if st is not None and "content-length" in hd and \
                    len(body) >= int(hd["content-length"]):
                break
    finally:
        s.close()
    return parse_response(buf)


def parse_response(buf):
    """(status, headers, body) of one HTTP response in buf; status None when
    the header block is incomplete."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, buf
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return None, {}, buf
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "content-length" in hdrs:
        try:
            body = body[:int(hdrs["content-length"])]
        except ValueError:
            pass
    return status, hdrs, body


def unix_request(path, line, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode()
    finally:
        s.close()


class Sim:
    """One sgsim process serving one bus."""

    def __init__(self, workdir, name, devs, baud=115200, pace=False, extra=(),
                 devices_dir=DEVICES):
        self.link = os.path.join(workdir, name)
        self.ctl_path = os.path.join(workdir, name + ".sim.sock")
        args = [os.path.join(BUILD, "sgsim"), "--link", self.link, "--ctl", self.ctl_path,
                "--devices-dir", devices_dir, "--baud", str(baud), "--seed", "7"]
        if pace:
            args.append("--pace")
        args += list(extra)
        for d in devs:
            args += ["--dev", d]
        self.log = open(os.path.join(workdir, name + ".sim.log"), "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError("sgsim %s did not start: %r" % (name, line))

    def ctl(self, cmd):
        reply = json.loads(unix_request(self.ctl_path, cmd))
        if isinstance(reply, dict) and "error" in reply:
            raise AssertionError("sim %s: %s" % (cmd, reply["error"]))
        return reply

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.log.close()


class Sgd:
    """The daemon under test with its own state directory and socket."""

    def __init__(self, workdir, buses, wrapper=(), extra_conf="", name="sgd",
                 devices_dir=DEVICES):
        self.workdir = workdir
        self.state = os.path.join(workdir, "state")
        self.sock = os.path.join(workdir, name + ".sock")
        self.conf = os.path.join(workdir, name + ".conf")
        self.logpath = os.path.join(workdir, name + ".log")
        # HTTP and UDP discovery stay on loopback; discovery on a port of its
        # own so that tests (and a running demo) do not answer each other.
        self.discovery_port = free_port(socket.SOCK_DGRAM)
        self.http_port = None
        net = {"www_dir": WWW, "discovery_port": str(self.discovery_port),
               "http_bind": "127.0.0.1", "modbus_tcp_bind": "127.0.0.1"}
        given = {ln.split("=", 1)[0].strip() for ln in extra_conf.splitlines() if "=" in ln}
        with open(self.conf, "w") as f:
            f.write("serial_left_ir = %s\n" % buses.get("left", ""))
            f.write("serial_right_ir = %s\n" % buses.get("right", ""))
            f.write("serial_rs485 = %s\n" % buses.get("rs485", ""))
            f.write("state_dir = %s\nctl_socket = %s\ndevices_dir = %s\n"
                    % (self.state, self.sock, devices_dir))
            f.write("rs485_timeout_ms = 100\nir_timeout_ms = 150\n")
            for k, v in net.items():
                if k not in given:
                    f.write("%s = %s\n" % (k, v))
            f.write(extra_conf)
        self.wrapper = list(wrapper)
        self.proc = None

    def start(self, timeout=20):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen(self.wrapper + [os.path.join(BUILD, "sgd"), "-c", self.conf],
                                     stdout=self.log, stderr=self.log)
        wait_until(lambda: self.proc.poll() is not None or self._connects(), timeout,
                   "sgd control socket")
        if self.proc.poll() is not None:
            raise AssertionError("sgd exited with %d; log:\n%s" % (self.proc.returncode, self.logtext()))
        return self

    def _connects(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def ctl(self, *args, timeout=60):
        """Run sgctl --json; returns (exit code, data or None, stderr)."""
        p = subprocess.run([os.path.join(BUILD, "sgctl"), "--socket", self.sock, "--json"]
                           + list(args), capture_output=True, text=True, timeout=timeout)
        data = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else None
        return p.returncode, data, p.stderr.strip()

    def ok(self, *args, timeout=60):
        rc, data, err = self.ctl(*args, timeout=timeout)
        if rc != 0:
            raise AssertionError("sgctl %s failed (%d): %s" % (" ".join(args), rc, err))
        return data

    def http_on(self, port=None, timeout=10):
        """Move the HTTP server to port (default: a free one) with the
        http_port setting; return the port once it accepts connections."""
        port = port or free_port()
        self.ok("set", "http_port=%d" % port)
        wait_until(lambda: port_accepts(port), timeout, "HTTP on port %d" % port)
        self.http_port = port
        return port

    def http(self, method, path, body=None, headers=None, timeout=10, conn=None, raw=False,
             source=None):
        """http_request() against this daemon's HTTP port (see http_on)."""
        assert self.http_port, "call http_on() first"
        return http_request(self.http_port, method, path, body, headers, timeout, conn=conn,
                            raw=raw, source=source)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("sgd did not stop within %ds" % timeout)
        finally:
            self.log.close()
        return rc

    def logtext(self):
        with open(self.logpath) as f:
            return f.read()


class Demo:
    """Simulators for the demo layout and a daemon configured for them."""

    def __init__(self, workdir=None, wrapper=(), pace=False):
        self.workdir = workdir or tempfile.mkdtemp(prefix="sgd-test-")
        self.left = Sim(self.workdir, "left_ir", ["IE38:33"], baud=19200, pace=pace)
        self.right = Sim(self.workdir, "right_ir", ["Bicom:%d" % RIGHT_IR_BICOM_ADDR], baud=19200,
                         pace=pace)
        self.rs485 = Sim(self.workdir, "rs485", ["WM3M4C:1", "MC750:2", "Bicom:3", "IE14:4"],
                         pace=pace)
        self.sgd = Sgd(self.workdir, {"left": self.left.link, "right": self.right.link,
                                      "rs485": self.rs485.link}, wrapper=wrapper)

    def start(self, settings=()):
        self.sgd.start()
        self.sgd.ok("set", *(DEMO_SETTINGS + list(settings)))
        return self

    def wait_all_ok(self, timeout=20):
        def all_ok():
            devs = self.sgd.ok("devices")["devices"]
            return all(d["status"] == "ok" for d in devs if d["status"] != "disabled")
        wait_until(all_ok, timeout, "every demo device ok")

    def stop(self):
        rc = self.sgd.stop()
        for s in (self.left, self.right, self.rs485):
            s.stop()
        return rc


# ---- shared by the test suites ----

FAST = ["poll_meas_interval=1", "poll_counter_interval=1"]

# (HA index, simulator, Modbus address) of each demo meter
DEMO_METERS = [(0, "left", 33), (1, "rs485", 1), (2, "rs485", 2), (4, "rs485", 4)]

# simulator quantity -> key in a REST/ctl phase or total object
PHASE_KEY = {"U": "U", "I": "I", "P": "P", "Q": "Q", "S": "S", "PF": "PF", "PA": "PA",
             "THDU": "THDUp", "THDI": "THDI"}


def close(a, b, rel=1e-6):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def sim_of(demo, name):
    return {"left": demo.left, "right": demo.right, "rs485": demo.rs485}[name]


def settled(check, timeout=8):
    """Retry a comparison until it holds: a poll cycle may straddle the freeze."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ---- settings before the first start, Modbus framing (test_modbus, bench/modbus.py) ----

def seed_settings(state_dir, settings):
    """Write <state_dir>/settings.json as sgd saves it (version 1, CRC-32 of
    the compact key-sorted object), so that the daemon starts with these
    settings (the rest default) -- e.g. a free tcp_port from the start."""
    import zlib
    os.makedirs(state_dir, exist_ok=True)
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    doc = {"version": 1, "crc": "0x%08x" % (zlib.crc32(text.encode()) & 0xFFFFFFFF),
           "settings": settings}
    with open(os.path.join(state_dir, "settings.json"), "w") as f:
        json.dump(doc, f)


def crc16_modbus(data):
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), as an int."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit, pdu):
    """An RTU ADU: unit, PDU, CRC low byte first."""
    body = bytes([unit]) + bytes(pdu)
    crc = crc16_modbus(body)
    return body + bytes([crc & 0xFF, crc >> 8])


def mbap_frame(tid, unit, pdu, pid=0, length=None):
    """A Modbus TCP ADU; length overrides the MBAP length field (unit + PDU)."""
    n = len(pdu) + 1 if length is None else length
    return bytes([tid >> 8, tid & 0xFF, pid >> 8, pid & 0xFF, (n >> 8) & 0xFF, n & 0xFF,
                  unit]) + bytes(pdu)


def recv_exact(sock, n):
    """n bytes from sock; EOFError when the peer closes first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def mbap_recv(sock):
    """One Modbus TCP answer: (tid, pid, unit, pdu)."""
    hdr = recv_exact(sock, 7)
    n = (hdr[4] << 8) | hdr[5]
    if n < 2 or n > 254:
        raise AssertionError("answer with MBAP length %d: %s" % (n, hdr.hex()))
    return (hdr[0] << 8) | hdr[1], (hdr[2] << 8) | hdr[3], hdr[6], recv_exact(sock, n - 1)


def read_pdu(fc, addr, count):
    """Request PDU of a read (fc 1-4)."""
    return bytes([fc, addr >> 8, addr & 0xFF, count >> 8, count & 0xFF])


def pdu_regs(pdu):
    """Register values of a read answer PDU (fc 3/4); AssertionError on an
    exception or a byte count that does not match the PDU."""
    if pdu[0] & 0x80:
        raise AssertionError("exception 0x%02x to fc %d" % (pdu[1], pdu[0] & 0x7F))
    if len(pdu) < 2 or pdu[1] != len(pdu) - 2 or pdu[1] % 2:
        raise AssertionError("bad read answer %s" % pdu.hex())
    return [(pdu[2 + 2 * i] << 8) | pdu[3 + 2 * i] for i in range(pdu[1] // 2)]


# ---- a minimal runner: "N passed, N failed" closes the output ----

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def run(argv):
    only = argv[1:] if len(argv) > 1 else None
    seed = int(os.environ.get("SG_SEED", str(random.randrange(1 << 30))))
    print("random seed %d (set SG_SEED to repeat)" % seed)
    random.seed(seed)
    passed = failed = 0
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print("PASS %s (%.1fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
