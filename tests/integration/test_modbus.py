#!/usr/bin/env python3
"""Modbus TCP server, gateway, own unit and RS485 slave role (issue 5): real
sgd + sgsim on ptys, driven by clients that are not ours (Debian's mbpoll and
python3-pymodbus) and by raw sockets, compared with what the simulators serve.

Most tests share one daemon (the demo layout with the Right IR Bicom moved to
address 35 so that every device has an address of its own, Modbus TCP on a
free loopback port); the RS485 slave role gets a daemon of its own on a pty
pair this test holds the other end of.

Run one test: /usr/bin/python3 tests/integration/test_modbus.py test_exceptions
"""
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tty

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEMO_SETTINGS, DEVICES, FAST, ROOT, Sgd, Sim, close,  # noqa: E402
                     crc16_modbus, free_port, mbap_frame, mbap_recv, pdu_regs, port_accepts,
                     read_pdu, rtu_frame, run, seed_settings, settled, test, wait_until)

OWN = 34                 # sg_modbus_addr default
RIGHT_BICOM = 35         # right_ir_addr in this suite's board config
SERIAL = "SG4242AB"      # serial_number in this suite's board config
MODEL = "SG-E1"          # model_type
HOST = "127.0.0.1"
# unit -> (simulator name, model as served)
UNITS = {33: ("left", "IE38"), RIGHT_BICOM: ("right", "Bicom"), 1: ("rs485", "WM3M4C"),
         2: ("rs485", "MC750"), 3: ("rs485", "Bicom"), 4: ("rs485", "IE14")}
METERS = [u for u, (_, m) in UNITS.items() if m != "Bicom"]
ABSENT = 99              # no device has this address
# register cache freshness of every device: 0 (every read goes to the line), default
NO_CACHE = dict([("leftir_cache_ms", 0), ("ir_relay_cache_ms", 0)] +
                [("rs485_cache_ms_%d" % n, 0) for n in range(1, 5)])
DEFAULT_CACHE = {k: 1000 for k in NO_CACHE}


def sw_version_x100():
    with open(os.path.join(ROOT, "include", "sg", "version.h")) as f:
        return int(re.search(r"SGD_VERSION_X100\s+(\d+)", f.read()).group(1))


# ---- the own unit's settings registers (docs/modbus-map.md, generated) ----

def setting_reg(key):
    """(kind, first register) of a setting in the own unit's map: kind 'int32'
    (two registers, high word first) or 'string' (64 registers)."""
    path = os.path.join(ROOT, "docs", "modbus-map.md")
    with open(path) as f:
        for line in f:
            m = re.match(r"^\|\s*\d+\s*\|\s*`([a-z0-9_]+)`\s*\|\s*(int32|string)\s*\|\s*(\d+)",
                         line)
            if m and m.group(1) == key:
                return m.group(2), int(m.group(3))
    raise AssertionError("%s: no row for setting %s" % (path, key))


# ---- register text and number helpers ----

def text_regs(text, nregs):
    """A string as registers, 2 chars each, high byte first, NUL padded."""
    b = text.encode().ljust(2 * nregs, b"\0")[:2 * nregs]
    return [(b[2 * i] << 8) | b[2 * i + 1] for i in range(nregs)]


def regs_text(regs):
    b = b"".join(struct.pack(">H", r) for r in regs)
    return b.rstrip(b"\0 ").decode("latin-1")


def write_multi_pdu(addr, values):
    return bytes([16, addr >> 8, addr & 0xFF, len(values) >> 8, len(values) & 0xFF,
                  2 * len(values)]) + b"".join(struct.pack(">H", v) for v in values)


def write_single_pdu(addr, value):
    return bytes([6, addr >> 8, addr & 0xFF, value >> 8, value & 0xFF])


def decode_field(f, regs):
    """A description field's value from its registers, as sgsim's `values`
    decodes it (T7: the PF magnitude)."""
    t = f["type"]
    scale = f.get("scale", 1)
    if t == "uint16":
        return regs[0] * scale
    if t == "int16":
        return (regs[0] - 65536 if regs[0] & 0x8000 else regs[0]) * scale
    raw = (regs[0] << 16) | regs[1]
    if t == "uint32":
        return raw * scale
    if t == "int32":
        return (raw - (1 << 32) if raw & 0x80000000 else raw) * scale
    if t == "float32":
        return struct.unpack(">f", struct.pack(">I", raw))[0] * scale
    if t == "t7":
        return (raw & 0xFFFF) / 10000.0 * scale
    if t in ("t5", "t6"):
        exp = raw >> 24
        exp = exp - 256 if exp & 0x80 else exp
        mant = raw & 0xFFFFFF
        if t == "t6" and mant & 0x800000:
            mant -= 1 << 24
        v = mant * scale
        return v * 10 ** exp if exp >= 0 else v / 10 ** (-exp)
    raise AssertionError("type %s" % t)


def words(f):
    return 1 if f["type"] in ("uint16", "int16") else 2


def description_of(model):
    """The description file serving model (longest match prefix)."""
    best, blen = None, -1
    for fn in sorted(os.listdir(DEVICES)):
        if not fn.endswith(".json"):
            continue
        with open(os.path.join(DEVICES, fn)) as f:
            d = json.load(f)
        for p in d.get("match", []):
            if model.startswith(p) and len(p) > blen:
                best, blen = d, len(p)
    assert best, model
    return best


def read_plan(fields):
    """Group fields (one space) into reads of at most 125 registers."""
    fields = sorted(fields, key=lambda f: f["reg"])
    plan = []
    for f in fields:
        end = f["reg"] + words(f)
        if plan and end - plan[-1][0] <= 125:
            plan[-1][1] = max(plan[-1][1], end)
        else:
            plan.append([f["reg"], end])
    return [(a, b - a) for a, b in plan]


# ---- a raw Modbus TCP client ----

