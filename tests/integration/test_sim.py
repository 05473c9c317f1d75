#!/usr/bin/python3
"""sgsim on its own: the simulated wall clock (--clock-file), the meter's own
load profile it serves (tests/devices/simlp.json) and the `profile` and
`counter` commands. No daemon: the test plays the daemon, writing the clock
file and reading registers over the pty with a few lines of Modbus RTU.

Standard library only. Run from anywhere: /usr/bin/python3 tests/integration/test_sim.py
(SG_BUILD selects the build tree, default build). Prints "N passed, N failed"
last, like the integration suites.
"""
import glob
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import traceback
import tty

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import crc16_modbus  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("SG_BUILD", "build"))
SGSIM = os.path.join(BUILD, "sgsim")

# 2023-11-14 22:13:20 UTC: not on a quarter hour, so the first capture is the
# next one (22:15:00 = 1700000100).
T0_MS = 1700000000000
SIMLP, IE38 = 33, 34


class Clock:
    """The 8-byte clock file, written the way the daemon would: one store of
    a native int64 (pwrite of 8 bytes is what the test can do from Python)."""

    def __init__(self, path, ms):
        self.path = path
        with open(path, "wb") as f:
            f.write(struct.pack("=q", ms))
        self.fd = os.open(path, os.O_WRONLY)
        self.ms = ms

    def set(self, ms):
        os.pwrite(self.fd, struct.pack("=q", ms), 0)
        self.ms = ms

    def step(self, seconds):
        self.set(self.ms + int(seconds * 1000))

    def close(self):
        os.close(self.fd)