class Client:
    """One connection; call() sends one request and returns the answer PDU
    after checking the MBAP header echoes tid and unit."""
    _tid = 0x1000
    _lock = threading.Lock()

    def __init__(self, port, timeout=10, source=None):
        self.s = socket.create_connection((HOST, port), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def next_tid(cls):
        with cls._lock:
            cls._tid = (cls._tid + 7) & 0xFFFF
            return cls._tid

    def call(self, unit, pdu, tid=None):
        tid = self.next_tid() if tid is None else tid
        self.s.sendall(mbap_frame(tid, unit, pdu))
        rtid, pid, runit, rpdu = mbap_recv(self.s)
        assert (rtid, pid, runit) == (tid, 0, unit), \
            "answer header tid %d pid %d unit %d to tid %d unit %d" % (rtid, pid, runit, tid, unit)
        assert rpdu and rpdu[0] & 0x7F == pdu[0], "answer fc %r to fc %d" % (rpdu[:1], pdu[0])
        return rpdu

    def read(self, unit, fc, addr, count):
        rpdu = self.call(unit, read_pdu(fc, addr, count))
        try:
            regs = pdu_regs(rpdu)
        except AssertionError as e:
            raise AssertionError("unit %d fc %d %d+%d: %s" % (unit, fc, addr, count, e))
        assert len(regs) == count, (unit, fc, addr, count, rpdu.hex())
        return regs

    def exception(self, unit, pdu):
        rpdu = self.call(unit, pdu)
        assert len(rpdu) == 2 and rpdu[0] == pdu[0] | 0x80, \
            "unit %d request %s: expected an exception, got %s" % (unit, pdu.hex(), rpdu.hex())
        return rpdu[1]

    def close(self):
        self.s.close()


def closed_by_peer(s, timeout):
    """True when the server closes s (EOF or reset) within timeout; any data
    it sends first is read and ignored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            if not s.recv(4096):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


# ---- the shared daemon ----

class Rig:
    """The demo layout (Right IR Bicom at 35), Modbus TCP on a free loopback
    port from the first start (settings.json seeded), HTTP on another."""

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="sgd-test-modbus-")
        self.left = Sim(self.workdir, "left_ir", ["IE38:33"], baud=19200)
        self.right = Sim(self.workdir, "right_ir", ["Bicom:%d" % RIGHT_BICOM], baud=19200)
        self.rs485 = Sim(self.workdir, "rs485", ["WM3M4C:1", "MC750:2", "Bicom:3", "IE14:4"])
        self.sims = {"left": self.left, "right": self.right, "rs485": self.rs485}
        self.port = free_port()
        self.http_port = free_port()
        extra = ("modbus_tcp_bind = 127.0.0.1\nright_ir_addr = %d\nserial_number = %s\n"
                 "model_type = %s\n" % (RIGHT_BICOM, SERIAL, MODEL))
        self.sgd = Sgd(self.workdir, {"left": self.left.link, "right": self.right.link,
                                      "rs485": self.rs485.link}, extra_conf=extra)
        settings = {"tcp_port": self.port, "http_port": self.http_port}
        for kv in DEMO_SETTINGS + FAST:
            k, v = kv.split("=", 1)
            settings[k] = int(v)
        seed_settings(self.sgd.state, settings)
        try:
            self.sgd.start()
            self.sgd.http_port = self.http_port
            wait_until(lambda: port_accepts(self.port), 10, "Modbus TCP on port %d" % self.port)
            wait_until(lambda: port_accepts(self.http_port), 10, "HTTP")
            self.wait_all_ok()
        except Exception:
            self.stop()
            raise

    def wait_all_ok(self, timeout=20):
        def all_ok():
            devs = self.sgd.ok("devices")["devices"]
            return all(d["status"] == "ok" for d in devs if d["status"] != "disabled")
        wait_until(all_ok, timeout, "every device ok")

    def client(self, timeout=10, source=None):
        return Client(self.port, timeout, source)

    def sim(self, unit):
        return self.sims[UNITS[unit][0]]

    def modbus_status(self):
        st, _, data = self.sgd.http("GET", "/api")
        assert st == 200, (st, data)
        assert isinstance(data.get("modbus"), dict), "GET /api has no modbus object: %r" % data
        return data["modbus"]

    def settings(self):
        st, _, data = self.sgd.http("GET", "/api/settings")
        assert st == 200, (st, data)
        return data.get("settings", data)

    def post_settings(self, obj):
        st, _, data = self.sgd.http("POST", "/api/settings", obj)
        assert st == 200, "POST /api/settings %r: %r %r" % (obj, st, data)
        # sgd applies Modbus settings from its loop just after answering: a
        # request sent at once may still see the old ones (a sub-ms window)
        time.sleep(0.05)

    def alive(self):
        assert self.sgd.proc.poll() is None, "sgd exited with %r; log tail:\n%s" % (
            self.sgd.proc.returncode, self.sgd.logtext()[-3000:])
        st, _, _ = self.sgd.http("GET", "/api")
        assert st == 200

    def stop(self):
        try:
            return self.sgd.stop()
        finally:
            for s in self.sims.values():
                s.stop()


_rig = None


def rig():
    """The shared daemon, (re)started when needed (a crash in one test does
    not fail the others)."""
    global _rig
    if _rig is not None and _rig.sgd.proc.poll() is not None:
        print("  (sgd of the shared rig had exited with %r; starting a new one)"
              % _rig.sgd.proc.returncode)
        try:
            _rig.stop()
        except Exception:
            pass
        _rig = None
    if _rig is None:
        _rig = Rig()
    return _rig


def mbpoll(args, timeout=20):
    """Run mbpoll once; the register values it printed, by reference."""
    exe = shutil.which("mbpoll")
    assert exe, "mbpoll is not installed (Debian package mbpoll: tools/install-deps)"
    p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=timeout)
    vals = {int(m.group(1)): int(m.group(2)) & 0xFFFF
            for m in re.finditer(r"^\[(\d+)\]:\s+(-?\d+)\s*$", p.stdout, re.M)}
    assert p.returncode == 0 and vals, "mbpoll %s: exit %d\n%s\n%s" % (
        " ".join(args), p.returncode, p.stdout[-800:], p.stderr[-800:])
    return vals


def mbpoll_tcp(port, unit, table, ref, count):
    """mbpoll -m tcp reading count registers of table (3 input, 4 holding) at
    PDU address ref (-0): the list of values."""
    vals = mbpoll(["-m", "tcp", "-p", str(port), "-a", str(unit), "-t", str(table), "-r",
                   str(ref), "-c", str(count), "-0", "-1", "-o", "3", HOST])
    assert sorted(vals) == list(range(ref, ref + count)), (unit, ref, count, vals)
    return [vals[r] for r in range(ref, ref + count)]


def check_ident(regs, model, serial, sw):
    """Input registers 1-13 against model, serial, SW version."""
    assert regs_text(regs[0:8]) == model, "model %r, expected %r" % (regs_text(regs[0:8]), model)
    assert regs_text(regs[8:12]) == serial, "serial %r, expected %r" % (regs_text(regs[8:12]),
                                                                       serial)
    assert regs[12] == sw, "SW version %d, expected %d" % (regs[12], sw)


def iskra_text(regs):
    """Registers as text the way Home Assistant's Iskra library (pyiskra
    0.1.29, Modbus adapter) reads model and serial: every byte a character,
    then str.strip(), which strips spaces but keeps NULs."""
    return "".join(chr(v >> 8) + chr(v & 0xFF) for v in regs).strip()


def check_iskra_ident(c, unit, model, serial, desc):
    """pyiskra's set-up reads: input 1-14 (model, serial, SW, HW) and holding
    101-140 (description, location; taken as they are, not stripped)."""
    rr = c.read_input_registers(1, 14, slave=unit)
    assert not rr.isError(), (unit, rr)
    got = (iskra_text(rr.registers[0:8]), iskra_text(rr.registers[8:12]))
    assert got == (model, serial), "unit %d: pyiskra reads model/serial %r, expected %r" % (
        unit, got, (model, serial))
    rr = c.read_holding_registers(101, 40, slave=unit)
    assert not rr.isError(), (unit, rr)
    raw = "".join(chr(v >> 8) + chr(v & 0xFF) for v in rr.registers[0:20])
    assert raw == desc.ljust(40), "unit %d: description %r is not space padded" % (unit, raw)


def check_impact_setup(c, unit, model):
    """The registers pyiskra 0.1.29 reads from an Impact (IE) meter at set-up
    (get_used_current_and_voltage, check_time_blocks_support): holding
    148-149 (fc 3) and input 15-18 (fc 4) for the nominal power, input 6761
    (fc 4) for the number of time blocks. They must answer (a real meter
    does; an exception fails HA's set-up) with what the description says."""
    consts = {(k.get("space", "input"), k["reg"]): k["value"]
              for k in description_of(model).get("constants", [])}
    hr = c.read_holding_registers(148, 2, slave=unit)
    assert not hr.isError(), "unit %d (%s): holding 148-149: exception %r" % (
        unit, model, getattr(hr, "exception_code", hr))
    ir = c.read_input_registers(15, 4, slave=unit)
    assert not ir.isError(), "unit %d (%s): input 15-18: exception %r" % (
        unit, model, getattr(ir, "exception_code", ir))
    tb = c.read_input_registers(6761, 1, slave=unit)
    assert not tb.isError(), "unit %d (%s): input 6761: exception %r" % (
        unit, model, getattr(tb, "exception_code", tb))
    assert hr.registers == [consts[("holding", 148)], consts[("holding", 149)]], hr.registers
    assert ir.registers == [consts[("input", r)] for r in range(15, 19)], ir.registers
    assert tb.registers == [consts[("input", 6761)]], tb.registers
    # pyiskra's arithmetic: plausible, non-zero nominal power; no time blocks
    current = hr.registers[0] / 10000 * ir.registers[2] / 100
    voltage = hr.registers[1] / 10000 * ir.registers[0] / 100
    nominal = 3 * voltage * current
    assert 100 <= voltage <= 500 and 0 < current <= 100, (voltage, current)
    assert tb.registers[0] != 5  # 5 would make it read time-block tables we do not serve
    return nominal


def freeze(r):
    """Freeze the meter simulators; wait until sgd polled every meter since."""
    for s in r.sims.values():
        s.ctl("freeze 1")
    frozen = time.time() * 1000 + 50
    time.sleep(0.05)
    for index in (0, 1, 2, 4):
        def fresh(index=index):
            m = r.sgd.ok("measurements", str(index))
            return time.time() * 1000 - m["age_ms"] > frozen
        wait_until(fresh, 10, "fresh reading of device %d" % index)


def unfreeze(r):
    for s in r.sims.values():
        s.ctl("freeze 0")


# ---- 1. clients that are not ours ----

@test
def test_foreign_clients():
    """mbpoll and pymodbus read the own unit's identification, and through
    the gateway every device's identification and measurements."""
    r = rig()
    sw = sw_version_x100()
    # mbpoll: the own unit, by its address and by 255
    for unit in (OWN, 255):
        check_ident(mbpoll_tcp(r.port, unit, 3, 1, 13), MODEL, SERIAL, sw)
    desc = r.settings()["description"]
    assert regs_text(mbpoll_tcp(r.port, OWN, 4, 101, 20)) == desc
    # mbpoll: every device's identification through the gateway
    for unit in UNITS:
        served = r.sim(unit).ctl("values %d" % unit)
        check_ident(mbpoll_tcp(r.port, unit, 3, 1, 13), served["model"], served["serial"],
                    served["sw_version"])
        assert regs_text(mbpoll_tcp(r.port, unit, 4, 101, 20)) == served["description"]

    # pymodbus 3.0: identification and every measurement of the meters
    import logging
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    from pymodbus.client import ModbusTcpClient
    c = ModbusTcpClient(HOST, port=r.port, timeout=5)
    assert c.connect(), "pymodbus could not connect"
    try:
        rr = c.read_input_registers(1, 13, slave=OWN)
        assert not rr.isError(), rr
        check_ident(rr.registers, MODEL, SERIAL, sw)
        for unit in UNITS:
            served = r.sim(unit).ctl("values %d" % unit)
            rr = c.read_input_registers(1, 13, slave=unit)
            assert not rr.isError(), (unit, rr)
            check_ident(rr.registers, served["model"], served["serial"], served["sw_version"])
        # Home Assistant's Iskra library: identification strings space padded
        # (it strips spaces only), and the Impact set-up registers
        check_iskra_ident(c, OWN, MODEL, SERIAL, desc)
        for unit in UNITS:
            served = r.sim(unit).ctl("values %d" % unit)
            check_iskra_ident(c, unit, served["model"], served["serial"],
                              served["description"])
        for unit, (_, model) in UNITS.items():
            if model.startswith("IE"):
                print("  %s at %d: nominal power %.0f W as pyiskra computes it" % (
                    model, unit, check_impact_setup(c, unit, model)))
        freeze(r)
        n = 0
        for unit in METERS:
            desc_file = description_of(UNITS[unit][1])
            fields = desc_file["measurements"]
            assert all(f.get("space", "input") == "input" for f in fields), unit

            def compare(unit=unit, fields=fields):
                served = r.sim(unit).ctl("values %d" % unit)
                want = {(m["qty"], m["phase"]): m["value"] for m in served["measurements"]}
                regs = {}
                for start, count in read_plan(fields):
                    rr = c.read_input_registers(start, count, slave=unit)
                    assert not rr.isError(), (unit, start, count, rr)
                    assert len(rr.registers) == count
                    regs.update({start + i: v for i, v in enumerate(rr.registers)})
                k = 0
                for f in fields:
                    key = (f["qty"], f.get("phase", 0))
                    got = decode_field(f, [regs[f["reg"] + i] for i in range(words(f))])
                    assert key in want, (unit, key)
                    assert close(got, want[key]), "unit %d %s/%d: Modbus %r, simulator %r" % (
                        unit, key[0], key[1], got, want[key])
                    k += 1
                return k
            n += settled(compare)
        print("  %d measurements compared through pymodbus" % n)
        assert n >= 34 + 34 + 34 + 16, n
    finally:
        c.close()
        unfreeze(r)
    r.alive()


# ---- 2. exceptions ----

@test
def test_exceptions():
    r = rig()
    r.post_settings(NO_CACHE)  # reads go to the line, whatever was read before
    c = r.client()
    before = r.modbus_status()
    try:
        # no device with that address: 0x0A
        assert c.exception(ABSENT, read_pdu(4, 1, 13)) == 0x0A
        assert c.exception(ABSENT, write_single_pdu(101, 0x4142)) == 0x0A
        # a slot that is not enabled: 0x0A too
        r.post_settings({"rs485_type_2": 0})
        try:
            assert c.exception(2, read_pdu(4, 1, 13)) == 0x0A
        finally:
            r.post_settings({"rs485_type_2": 4})
        # the IR lines follow their settings: the Left IR meter at ir_counter_addr
        # while left_ir_enabled, the Right IR Bicom while ir_ext_rel_mode != 0
        r.post_settings({"ir_counter_addr": 36})
        try:
            assert c.exception(33, read_pdu(4, 1, 13)) == 0x0A
            assert c.exception(36, read_pdu(4, 1, 13)) == 0x0B  # the IE38 answers at 33
        finally:
            r.post_settings({"ir_counter_addr": 33})
        r.post_settings({"left_ir_enabled": 0, "ir_ext_rel_mode": 0})
        try:
            assert c.exception(33, read_pdu(4, 1, 13)) == 0x0A
            assert c.exception(RIGHT_BICOM, read_pdu(4, 1, 13)) == 0x0A
        finally:
            r.post_settings({"left_ir_enabled": 1, "ir_ext_rel_mode": 1})
        assert regs_text(c.read(RIGHT_BICOM, 4, 1, 8)) == "Bicom"
        # a silenced device and an absent one: 0x0B
        r.rs485.ctl("fault 4 noanswer")
        try:
            assert c.exception(4, read_pdu(3, 125, 5)) == 0x0B
        finally:
            r.rs485.ctl("fault 4 none")
        r.rs485.ctl("present 3 0")
        try:
            assert c.exception(3, read_pdu(3, 126, 3)) == 0x0B
        finally:
            r.rs485.ctl("present 3 1")
        # the connection is still good
        assert c.read(4, 4, 13, 1) == [123]
        # illegal function: diagnostics (8), encapsulated interface (43), 7, 17
        for unit in (1, 33, OWN):
            for pdu in (bytes([8, 0, 0, 0x12, 0x34]), bytes([0x2B, 0x0E, 1, 0]),
                        bytes([7]), bytes([17])):
                code = c.exception(unit, pdu)
                assert code == 1, "unit %d fc %d: exception %d, expected 1" % (unit, pdu[0], code)
        # the device's own exceptions are relayed: unmapped registers -> 02;
        # functions 1, 2, 5, 15 are forwarded (the simulated meters have no
        # coils or discrete inputs: 02 from the device)
        for unit in (1, 2, 33):
            assert c.exception(unit, read_pdu(4, 60000, 2)) == 2
            assert c.exception(unit, read_pdu(3, 60000, 2)) == 2
        for pdu in (read_pdu(1, 0, 8), read_pdu(2, 0, 8), bytes([5, 0, 0, 0xFF, 0]),
                    bytes([15, 0, 0, 0, 8, 1, 0xFF])):
            code = c.exception(1, pdu)
            assert code == 2, "unit 1 fc %d: exception %d, expected 2" % (pdu[0], code)
        # malformed PDUs are refused by the gateway itself -> 03
        for unit in (1, OWN):
            for pdu in (bytes([3, 0]), read_pdu(3, 101, 0), read_pdu(4, 1, 126),
                        bytes([16, 0, 101, 0, 2, 3, 0, 1, 0]),           # byte count 3 for 2
                        bytes([16, 0, 101, 0, 124, 246]) + bytes(246),  # 124 registers
                        bytes([5, 0, 0, 0x12, 0x34])):                 # coil value
                code = c.exception(unit, pdu)
                want = 1 if unit == OWN and pdu[0] == 5 else 3
                assert code == want, "unit %d %s: exception %d, expected %d" % (
                    unit, pdu[:8].hex(), code, want)
        # a value the simulator refuses (Bicom relay: only 0/1) -> 03
        assert c.exception(3, write_single_pdu(200, 7)) == 3
        # own unit: functions outside its map (coils) -> 01
        for pdu in (read_pdu(1, 0, 8), read_pdu(2, 0, 8), bytes([5, 0, 0, 0xFF, 0])):
            code = c.exception(OWN, pdu)
            assert code == 1, "own unit fc %d: exception %d, expected 1" % (pdu[0], code)
        # own unit: bad addresses -> 02 (half of an int32 setting too)
        kind, reg = setting_reg("tcp_port")
        for pdu in (read_pdu(4, 60000, 1), read_pdu(3, 60000, 1), write_single_pdu(60000, 1),
                    write_single_pdu(reg + 1, 1234)):
            code = c.exception(OWN, pdu)
            assert code == 2, "own unit %s: exception %d, expected 2" % (pdu.hex(), code)
        # own unit: bad quantities -> 03
        for pdu in (read_pdu(4, 1, 0), read_pdu(3, 101, 126)):
            code = c.exception(OWN, pdu)
            assert code == 3, "own unit %s: exception %d, expected 3" % (pdu.hex(), code)
        # own unit: tcp_port 0 -> 03 and nothing changes
        kind, reg = setting_reg("tcp_port")
        assert kind == "int32", kind
        crc = r.sgd.ok("status").get("settings_crc")
        assert c.read(OWN, 3, reg, 2) == [r.port >> 16, r.port & 0xFFFF]
        code = c.exception(OWN, write_multi_pdu(reg, [0, 0]))
        assert code == 3, "tcp_port 0: exception %d, expected 3" % code
        code = c.exception(OWN, write_multi_pdu(reg, [1, 0]))  # 65536
        assert code == 3, "tcp_port 65536: exception %d, expected 3" % code
        assert r.settings()["tcp_port"] == r.port
        assert r.sgd.ok("status").get("settings_crc") == crc
        assert c.read(OWN, 3, reg, 2) == [r.port >> 16, r.port & 0xFFFF]
        # all or nothing: a good description with a bad tcp_port in one fc 16
        # is impossible (not contiguous); a bad string (too long) is refused
        kind, dreg = setting_reg("description")
        assert kind == "string", kind
        old = r.settings()["description"]
        code = c.exception(OWN, write_multi_pdu(dreg, text_regs("X" * 60, 30)))
        assert code == 3, "description of 60 chars: exception %d, expected 3" % code
        assert r.settings()["description"] == old
    finally:
        c.close()
        r.post_settings(DEFAULT_CACHE)
    after = r.modbus_status()
    assert after["exceptions"] > before["exceptions"], (before, after)
    r.wait_all_ok()
    r.alive()


@test
def test_late_reply_not_mixed():
    """A device that answers after the gateway gave up (0x0B): its late reply
    must not be relayed as the answer to a later request, and must not make
    another device's request fail."""
    r = rig()
    r.post_settings({"rs485_cache_ms_4": 0, "rs485_cache_ms_1": 0})
    c = r.client()
    ident4, ident1 = c.read(4, 4, 1, 13), c.read(1, 4, 1, 13)
    freq_field = {"reg": 105, "type": "t5"}
    problems = []
    try:
        for trial in range(3):
            # rs485_timeout_ms is 100: the reply comes 50 ms after the gateway
            # gave up, in the middle of the one-timeout window in which the
            # line drops late replies (a reply later than that cannot be told
            # apart), so a 50 ms stall of either process on a loaded machine
            # neither makes it an answer nor pushes it past the window
            r.rs485.ctl("fault 4 slow 150")
            try:
                assert c.exception(4, read_pdu(4, 1, 13)) == 0x0B
            finally:
                r.rs485.ctl("fault 4 none")
            # the same function and size, other registers (frequency first)
            for i in range(4):
                pdu = c.call(4, read_pdu(4, 105, 13))
                if pdu[0] & 0x80:
                    continue  # the line may still be busy with the late reply: 0x0B
                regs = pdu_regs(pdu)
                if regs == ident4 or not 45 < decode_field(freq_field, regs[:2]) < 55:
                    problems.append("trial %d: read %d of unit 4 input 105+13 answered %s%s"
                                    % (trial, i, pdu.hex(), " = input 1+13, the late reply"
                                       if regs == ident4 else ""))
            # a healthy device is not disturbed
            for i in range(3):
                pdu = c.call(1, read_pdu(4, 1, 13))
                if pdu[0] & 0x80 or pdu_regs(pdu) != ident1:
                    problems.append("trial %d: healthy unit 1 input 1+13 answered %s"
                                    % (trial, pdu.hex()))
            time.sleep(0.5)
    finally:
        # leave a quiet, re-synchronised line to the next test
        time.sleep(0.5)
        for _ in range(6):
            try:
                c.call(4, read_pdu(4, 1, 13))
            except Exception:
                break
        c.close()
        r.post_settings({"rs485_cache_ms_4": 1000, "rs485_cache_ms_1": 1000})
    assert not problems, "after a late reply:\n  " + "\n  ".join(problems)
    r.wait_all_ok()
    r.alive()


# ---- 3. malformed MBAP ----

class Steady(threading.Thread):
    """A well-behaved client reading the own unit and a device in a loop."""

    def __init__(self, r):
        super().__init__(daemon=True)
        self.r, self.stop, self.n, self.errors = r, threading.Event(), 0, []

    def run(self):
        try:
            c = self.r.client()
            own = c.read(OWN, 4, 1, 13)
            dev = c.read(1, 4, 1, 13)
            while not self.stop.is_set():
                assert c.read(OWN, 4, 1, 13) == own
                assert c.read(1, 4, 1, 13) == dev
                self.n += 2
            c.close()
        except Exception as e:
            self.errors.append(repr(e))


@test
def test_malformed_mbap():
    r = rig()
    steady = Steady(r)
    steady.start()
    before = r.modbus_status()["dropped"]
    good = read_pdu(4, 1, 13)
    try:
        # an incomplete frame left idle: closed after a while (checked last)
        idle = socket.create_connection((HOST, r.port), timeout=5)
        idle.sendall(mbap_frame(1, OWN, good)[:9])
        t_idle = time.monotonic()
        bad = [
            ("protocol id 1", mbap_frame(1, OWN, good, pid=1)),
            ("protocol id 0xffff", mbap_frame(2, OWN, good, pid=0xFFFF)),
            ("length 0", mbap_frame(3, OWN, b"", length=0)),
            ("length 1", mbap_frame(4, OWN, b"", length=1)),
            ("length 255", mbap_frame(5, OWN, good, length=255) + bytes(300)),
            ("length 261", mbap_frame(6, OWN, good, length=261) + bytes(300)),
            ("length 0xffff", mbap_frame(7, OWN, good, length=0xFFFF) + bytes(300)),
            ("HTTP request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            ("garbage", bytes([0xde, 0xad, 0xbe, 0xef, 0x55, 0xaa, 0x01]) + os.urandom(40)),
            ("good then bad", mbap_frame(8, OWN, good) + mbap_frame(9, OWN, good, pid=7)),
        ]
        for what, data in bad:
            s = socket.create_connection((HOST, r.port), timeout=5)
            try:
                s.sendall(data)
                assert closed_by_peer(s, 5), "%s: connection not closed" % what
            finally:
                s.close()
        # truncated frames just wait: a header in pieces, then the rest
        s = socket.create_connection((HOST, r.port), timeout=5)
        try:
            frame = mbap_frame(0x4321, OWN, good)
            for piece in (frame[:3], frame[3:7], frame[7:9]):
                s.sendall(piece)
                assert not closed_by_peer(s, 0.3), "truncated frame: closed early"
            s.sendall(frame[9:])
            tid, pid, unit, pdu = mbap_recv(s)
            assert (tid, pid, unit) == (0x4321, 0, OWN), (tid, pid, unit)
            check_ident(pdu_regs(pdu), MODEL, SERIAL, sw_version_x100())
        finally:
            s.close()
        # the idle incomplete frame is closed in the end
        assert closed_by_peer(idle, 20), "an incomplete frame was kept open for %.0fs" % (
            time.monotonic() - t_idle)
        print("  incomplete frame closed after %.1fs" % (time.monotonic() - t_idle))
        idle.close()
    finally:
        steady.stop.set()
        steady.join(10)
    assert not steady.errors, "well-behaved client: %s" % steady.errors
    assert steady.n > 10, steady.n
    print("  well-behaved client: %d answers meanwhile" % steady.n)
    dropped = r.modbus_status()["dropped"] - before
    assert dropped >= len(bad), "dropped counter rose by %d for %d bad clients" % (dropped,
                                                                                  len(bad))
    r.alive()


# ---- 4. slow-loris and 50 concurrent clients ----

def snapshot(r):
    """What each unit answers for input 1-13 and holding 101-140 right now."""
    c = r.client()
    try:
        snap = {}
        for unit in [OWN] + list(UNITS):
            snap[(unit, 4, 1)] = c.read(unit, 4, 1, 13)
            snap[(unit, 3, 101)] = c.read(unit, 3, 101, 40)
        return snap
    finally:
        c.close()


@test
def test_slowloris_and_50_clients():
    r = rig()
    r.post_settings(NO_CACHE)  # every device read is a bus transaction
    try:
        slowloris_and_50_clients(r)
    finally:
        r.post_settings(DEFAULT_CACHE)
    r.alive()


def slowloris_and_50_clients(r):
    import random
    snap = snapshot(r)
    errors = []
    loris_done = {}

    def loris(k):
        try:
            s = socket.create_connection((HOST, r.port), timeout=10)
            for j in range(2):
                tid = 0xA000 + 16 * k + j
                for b in mbap_frame(tid, OWN, read_pdu(4, 1, 13)):
                    s.sendall(bytes([b]))
                    time.sleep(0.1)
                rtid, _, unit, pdu = mbap_recv(s)
                assert (rtid, unit) == (tid, OWN), (rtid, unit, tid)
                assert pdu_regs(pdu) == snap[(OWN, 4, 1)]
            s.close()
            loris_done[k] = time.monotonic()
        except Exception as e:
            errors.append("loris %d: %r" % (k, e))

    def client(k, rng, n):
        try:
            # over four source addresses: one address holds at most 32 connections
            c = r.client(timeout=20, source="127.0.0.%d" % (2 + k % 4))
            for i in range(n):
                unit = rng.choice([OWN] + list(UNITS))
                fc, base, size = rng.choice([(4, 1, 13), (3, 101, 40)])
                start = rng.randrange(size)
                count = rng.randrange(1, size - start + 1)
                tid = (k << 8) | i
                pdu = c.call(unit, read_pdu(fc, base + start, count), tid=tid)
                assert pdu[0] == fc and pdu[1] == 2 * count, \
                    "client %d tid %d: %s" % (k, tid, pdu.hex())
                want = snap[(unit, fc, base)][start:start + count]
                assert pdu_regs(pdu) == want, \
                    "client %d tid %d unit %d fc %d %d+%d: %r, expected %r" % (
                        k, tid, unit, fc, base + start, count, pdu_regs(pdu), want)
            c.close()
        except Exception as e:
            errors.append("client %d: %r" % (k, e))

    lorises = [threading.Thread(target=loris, args=(k,), daemon=True) for k in range(4)]
    for t in lorises:
        t.start()
    time.sleep(0.35)  # every loris is inside a frame now
    # the own unit answers at once while the slow senders are mid-frame
    t0 = time.monotonic()
    c = r.client()
    for _ in range(20):
        assert c.read(OWN, 4, 1, 13) == snap[(OWN, 4, 1)]
    c.close()
    quick = time.monotonic() - t0
    seed = random.randrange(1 << 30)
    clients = [threading.Thread(target=client, args=(k, random.Random(seed + k), 12), daemon=True)
               for k in range(50)]
    t1 = time.monotonic()
    for t in clients:
        t.start()
    for t in clients:
        t.join(60)
    t_clients = time.monotonic() - t1
    for t in lorises:
        t.join(30)
    assert not errors, "\n".join(errors[:10])
    assert len(loris_done) == len(lorises)
    print("  20 own-unit reads beside 4 slow-loris senders: %.2fs; 50 clients x 12 reads: %.2fs"
          % (quick, t_clients))
    # the slow senders were still mid-frame when the quick reads were done
    assert t0 + quick < min(loris_done.values()), "own-unit reads waited for the slow senders"
    # every connection of this test is gone from the server's list
    wait_until(lambda: r.modbus_status()["clients"] == 0, 10, "no Modbus clients left")


def idle_sockets(port, source, n):
    """n connections from source that never send anything."""
    return [socket.create_connection((HOST, port), timeout=10, source_address=(source, 0))
            for _ in range(n)]


@test
def test_client_limits():
    """Idle sockets lock nobody out: at the per-address cap (32) and at the
    global limit (128) the connection silent the longest is closed and the
    new client is served."""
    r = rig()
    socks = []
    try:
        base = r.modbus_status().get("evicted", 0)
        # 128 idle connections from one address: its oldest 96 are closed
        socks += idle_sockets(r.port, "127.0.0.1", 128)
        wait_until(lambda: r.modbus_status()["evicted"] - base >= 96, 20,
                   "96 idle connections of 127.0.0.1 closed")
        assert r.modbus_status()["clients"] == 32, r.modbus_status()
        c = r.client(source="127.0.0.1")
        assert c.read(OWN, 4, 1, 13), "no answer at the per-address cap"
        assert closed_by_peer(socks[96], 10), "the longest idle connection was not closed"
        c.close()
        del socks[:97]  # closed by the server
        wait_until(lambda: r.modbus_status()["clients"] == 31, 10, "31 clients left")
        # 31 + 3 x 32 + 1 = 128 from five addresses: the global limit
        for k in range(3):
            socks += idle_sockets(r.port, "127.0.0.%d" % (2 + k), 32)
        socks += idle_sockets(r.port, "127.0.0.5", 1)
        wait_until(lambda: r.modbus_status()["clients"] == 128, 20, "128 clients")
        evicted = r.modbus_status()["evicted"]
        c = r.client(source="127.0.0.6")
        assert c.read(OWN, 4, 1, 13), "no answer at the global limit"
        st = r.modbus_status()
        assert st["clients"] == 128 and st["evicted"] == evicted + 1, st
        # the one closed was the oldest idle one (of 127.0.0.1)
        assert closed_by_peer(socks[0], 10), "the longest idle connection was not closed"
        c.close()
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: r.modbus_status()["clients"] == 0, 20, "no Modbus clients left")
    r.alive()


# ---- 5. pipelining ----

@test
def test_pipelining():
    import random
    r = rig()
    r.post_settings(NO_CACHE)
    snap = snapshot(r)
    s = socket.create_connection((HOST, r.port), timeout=30)
    try:
        for n in (12, 60, 150):  # the last one is more than sgd buffers at once
            reqs = {}
            data = b""
            for i in range(n):
                tid = 0x2000 + 256 * (n % 7) + i
                unit = random.choice([OWN, OWN, 1, 2, 33, RIGHT_BICOM, ABSENT])
                fc, base, size = random.choice([(4, 1, 13), (3, 101, 40)])
                start = random.randrange(size)
                count = random.randrange(1, size - start + 1)
                reqs[tid] = (unit, fc, base, start, count)
                data += mbap_frame(tid, unit, read_pdu(fc, base + start, count))
            s.sendall(data)
            seen = set()
            for _ in range(n):
                tid, pid, unit, pdu = mbap_recv(s)
                assert tid in reqs and tid not in seen, "unexpected tid %d" % tid
                seen.add(tid)
                want_unit, fc, base, start, count = reqs[tid]
                assert (pid, unit) == (0, want_unit), (tid, pid, unit, want_unit)
                if want_unit == ABSENT:
                    assert pdu == bytes([fc | 0x80, 0x0A]), (tid, pdu.hex())
                    continue
                assert pdu_regs(pdu) == snap[(unit, fc, base)][start:start + count], \
                    (tid, reqs[tid], pdu.hex())
        # fairness: a client with 100 forwarded requests queued does not make
        # another client's single request wait behind all of them
        b = socket.create_connection((HOST, r.port), timeout=30)
        try:
            s.sendall(b"".join(mbap_frame(i, 1, read_pdu(4, 1, 13)) for i in range(100)))
            got = []

            def drain():
                for _ in range(100):
                    got.append(mbap_recv(s)[0])
            t = threading.Thread(target=drain, daemon=True)
            t.start()
            wait_until(lambda: len(got) >= 3, 10, "the first answers of the busy client",
                       interval=0.001)
            before = len(got)
            b.sendall(mbap_frame(0x7777, 1, read_pdu(4, 1, 13)))
            tid, _, unit, pdu = mbap_recv(b)
            waited_behind = len(got) - before
            t.join(30)
            assert (tid, unit) == (0x7777, 1) and pdu_regs(pdu) == snap[(1, 4, 1)]
            assert got == list(range(100)), got
            print("  a second client was answered after %d more answers to the busy one "
                  "(%d, %d of 100)" % (waited_behind, before, before + waited_behind))
            assert before + waited_behind < 100 and waited_behind <= 20, \
                "the second client waited for %d of the busy client's requests" % waited_behind
        finally:
            b.close()
    finally:
        s.close()
        r.post_settings(DEFAULT_CACHE)
    r.alive()


# ---- 6. writes through the gateway ----

@test
def test_gateway_writes():
    r = rig()
    c = r.client()
    try:
        for unit in (4, 33):
            served = r.sim(unit).ctl("values %d" % unit)
            orig = served["description"]
            # fc 16, answered with address and count, read back at once
            text = "Written over TCP %d" % unit
            pdu = c.call(unit, write_multi_pdu(101, text_regs(text, 20)))
            assert pdu == bytes([16, 0, 101, 0, 20]), pdu.hex()
            assert regs_text(c.read(unit, 3, 101, 20)) == text
            assert r.sim(unit).ctl("values %d" % unit)["description"] == text
            # fc 6, read back at once
            pdu = c.call(unit, write_single_pdu(101, 0x5A5A))
            assert pdu == write_single_pdu(101, 0x5A5A), pdu.hex()
            got = c.read(unit, 3, 101, 20)
            assert got[0] == 0x5A5A, "read after fc 6 returned %04x" % got[0]
            # fc 23: write location, read description in one transaction
            loc = "Loc %d" % unit
            req = bytes([23, 0, 101, 0, 4, 0, 121, 0, 20, 40]) + b"".join(
                struct.pack(">H", v) for v in text_regs(loc, 20))
            pdu = c.call(unit, req)
            assert pdu[:2] == bytes([23, 8]), pdu.hex()
            assert pdu_regs(bytes([3]) + pdu[1:])[0] == 0x5A5A
            assert regs_text(c.read(unit, 3, 121, 20)) == loc
            # restore
            c.call(unit, write_multi_pdu(101, text_regs(orig, 20)))
            c.call(unit, write_multi_pdu(121, text_regs(served["location"], 20)))
            assert r.sim(unit).ctl("values %d" % unit)["description"] == orig
        # a write invalidates the cache: holding 151 (reverse flag) is read by
        # every background poll cycle; once a read of it is a cache hit, write
        # it and read it back at once
        for unit in (4, 33):
            orig = c.read(unit, 3, 151, 1)[0]
            for new in (orig ^ 2, orig):
                deadline = time.monotonic() + 5
                while True:
                    hits = r.modbus_status()["cache_hits"]
                    c.read(unit, 3, 151, 1)
                    if r.modbus_status()["cache_hits"] > hits:
                        break
                    assert time.monotonic() < deadline, \
                        "unit %d: no read of holding 151 came from the cache in 5 s" % unit
                    time.sleep(0.05)
                assert c.call(unit, write_single_pdu(151, new)) == write_single_pdu(151, new)
                got = c.read(unit, 3, 151, 1)[0]
                assert got == new, "unit %d: holding 151 read %d right after writing %d " \
                    "(stale cache)" % (unit, got, new)
        # the Bicoms' relays (RS485 and Right IR) switched over Modbus
        for unit in (3, RIGHT_BICOM):
            for v, state in ((1, "on"), (0, "off")):
                assert c.call(unit, write_single_pdu(200, v)) == write_single_pdu(200, v)
                assert r.sim(unit).ctl("relay %d" % unit)["relay"] == state
                assert c.read(unit, 3, 200, 1) == [v]
    finally:
        c.close()
    r.alive()


# ---- 7. own unit: settings over Modbus ----

@test
def test_own_unit_settings():
    r = rig()
    c = r.client()
    old = r.settings()
    try:
        # description through the Iskra identification registers (fc 16)
        pdu = c.call(OWN, write_multi_pdu(101, text_regs("Desc over Modbus", 20)))
        assert pdu == bytes([16, 0, 101, 0, 20]), pdu.hex()
        assert r.settings()["description"] == "Desc over Modbus"
        assert regs_text(c.read(OWN, 3, 101, 20)) == "Desc over Modbus"
        st, _, data = r.sgd.http("GET", "/api")
        assert data["device"]["description"] == "Desc over Modbus", data["device"]
        # location through its string setting register
        kind, reg = setting_reg("location")
        assert kind == "string"
        c.call(OWN, write_multi_pdu(reg, text_regs("Cellar 7", 64)))
        assert r.settings()["location"] == "Cellar 7"
        assert regs_text(c.read(OWN, 3, 121, 20)) == "Cellar 7"
        assert regs_text(c.read(OWN, 3, reg, 64)) == "Cellar 7"
        # an integer setting (int32, high word first)
        kind, reg = setting_reg("poll_counter_interval")
        assert kind == "int32"
        assert c.call(OWN, write_multi_pdu(reg, [0, 7])) == bytes([16, reg >> 8, reg & 0xFF, 0, 2])
        assert r.settings()["poll_counter_interval"] == 7
        assert c.read(OWN, 3, reg, 2) == [0, 7]
        c.call(OWN, write_multi_pdu(reg, [0, old["poll_counter_interval"]]))
        assert r.settings()["poll_counter_interval"] == old["poll_counter_interval"]
        # status in the map
        m = r.modbus_status()
        for k in ("enabled", "port", "unit", "clients", "requests", "forwarded", "cache_hits",
                  "own", "exceptions", "dropped", "rs485_role"):
            assert k in m, (k, m)
        assert m["port"] == r.port and m["unit"] == OWN and m["clients"] >= 1, m
        # tcp_port moved live over Modbus
        kind, reg = setting_reg("tcp_port")
        new = free_port()
        pdu = c.call(OWN, write_multi_pdu(reg, [new >> 16, new & 0xFFFF]))
        assert pdu == bytes([16, reg >> 8, reg & 0xFF, 0, 2]), pdu.hex()
        c.close()
        wait_until(lambda: port_accepts(new), 10, "Modbus TCP on the new port %d" % new)
        oldport, r.port = r.port, new
        assert r.settings()["tcp_port"] == new
        wait_until(lambda: not port_accepts(oldport), 10, "old port %d closed" % oldport)
        c = r.client()
        check_ident(c.read(OWN, 4, 1, 13), MODEL, SERIAL, sw_version_x100())
        c.close()
        # and again over REST
        new = free_port()
        r.post_settings({"tcp_port": new})
        wait_until(lambda: port_accepts(new), 10, "Modbus TCP on port %d (REST)" % new)
        oldport, r.port = r.port, new
        wait_until(lambda: not port_accepts(oldport), 10, "old port %d closed" % oldport)
        assert r.modbus_status()["port"] == new
        # disabled and enabled again over REST
        r.post_settings({"modbus_tcp_enabled": 0})
        wait_until(lambda: not port_accepts(new), 10, "Modbus TCP off")
        assert r.modbus_status()["enabled"] in (0, False)
        r.post_settings({"modbus_tcp_enabled": 1})
        wait_until(lambda: port_accepts(new), 10, "Modbus TCP on again")
        # sg_modbus_addr moves the own unit
        r.post_settings({"sg_modbus_addr": 40})
        c = r.client()
        wait_until(lambda: c.read(40, 4, 13, 1) == [sw_version_x100()], 5, "own unit at 40")
        assert c.exception(OWN, read_pdu(4, 1, 13)) == 0x0A  # nothing at 34 now
        r.post_settings({"sg_modbus_addr": OWN})
        wait_until(lambda: c.read(OWN, 4, 13, 1) == [sw_version_x100()], 5, "own unit at 34")
    finally:
        c.close()
        r.post_settings({"description": old["description"], "location": old["location"]})
    r.alive()


# ---- 9. register cache ----

@test
def test_cache():
    r = rig()
    c = r.client()
    block = (4, 105, 10)  # inside the measurement block the poller reads
    try:
        def run(n):
            s0 = r.modbus_status()
            q0 = r.rs485.ctl("stats")["per_addr"]["1"]["requests"]
            for _ in range(n):
                c.read(1, *block)
                time.sleep(0.02)
            s1 = r.modbus_status()
            q1 = r.rs485.ctl("stats")["per_addr"]["1"]["requests"]
            return s1["cache_hits"] - s0["cache_hits"], s1["forwarded"] - s0["forwarded"], q1 - q0
        hits, fwd, bus = run(30)
        print("  default freshness: 30 reads, %d cache hits, forwarded %d, %d requests on the bus"
              % (hits, fwd, bus))
        assert hits >= 20, "only %d of 30 reads came from the cache" % hits
        assert bus < 30, bus
        r.post_settings({"rs485_cache_ms_1": 0})
        hits, fwd, bus = run(30)
        print("  rs485_cache_ms_1=0: 30 reads, %d cache hits, forwarded %d, %d requests on the bus"
              % (hits, fwd, bus))
        assert hits == 0, "%d cache hits with rs485_cache_ms_1=0" % hits
        assert bus >= 30, "only %d requests reached device 1" % bus
        # another device keeps its cache
        h0 = r.modbus_status()["cache_hits"]
        for _ in range(5):
            c.read(4, *block)
        assert r.modbus_status()["cache_hits"] > h0
    finally:
        c.close()
        r.post_settings({"rs485_cache_ms_1": 1000})
    r.alive()


@test
def test_coalesced_reads():
    """With freshness 0, 16 masters reading the same registers at once share
    bus transactions (each answer still carries its own tid and the right
    values), while different registers are never merged."""
    r = rig()
    r.post_settings({"rs485_cache_ms_1": 0})
    same, other = (4, 105, 10), (4, 107, 10)
    errors, answers = [], []

    def master(i, n=15):
        c = r.client()
        try:
            for _ in range(n):
                blk = other if i == 0 else same
                regs = c.read(1, *blk)
                answers.append((blk, regs))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("%d: %r" % (i, e))
        finally:
            c.close()
    try:
        s0 = r.modbus_status()
        q0 = r.rs485.ctl("stats")["per_addr"]["1"]["requests"]
        threads = [threading.Thread(target=master, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        s1 = r.modbus_status()
        q1 = r.rs485.ctl("stats")["per_addr"]["1"]["requests"]
    finally:
        r.post_settings({"rs485_cache_ms_1": 1000})
    assert not errors, errors
    assert len(answers) == 16 * 15
    coalesced = s1["coalesced"] - s0["coalesced"]
    hits = s1["cache_hits"] - s0["cache_hits"]
    bus = q1 - q0
    print("  16 masters x 15 reads, freshness 0: %d coalesced, %d cache hits, %d requests "
          "reached device 1 (polls included)" % (coalesced, hits, bus))
    assert hits == 0, hits
    assert coalesced > 0, "no read rode along with an identical one"
    assert bus < 16 * 15, bus
    # 105+10 and 107+10 overlap but differ: the answers keep their own layout
    # (register 107 is the 3rd of "same" and the 1st of "other"; U1 is a T5
    # voltage, so its exponent byte decodes to a plausible voltage in both)
    by_blk = {}
    for blk, regs in answers:
        by_blk.setdefault(blk, []).append(regs)
    assert len(by_blk[other]) == 15 and len(by_blk[same]) == 15 * 15
    for regs in by_blk[other]:
        assert 200 < decode_field({"reg": 107, "type": "t5"}, regs[0:2]) < 260, regs
    for regs in by_blk[same]:
        assert 45 < decode_field({"reg": 105, "type": "t5"}, regs[0:2]) < 55, regs
        assert 200 < decode_field({"reg": 107, "type": "t5"}, regs[2:4]) < 260, regs
    r.alive()


# ---- 8. RS485 slave role ----

class Line:
    """The master end of a pty pair whose slave end sgd has as its RS485 port."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)
        self.buf = b""

    def drain(self, quiet=0.05):
        while select.select([self.master], [], [], quiet)[0]:
            os.read(self.master, 4096)
        self.buf = b""

    def read_some(self, timeout):
        if select.select([self.master], [], [], timeout)[0]:
            self.buf += os.read(self.master, 4096)

    def request(self, unit, pdu, timeout=1.0):
        """Send an RTU request; the answer PDU or None (nothing valid came)."""
        self.drain(0.01)
        os.write(self.master, rtu_frame(unit, pdu))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_some(max(0.0, deadline - time.monotonic()))
            b = self.buf
            if len(b) >= 5:
                if b[1] & 0x80:
                    n = 5
                elif b[1] in (3, 4):
                    n = 5 + b[2]
                else:
                    n = 8
                if len(b) >= n:
                    frame = b[:n]
                    assert crc16_modbus(frame[:-2]) == frame[-2] | frame[-1] << 8, \
                        "bad CRC in %s" % frame.hex()
                    assert frame[0] == unit, "answer from %d to a request for %d" % (frame[0],
                                                                                     unit)
                    return frame[1:-2]
        return None

    def frames(self, seconds):
        """RTU frames sgd sends (as master) within seconds, split by CRC."""
        self.buf = b""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.read_some(max(0.0, deadline - time.monotonic()))
        out, b = [], self.buf
        while len(b) >= 4:
            for n in range(4, min(len(b), 256) + 1):
                if crc16_modbus(b[:n - 2]) == b[n - 2] | b[n - 1] << 8:
                    out.append(b[:n])
                    b = b[n:]
                    break
            else:
                b = b[1:]
        return out

    def close(self):
        os.close(self.master)
        os.close(self.slave)


@test
def test_rs485_slave_role():
    line = Line()
    work = tempfile.mkdtemp(prefix="sgd-test-modbus-rtu-")
    http_port, tcp_port = free_port(), free_port()
    sgd = Sgd(work, {"rs485": line.path},
              extra_conf="modbus_tcp_bind = 127.0.0.1\nserial_number = %s\n" % SERIAL)
    seed_settings(sgd.state, {"tcp_port": tcp_port, "http_port": http_port,
                              "description": "Slave role"})
    socat = None
    try:
        sgd.start()
        sgd.http_port = http_port
        wait_until(lambda: port_accepts(http_port), 10, "HTTP")
        sw = sw_version_x100()
        # no RS485 device enabled: sgd answers as an RTU slave at 34
        pdu = wait_until(lambda: line.request(OWN, read_pdu(4, 1, 13)), 10, "an RTU answer")
        check_ident(pdu_regs(pdu), MODEL, SERIAL, sw)
        assert regs_text(pdu_regs(line.request(OWN, read_pdu(3, 101, 20)))) == "Slave role"
        st, _, data = sgd.http("GET", "/api")
        role_slave = data["modbus"]["rs485_role"]
        # other addresses, broadcasts and bad CRCs get no answer
        assert line.request(OWN + 1, read_pdu(4, 1, 13), timeout=0.3) is None
        assert line.request(0, read_pdu(4, 1, 13), timeout=0.3) is None
        os.write(line.master, rtu_frame(OWN, read_pdu(4, 1, 13))[:-1] + b"\x00")
        line.read_some(0.3)
        assert line.buf == b"", "answer to a bad CRC: %s" % line.buf.hex()
        # exceptions and a settings write, over RTU
        assert line.request(OWN, read_pdu(4, 60000, 1)) == bytes([0x84, 2])
        for fc in (7, 17):  # functions an RTU slave can frame by their length
            got = line.request(OWN, bytes([fc]))
            assert got == bytes([0x80 | fc, 1]), "RTU fc %d: %r" % (fc, got and got.hex())
        # fc 8's length depends on its sub-function: sgd frames RTU requests by
        # function code, so it may drop it instead of answering 01
        got = line.request(OWN, bytes([8, 0, 0, 0, 0]), timeout=0.3)
        assert got in (None, bytes([0x88, 1])), got.hex()
        if got is None:
            print("  RTU fc 8 (diagnostics): no answer (not framed), not exception 01")
        line.drain(0.1)
        assert line.request(OWN, write_multi_pdu(101, text_regs("Set over RTU", 20))) == \
            bytes([16, 0, 101, 0, 20])
        st, _, data = sgd.http("GET", "/api/settings")
        assert data["settings"]["description"] == "Set over RTU", data["settings"]["description"]
        # the role in the own unit's map (input 66: 1 slave), over TCP
        wait_until(lambda: port_accepts(tcp_port), 10, "Modbus TCP")
        c = Client(tcp_port)
        assert c.read(OWN, 4, 66, 1) == [1]
        # no RS485 device: a TCP request for an RS485 address has no path
        assert c.exception(5, read_pdu(4, 1, 13)) == 0x0A
        # the slave address follows sg_modbus_addr
        st, _, data = sgd.http("POST", "/api/settings", {"sg_modbus_addr": 40})
        assert st == 200, (st, data)
        pdu = wait_until(lambda: line.request(40, read_pdu(4, 13, 1), timeout=0.5), 5,
                         "an RTU answer at 40")
        assert pdu_regs(pdu) == [sw]
        assert line.request(OWN, read_pdu(4, 13, 1), timeout=0.3) is None
        st, _, data = sgd.http("POST", "/api/settings", {"sg_modbus_addr": OWN})
        assert st == 200, (st, data)
        wait_until(lambda: line.request(OWN, read_pdu(4, 13, 1), timeout=0.5), 5,
                   "an RTU answer at 34 again")
        # a client that is not ours, through socat: mbpoll -m rtu
        if shutil.which("socat") and shutil.which("mbpoll"):
            link = os.path.join(work, "mbpoll-tty")
            socat = subprocess.Popen(["socat", "FD:%d" % line.master,
                                      "PTY,link=%s,raw,echo=0" % link],
                                     pass_fds=(line.master,), stderr=subprocess.DEVNULL)
            wait_until(lambda: os.path.exists(link), 5, "socat pty link")
            vals = mbpoll(["-m", "rtu", "-b", "115200", "-P", "none", "-a", str(OWN), "-t", "3",
                           "-r", "1", "-c", "13", "-0", "-1", "-o", "2", link])
            check_ident([vals[i] for i in range(1, 14)], MODEL, SERIAL, sw)
            socat.terminate()
            socat.wait(5)
            socat = None
            line.drain(0.1)
        else:
            print("  socat or mbpoll missing: mbpoll -m rtu not run")
        # enabling an RS485 device makes sgd the master: it polls address 7
        st, _, data = sgd.http("POST", "/api/settings", {"rs485_type_1": 1, "rs485_addr_1": 7})
        assert st == 200, (st, data)
        frames = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(f[0] == 7 for f in frames):
            frames += line.frames(0.5)
        assert any(f[0] == 7 for f in frames), "no request to 7 on the line: %r" % [
            f.hex() for f in frames]
        assert all(f[0] == 7 for f in frames), "frames not for 7: %r" % [f.hex() for f in frames]
        st, _, data = sgd.http("GET", "/api")
        assert data["modbus"]["rs485_role"] != role_slave, data["modbus"]
        assert c.read(OWN, 4, 66, 1) == [0]
        # as master it does not answer at 34
        os.write(line.master, rtu_frame(OWN, read_pdu(4, 1, 13)))
        frames = line.frames(1.0)
        assert not any(f[0] == OWN for f in frames), "answered at 34 as master: %r" % [
            f.hex() for f in frames]
        # disabling it again: slave once more, without a restart
        st, _, data = sgd.http("POST", "/api/settings", {"rs485_type_1": 0})
        assert st == 200, (st, data)
        pdu = wait_until(lambda: line.request(OWN, read_pdu(4, 1, 13), timeout=0.5), 10,
                         "an RTU answer after the switch back")
        check_ident(pdu_regs(pdu), MODEL, SERIAL, sw)
        st, _, data = sgd.http("GET", "/api")
        assert data["modbus"]["rs485_role"] == role_slave, data["modbus"]
        assert c.read(OWN, 4, 66, 1) == [1]
        c.close()
        assert sgd.proc.poll() is None
    finally:
        if socat:
            socat.kill()
            socat.wait()
        try:
            rc = sgd.stop()
        finally:
            line.close()
    check_exit(rc, sgd)


def check_exit(rc, sgd):
    log = sgd.logtext()
    assert rc == 0, "sgd exited with %d; log tail:\n%s" % (rc, log[-3000:])
    for mark in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert mark not in log, "%s in the sgd log:\n%s" % (mark, log[-5000:])


@test
def test_clean_exit():
    """The shared daemon stops cleanly (exit 0, no sanitizer report)."""
    global _rig
    r = rig()
    _rig = None
    check_exit(r.stop(), r.sgd)


def main():
    try:
        return run(sys.argv)
    finally:
        if _rig is not None:
            _rig.stop()


if __name__ == "__main__":
    sys.exit(main())