class Sim:
    def __init__(self, workdir, devs, clock=None, extra=()):
        self.devdir = os.path.join(workdir, "devices")
        if not os.path.isdir(self.devdir):
            os.mkdir(self.devdir)
            for p in glob.glob(os.path.join(ROOT, "etc", "devices", "*.json")):
                os.symlink(p, os.path.join(self.devdir, os.path.basename(p)))
            os.symlink(os.path.join(ROOT, "tests", "devices", "simlp.json"),
                       os.path.join(self.devdir, "simlp.json"))
        self.link = os.path.join(workdir, "bus")
        self.ctl_path = os.path.join(workdir, "sim.sock")
        args = [SGSIM, "--link", self.link, "--ctl", self.ctl_path, "--devices-dir",
                self.devdir, "--seed", "7"]
        if clock:
            args += ["--clock-file", clock]
        args += list(extra)
        for d in devs:
            args += ["--dev", d]
        self.log = open(os.path.join(workdir, "sim.log"), "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError("sgsim did not start: %r" % line)
        self.fd = None

    def raw(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.ctl_path)
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
            return json.loads(buf)
        finally:
            s.close()

    def ctl(self, cmd):
        r = self.raw(cmd)
        if isinstance(r, dict) and "error" in r:
            raise AssertionError("%s: %s" % (cmd, r["error"]))
        return r

    def error(self, cmd):
        r = self.raw(cmd)
        assert isinstance(r, dict) and "error" in r, "%s: expected an error, got %r" % (cmd, r)
        return r["error"]

    def read_input(self, addr, reg, count):
        """fc 4 over the pty; the registers or ('exception', code)."""
        if self.fd is None:
            self.fd = os.open(self.link, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self.fd)
            termios.tcflush(self.fd, termios.TCIOFLUSH)
        req = struct.pack(">BBHH", addr, 4, reg, count)
        req += struct.pack("<H", crc16_modbus(req))
        os.write(self.fd, req)
        buf = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            want = 5 if len(buf) >= 2 and buf[1] & 0x80 else (5 + buf[2] if len(buf) >= 3 else 3)
            if len(buf) >= want:
                break
            r, _, _ = select.select([self.fd], [], [], 0.5)
            if r:
                buf += os.read(self.fd, 512)
        assert crc16_modbus(buf[:-2]) == struct.unpack("<H", buf[-2:])[0], "bad CRC %r" % buf
        if buf[1] & 0x80:
            return ("exception", buf[2])
        return list(struct.unpack(">%dH" % (buf[2] // 2), buf[3:3 + buf[2]]))

    def stop(self):
        if self.fd is not None:
            os.close(self.fd)
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


def counter0(sim, addr):
    return sim.ctl("values %d" % addr)["counters"][0]["value"]


# ---- tests ----

def test_profile_empty_at_start(w):
    """A fresh meter has no history, with or without a clock file; reads of
    the count register and the ring work (they are defined)."""
    sim = Sim(w, ["SIMLP:%d" % SIMLP, "IE38:%d" % IE38])
    try:
        assert sim.ctl("profile %d" % SIMLP) == {"entries": []}
        assert sim.ctl("stats")["clock"] == "real"
        assert sim.read_input(SIMLP, 8999, 1) == [0]
        assert sim.read_input(SIMLP, 9000, 125) == [0] * 125
        assert sim.read_input(SIMLP, 11239 - 9, 10) == [0] * 10
        # past the ring nothing is defined
        assert sim.read_input(SIMLP, 11240, 10) == ("exception", 2)
        assert "no load profile" in sim.error("profile %d" % IE38)
    finally:
        sim.stop()


def entries_of(sim):
    return sim.ctl("profile %d" % SIMLP)["entries"]


def check_steps(entries, energy, tol=0.02):
    """Newest first, 900 s apart, ai growing by energy Wh per interval."""
    for a, b in zip(entries, entries[1:]):
        assert a["time"] - b["time"] == 900, (a, b)
        d = a["values"]["ai"] - b["values"]["ai"]
        assert abs(d - energy) <= tol, "ai step %.4f, expected %.2f" % (d, energy)
        assert a["values"]["ae"] == b["values"]["ae"], (a, b)  # the load never exports


def test_clock_file_profile(w):
    """Stepping the clock file 600 s at a time over 2 h with P pinned at
    1000 W: one capture per quarter hour, 250.00 Wh apart, served in the
    registers the description says."""
    clock = Clock(os.path.join(w, "clock"), T0_MS)
    sim = Sim(w, ["SIMLP:%d" % SIMLP, "IE38:%d" % IE38], clock=clock.path)
    try:
        st = sim.ctl("stats")
        assert st["clock"] == "file" and st["wall_ms"] == T0_MS, st
        sim.ctl("set %d P 0 1000" % SIMLP)
        c_start = counter0(sim, SIMLP)
        # time stands still while the file does (no 100 ms ticks integrate)
        time.sleep(0.35)
        assert counter0(sim, SIMLP) == c_start
        for _ in range(12):
            clock.step(600)
            sim.ctl("stats")  # any command catches up with the file
        assert sim.ctl("stats")["wall_ms"] == T0_MS + 7200 * 1000
        e = entries_of(sim)
        assert len(e) == 8, e
        assert e[0]["time"] == 1700006400 and e[-1]["time"] == 1700000100, e
        check_steps(e, 250.0)
        # the counter itself moved exactly 2 h × 1000 W (float32 served)
        c_end = counter0(sim, SIMLP)
        assert abs(c_end - c_start - 2000.0) < 1.0, (c_start, c_end)
        # newest entry = counter at 1700006400, 800 s before the wall
        assert abs(e[0]["values"]["ai"] - (c_end - 1000.0 * 800 / 3600)) < 1.0
        # the registers: count, then entry 0 = time (uint32) + ai … re (0.01 Wh)
        assert sim.read_input(SIMLP, 8999, 1) == [8]
        regs = sim.read_input(SIMLP, 9000, 10)
        assert (regs[0] << 16 | regs[1]) == 1700006400
        assert abs((regs[2] << 16 | regs[3]) * 0.01 - e[0]["values"]["ai"]) < 1e-6
        assert sim.read_input(SIMLP, 9080, 10) == [0] * 10  # entry 8: empty
        # a request syncs too: step 900 s and read the count over Modbus
        clock.step(900)
        assert sim.read_input(SIMLP, 8999, 1) == [9]
        check_steps(entries_of(sim), 250.0)
    finally:
        sim.stop()
        clock.close()


def test_clock_backwards_and_freeze(w):
    """A clock file going back is ignored; frozen, the wall moves but nothing
    else, and the quarter hours passed meanwhile are never captured."""
    clock = Clock(os.path.join(w, "clock"), T0_MS)
    sim = Sim(w, ["SIMLP:%d" % SIMLP], clock=clock.path)
    try:
        sim.ctl("set %d P 0 1000" % SIMLP)
        clock.step(1800)
        n = len(entries_of(sim))
        assert n == 2
        wall = sim.ctl("stats")["wall_ms"]
        c = counter0(sim, SIMLP)
        clock.set(wall - 600 * 1000)
        assert sim.ctl("stats")["wall_ms"] == wall
        assert counter0(sim, SIMLP) == c and len(entries_of(sim)) == n
        clock.set(wall)  # back where it was: still no time passed
        assert counter0(sim, SIMLP) == c
        sim.ctl("freeze 1")
        regs = sim.read_input(SIMLP, 8999, 21)
        clock.step(1800)
        st = sim.ctl("stats")
        assert st["wall_ms"] == wall + 1800 * 1000 and st["frozen"]
        assert sim.read_input(SIMLP, 8999, 21) == regs  # bit-identical
        assert counter0(sim, SIMLP) == c
        sim.ctl("freeze 0")
        clock.step(900)
        e = entries_of(sim)
        assert len(e) == n + 1, e
        # the two quarter hours passed while frozen are missing
        assert e[0]["time"] - e[1]["time"] == 2700, e
        assert abs(e[0]["values"]["ai"] - e[1]["values"]["ai"] - 250.0) <= 0.02
        log = open(os.path.join(w, "sim.log")).read()
        assert log.count("went back") == 1, log
    finally:
        sim.stop()
        clock.close()


def test_clock_set_and_big_step(w):
    """A clock file that starts at 0 leaves sgsim on real time; its first
    value sets the clock without integrating the jump; a step of 3 days fills
    the ring (224 entries) and no more; 0 again holds time."""
    clock = Clock(os.path.join(w, "clock"), 0)
    sim = Sim(w, ["SIMLP:%d" % SIMLP], clock=clock.path)
    try:
        assert sim.ctl("stats")["clock"] == "real"
        sim.ctl("set %d P 0 1000" % SIMLP)
        c = counter0(sim, SIMLP)
        clock.set(T0_MS + 365 * 86400 * 1000)
        st = sim.ctl("stats")
        assert st["clock"] == "file" and st["wall_ms"] == clock.ms
        assert counter0(sim, SIMLP) - c < 10  # a few 100 ms ticks at most, not a year
        assert entries_of(sim) == []
        clock.step(3 * 86400)
        e = entries_of(sim)
        assert len(e) == 224
        assert sim.read_input(SIMLP, 8999, 1) == [224]
        assert e[0]["time"] * 1000 == clock.ms // 900000 * 900000
        check_steps(e, 250.0)
        # 0 again (the daemon re-arming lock-step) holds time: no real-time
        # ticks integrate meanwhile
        wall, c = clock.ms, counter0(sim, SIMLP)
        clock.set(0)
        time.sleep(0.35)
        st = sim.ctl("stats")
        assert st["clock"] == "file" and st["wall_ms"] == wall, st
        assert counter0(sim, SIMLP) == c
        clock.set(wall + 900 * 1000)
        assert len(entries_of(sim)) == 224
        assert entries_of(sim)[0]["time"] == e[0]["time"] + 900
    finally:
        sim.stop()
        clock.close()


def test_counter_command(w):
    """`counter` sets a counter like a meter reset; the profile shows the
    drop; bad commands are refused."""
    clock = Clock(os.path.join(w, "clock"), T0_MS)
    sim = Sim(w, ["SIMLP:%d" % SIMLP, "WM3M4C:1", "Bicom:5"], clock=clock.path)
    try:
        sim.ctl("set %d P 0 1000" % SIMLP)
        clock.step(1800)
        sim.ctl("counter %d 0 0" % SIMLP)
        assert counter0(sim, SIMLP) == 0
        clock.step(900)  # wall 1700001800 → 1700002700: one capture, 1700001900
        e = entries_of(sim)
        assert len(e) == 3
        # interpolated between 0 at the reset and 250 Wh at the step's end
        assert e[0]["time"] == 1700001900
        assert abs(e[0]["values"]["ai"] - 250.0 * 100 / 900) <= 0.01, e[0]
        assert e[1]["values"]["ai"] > 1e6, e[1]
        assert abs(counter0(sim, SIMLP) - 250.0) < 0.01
        sim.ctl("counter %d 2 12345.5" % SIMLP)
        assert sim.ctl("values %d" % SIMLP)["counters"][2]["value"] == 12345.5
        # an integer counter with an exponent register takes a larger value
        sim.ctl("counter 1 0 3000000000")
        assert sim.ctl("values 1")["counters"][0]["value"] == 3000000000
        for cmd, frag in [("counter %d 20 1" % SIMLP, "no such counter"),
                          ("counter 1 2 1", "no such counter"),
                          ("counter 5 0 1", "no such counter"),
                          ("counter %d 0 -1" % SIMLP, "not representable"),
                          ("counter %d 0 1e40" % SIMLP, "not representable"),
                          ("counter %d 0 abc" % SIMLP, "usage"),
                          ("counter %d 24 1" % SIMLP, "usage"),
                          ("counter 99 0 1", "usage"),
                          ("counter %d 0" % SIMLP, "usage"),
                          ("profile", "usage"),
                          ("profile 99", "usage"),
                          ("profile %d x" % SIMLP, "usage"),
                          ("profile 1", "no load profile")]:
            err = sim.error(cmd)
            assert frag in err, (cmd, err)
    finally:
        sim.stop()
        clock.close()


def test_ranged_fault(w):
    """A fault limited to a register range hits only the requests touching
    it; the device serves the rest; `fault ADDR none` clears it."""
    sim = Sim(w, ["IE38:%d" % IE38])
    try:
        sim.ctl("fault %d exception 4 input 100 190" % IE38)
        assert sim.read_input(IE38, 105, 86) == ("exception", 4)
        assert sim.read_input(IE38, 190, 1) == ("exception", 4)
        assert sim.read_input(IE38, 90, 11) == ("exception", 4)  # 90…100 touches it
        assert len(sim.read_input(IE38, 2752, 8)) == 8
        assert len(sim.read_input(IE38, 1, 8)) == 8
        assert len(sim.read_input(IE38, 13, 1)) == 1
        st = sim.ctl("stats")["per_addr"][str(IE38)]
        assert st["exceptions"] == 3, st
        sim.ctl("fault %d none" % IE38)
        assert len(sim.read_input(IE38, 105, 86)) == 86
        # a whole-device fault still hits everything
        sim.ctl("fault %d exception 2" % IE38)
        assert sim.read_input(IE38, 2752, 8) == ("exception", 2)
        sim.ctl("fault %d none" % IE38)
        for cmd in ("fault %d exception 4 input 100" % IE38,
                    "fault %d exception 4 input 190 100" % IE38,
                    "fault %d exception 4 inputs 100 190" % IE38,
                    "fault %d none input 100 190" % IE38,
                    "fault %d exception 4 input 100 70000" % IE38):
            assert "usage" in sim.error(cmd), cmd
    finally:
        sim.stop()


def test_clock_file_usage(w):
    """A missing clock file or one of another size is a usage error (2)."""
    for content in (None, b"\0" * 4, b"\0" * 16):
        path = os.path.join(w, "clock")
        if os.path.exists(path):
            os.unlink(path)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
        p = subprocess.run([SGSIM, "--link", os.path.join(w, "bus"), "--clock-file", path,
                            "--dev", "IE38:33"], capture_output=True, text=True, timeout=10,
                           cwd=ROOT)
        assert p.returncode == 2, (content, p.returncode, p.stderr)
        assert "--clock-file" in p.stderr, p.stderr
        assert not os.path.lexists(os.path.join(w, "bus"))


TESTS = [test_profile_empty_at_start, test_clock_file_profile, test_clock_backwards_and_freeze,
         test_clock_set_and_big_step, test_counter_command, test_ranged_fault,
         test_clock_file_usage]


def main():
    passed = failed = 0
    for t in TESTS:
        w = tempfile.mkdtemp(prefix="sgsim_")
        try:
            t(w)
            passed += 1
            print("PASS %s" % t.__name__)
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__)
            traceback.print_exc(file=sys.stdout)
            for log in glob.glob(os.path.join(w, "*.log")):
                print("--- %s\n%s" % (log, open(log).read()[-3000:]))
        finally:
            shutil.rmtree(w, ignore_errors=True)
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
