#!/usr/bin/env python3
"""Core integration tests: sgd + sgsim on ptys, driven through sgctl."""
import glob
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, DEMO_METERS, FAST, PHASE_KEY, Demo, Sgd, close, run,  # noqa: E402
                     settled, sim_of, test, unix_request, wait_until)


def fresh_reading(demo, index, since_wall_ms):
    """Wait until the daemon holds a reading of device index taken after since."""
    def fresh():
        m = demo.sgd.ok("measurements", str(index))
        return m if time.time() * 1000 - m["age_ms"] > since_wall_ms else None
    return wait_until(fresh, 10, "fresh reading of device %d" % index)


def lookup(meas, q, phase):
    if q["qty"] in PHASE_KEY and phase > 0:
        return meas["Phases"][phase - 1].get(PHASE_KEY[q["qty"]])
    if q["qty"] in PHASE_KEY:
        return meas["Total"].get(PHASE_KEY[q["qty"]])
    if q["qty"] == "UPP":
        return meas["PhaseToPhase"][phase - 1]["U"]
    return meas.get({"Frequency": "Frequency", "Temperature": "Temperature"}[q["qty"]])


def compare_measurements(demo, index, sim, addr):
    served = sim.ctl("values %d" % addr)
    got = demo.sgd.ok("measurements", str(index))
    assert got["model"] == served["model"], (got["model"], served["model"])
    assert got["serial"] == served["serial"]
    meas = got["measurements"]
    n = 0
    for q in served["measurements"]:
        if q["qty"] == "Tariff":
            assert meas["Tariff"] == q["value"]
            continue
        m = lookup(meas, q, q["phase"])
        assert m is not None, "device %d lacks %s phase %d" % (index, q["qty"], q["phase"])
        assert close(m["value"], q["value"]), \
            "device %d %s/%d: sgd %r, simulator %r" % (index, q["qty"], q["phase"], m["value"], q["value"])
        n += 1
    assert n > 0
    return n


def compare_counters(demo, index, sim, addr):
    served = sim.ctl("values %d" % addr)
    got = demo.sgd.ok("counters", str(index))["counters"]
    flat = {(c["name"], kind == "resettable"): c for kind in ("resettable", "non_resettable")
            for c in got[kind]}
    for c in served["counters"]:
        mine = flat.get((c["name"], c["resettable"]))
        assert mine, "device %d counter %s missing" % (index, c["name"])
        assert close(mine["value"], c["value"]), (index, c["name"], mine["value"], c["value"])
        assert mine["unit"] == c["unit"], (index, c["name"], mine["unit"], c["unit"])
        assert mine["direction"] == c["direction"], (index, c["name"], mine["direction"])
    assert len(flat) == len(served["counters"])
    return len(flat)


@test
def test_values_equal_simulator():
    demo = Demo().start(FAST)
    try:
        demo.wait_all_ok()
        for s in (demo.left, demo.rs485):
            s.ctl("freeze 1")
        frozen = time.time() * 1000 + 50
        time.sleep(0.05)
        total = 0
        for index, name, addr in DEMO_METERS:
            fresh_reading(demo, index, frozen)
            total += settled(lambda: compare_measurements(demo, index, sim_of(demo, name), addr))
            # counters are due every second here: retry until a cycle past the freeze read them
            total += settled(lambda: compare_counters(demo, index, sim_of(demo, name), addr))
        assert total > 60, total
        devs = demo.sgd.ok("devices")["devices"]
        assert [d["interface"] for d in devs][:3] == ["Left IR", "Right IR", "RS485 1"]
        assert devs[1]["model"] == "Bicom" and devs[4]["model"] == "Bicom"
        assert devs[5]["model"] == "IE14" and devs[6]["model"] == "Disabled"
    finally:
        demo.stop()


@test
def test_not_responding_and_recovery():
    demo = Demo().start(FAST)
    try:
        demo.wait_all_ok()
        demo.rs485.ctl("present 4 0")
        t0 = time.monotonic()

        def down():
            d = demo.sgd.ok("devices")["devices"][5]
            return d["status"] == "not responding" and d
        d = wait_until(down, 10, "RS485 4 marked not responding")
        print("  marked not responding after %.1fs: %s" % (time.monotonic() - t0, d["last_error"]))
        # the other devices on the same bus keep being polled
        assert demo.sgd.ok("devices")["devices"][2]["status"] == "ok"
        rc, _, err = demo.sgd.ctl("measurements", "4")
        assert rc == 0  # last values stay readable, flagged by status
        assert demo.sgd.ok("measurements", "4")["status"] == "not responding"
        events = demo.sgd.ok("events", "20")["events"]
        assert any("not responding" in e["msg"] and e["kind"] == "error" for e in events), events
        demo.rs485.ctl("present 4 1")
        t1 = time.monotonic()
        wait_until(lambda: demo.sgd.ok("devices")["devices"][5]["status"] == "ok", 40,
                   "RS485 4 recovered")
        print("  recovered %.1fs after reappearing" % (time.monotonic() - t1))
        events = demo.sgd.ok("events", "20")["events"]
        assert any(e["kind"] == "recovered" for e in events), events
    finally:
        demo.stop()


@test
def test_bicom_round_trip():
    demo = Demo().start()
    try:
        demo.wait_all_ok()
        for addr, sim, saddr in ((3, demo.rs485, 3), (0, demo.right, 33)):
            for op, want in (("on", "on"), ("off", "off"), ("toggle", "on"), ("toggle", "off")):
                r = demo.sgd.ok("bicom", str(addr), op)
                assert r["state"] == want, (addr, op, r)
                assert sim.ctl("relay %d" % saddr)["relay"] == want, (addr, op)
            sim.ctl("fault %d noanswer" % saddr)
            rc, _, err = demo.sgd.ctl("bicom", str(addr), "on")
            assert rc == 1 and "timeout" in err, (rc, err)
            sim.ctl("fault %d none" % saddr)
            assert demo.sgd.ok("bicom", str(addr), "state")["state"] == "off"
        rc, _, err = demo.sgd.ctl("bicom", "9", "on")
        assert rc == 1 and "no Bicom" in err, err
    finally:
        demo.stop()


@test
def test_scan_finds_devices():
    demo = Demo().start()
    try:
        demo.wait_all_ok()
        t0 = time.monotonic()
        found = demo.sgd.ok("scan", timeout=120)["devices"]
        print("  full scan 1…247 took %.1fs" % (time.monotonic() - t0))
        by_addr = {d["address"]: d for d in found}
        assert sorted(by_addr) == [1, 2, 3, 4], found
        assert by_addr[1]["model"] == "WM3M4C" and by_addr[2]["model"] == "MC750"
        assert by_addr[4]["serial"] == demo.rs485.ctl("values 4")["serial"]
        assert by_addr[1]["baud"] == 115200
        # polling resumes afterwards
        demo.wait_all_ok()
    finally:
        demo.stop()


@test
def test_scan_add_all():
    demo = Demo()
    try:
        demo.sgd.start()
        demo.sgd.ok("set", "rs485_type_2=1", "rs485_addr_2=4", "rs485_baud_rate=3")
        r = demo.sgd.ok("scan", "--baud", "115200", "--from", "1", "--to", "6", "--add-all")
        assert sorted(d["address"] for d in r["devices"]) == [1, 2, 3, 4], r
        added = {a["address"]: a["rs485_slot"] for a in r["added"]}
        assert sorted(added) == [1, 2, 3], r["added"]  # 4 was already configured
        s = demo.sgd.ok("settings")["settings"]
        types = {s["rs485_addr_%d" % n]: s["rs485_type_%d" % n] for n in range(1, 17)
                 if s["rs485_type_%d" % n]}
        assert types == {1: 1, 2: 4, 3: 2, 4: 1}, types  # meter, PQ analyser, Bicom, meter
        assert s["rs485_baud_rate"] == 7  # the line the devices were found on
        assert s["rs485_desc_1"].startswith("WM3M4C ")
        wait_until(lambda: demo.sgd.ok("status")["devices_responding"] == 4, 15, "4 devices ok")
        again = demo.sgd.ok("scan", "--from", "1", "--to", "6", "--add-all")
        assert again["added"] == [], again
    finally:
        demo.stop()


@test
def test_set_parameters():
    demo = Demo().start()
    try:
        demo.wait_all_ok()
        r = demo.sgd.ok("set-parameters", "1", "WM3M4C", "parity=2")
        assert r["parity"] == 2
        # 40205 (holding PDU 204) is the WM3M4C parity register
        assert demo.sgd.ok("modbus", "read", "1", "40205")["values"] == ["0x0002"]
        rc, _, err = demo.sgd.ctl("set-parameters", "1", "WM3M4C", "parity=7")
        assert rc != 0 and "parity" in err
        rc, _, err = demo.sgd.ctl("set-parameters", "3", "Bicom", "baud=3")
        assert rc == 1 and "communication registers" in err, err
    finally:
        demo.stop()


@test
def test_line_garbage_does_not_wedge_bus():
    demo = Demo().start(FAST)
    try:
        demo.wait_all_ok()
        for mode in ("crc", "garbage", "exception 4", "slow 400"):
            demo.rs485.ctl("fault 1 %s" % mode)
            for _ in range(5):
                demo.rs485.ctl("noise 64")
                time.sleep(0.1)
            time.sleep(1.5)
            # the daemon is alive and the other devices on the line are fine
            devs = demo.sgd.ok("devices")["devices"]
            assert devs[3]["status"] == "ok" and devs[5]["status"] == "ok", (mode, devs[3:6])
        demo.rs485.ctl("fault 1 none")
        wait_until(lambda: demo.sgd.ok("devices")["devices"][2]["status"] == "ok", 40,
                   "RS485 1 healthy again")
        st = demo.sgd.ok("status")
        assert st["buses"][2]["errors"] > 0
        demo.rs485.ctl("freeze 1")
        frozen = time.time() * 1000 + 50
        time.sleep(0.05)
        for index in (1, 2):
            fresh_reading(demo, index, frozen)
            settled(lambda: compare_measurements(demo, index, demo.rs485, index))
    finally:
        demo.stop()


@test
def test_invalid_set_changes_nothing():
    demo = Demo().start()
    try:
        before = demo.sgd.ok("settings")["settings"]
        crc = demo.sgd.ok("status")["settings_crc"]
        cases = [
            (["rs485_baud_rate=9"], "rs485_baud_rate"),
            (["foo=1"], "foo"),
            (["http_port=abc"], "http_port"),
            (["description=" + "x" * 300], "description"),
            (["location=ok", "sg_modbus_addr=0"], "sg_modbus_addr"),
            (["serial_number=X"], "serial_number"),
            (["novalue"], ""),
        ]
        for args, key in cases:
            rc, _, err = demo.sgd.ctl("set", *args)
            assert rc != 0, args
            assert key in err, (args, err)
        assert demo.sgd.ok("settings")["settings"] == before
        assert demo.sgd.ok("status")["settings_crc"] == crc
        # and a valid change does change the CRC and survives a restart
        demo.sgd.ok("set", "location=Basement")
        assert demo.sgd.ok("status")["settings_crc"] != crc
        demo.sgd.stop()
        demo.sgd.start()
        assert demo.sgd.ok("settings", "location")["location"] == "Basement"
    finally:
        demo.stop()


@test
def test_kill9_during_settings_writes():
    work = tempfile.mkdtemp(prefix="sgd-kill-")
    sgd = Sgd(work, {})
    written = {"SG"}
    iterations = int(os.environ.get("SG_KILL_ITERATIONS", "25"))
    for i in range(iterations):
        sgd.start()
        stop = threading.Event()

        def writer(tag=i):
            k = 0
            while not stop.is_set():
                v = "d%d_%d" % (tag, k)
                written.add(v)
                try:
                    sgd.ctl("set", "description=" + v, timeout=5)
                except Exception:
                    return
                k += 1
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(random.uniform(0.02, 0.3))
        sgd.proc.send_signal(signal.SIGKILL)
        sgd.proc.wait()
        sgd.log.close()
        stop.set()
        t.join()
        sgd.start()
        desc = sgd.ok("settings", "description")["description"]
        assert desc in written, desc
        rc = sgd.stop()
        assert rc == 0
    assert "defaults in use" not in sgd.logtext(), sgd.logtext()
    # no write cut short ever reads as damage (which would set a copy aside)
    assert not glob.glob(os.path.join(work, "state", "settings.json*.bad*"))


@test
def test_modbus_read_write():
    demo = Demo().start()
    try:
        demo.wait_all_ok()
        r = demo.sgd.ok("modbus", "read", "1", "30002", "4")  # model, input PDU 1
        raw = b"".join(int(v, 16).to_bytes(2, "big") for v in r["values"])
        assert raw.startswith(b"WM3M4C"), raw
        assert r["register"] == 30002 and r["number_of_registers"] == 4
        # description lives in holding PDU 101…120 (40102…)
        demo.sgd.ok("modbus", "write", "1", "40102", str(0x4142), str(0x4344))
        assert demo.rs485.ctl("values 1")["description"].startswith("ABCD")
        rc, _, err = demo.sgd.ctl("modbus", "read", "1", "20001")
        assert rc != 0
        rc, _, err = demo.sgd.ctl("modbus", "read", "9", "30002")
        assert rc == 1 and "timeout" in err, err
        rc, _, err = demo.sgd.ctl("modbus", "write", "1", "30002", "1")
        assert rc != 0
        # address 0 is the Left IR device
        r = demo.sgd.ok("modbus", "read", "0", "30002", "2")
        assert bytes.fromhex(r["values"][0][2:] + r["values"][1][2:]).startswith(b"IE38")
    finally:
        demo.stop()


@test
def test_bad_ctl_requests():
    demo = Demo().start()
    try:
        for line in ["not json", "{}", '{"argv": []}', '{"argv": [1]}', '{"argv": ["nope"]}',
                     '{"argv": ["measurements", "99"]}', '{"argv": ["measurements", "5"]}',
                     '{"argv": ["bicom", "3", "explode"]}', '{"argv": ["scan", "--baud", "7777"]}',
                     '{"argv": ["modbus", "read", "1", "30002", "126"]}']:
            reply = json.loads(unix_request(demo.sgd.sock, line))
            assert reply["ok"] is False and reply["error"], (line, reply)
        # an oversized request gets the connection dropped, nothing else
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(demo.sgd.sock)
        try:
            s.sendall(b"x" * (2 * 1024 * 1024))
        except OSError:
            pass
        s.close()
        for rc_args in (["bogus"], ["measurements"], ["factory-reset"]):
            rc, _, err = demo.sgd.ctl(*rc_args)
            assert rc != 0 and err and "\n" not in err, (rc_args, rc, err)
        st = demo.sgd.ok("status")
        assert st["devices_enabled"] == 6
        # sgctl status shows the loop's turns as GET /api does
        assert st["loop"]["turns"] > 0 and st["loop"]["turn_max_ms"] >= st["loop"]["turn_p99_ms"]
    finally:
        demo.stop()


def unix_closed_by_peer(s, timeout):
    """True when sgd closes the control-socket connection s within timeout
    (any reply before is read and ignored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if s.recv(65536) == b"":
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


@test
def test_ctl_idle_clients():
    """Silent clients of the control socket cannot lock sgctl out: with 40 of
    them (the table holds 32) sgctl still works at once, the oldest silent
    ones making room; and a silent client is closed after the idle timeout
    (30 s, 2 s here through the SGD_TEST_HOOKS test hook)."""
    for idle in (None, 2000):
        work = tempfile.mkdtemp(prefix="sgd-core-")
        wrapper = ["env", "SGD_TEST_HOOKS=1", "SGD_TEST_CTL_IDLE_MS=%d" % idle] if idle else []
        sgd = Sgd(work, {}, wrapper=wrapper).start()
        socks = []
        try:
            if idle is None:
                for _ in range(40):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(sgd.sock)
                    socks.append(s)
                for k in range(3):
                    assert sgd.ok("status", timeout=20)["devices_enabled"] == 0
                # the newest silent clients are kept, the oldest were closed
                assert unix_closed_by_peer(socks[0], 10), "the oldest idle client is open"
                for line in ['{"argv": ["status"]}', "not json"]:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(sgd.sock)
                    socks.append(s)
                    s.sendall(line.encode() + b"\n")
                    assert s.recv(65536).startswith(b'{"ok"'), line
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sgd.sock)
                socks.append(s)
                t0 = time.monotonic()
                assert unix_closed_by_peer(s, 20), "an idle client was kept 20 s"
                print("  idle client closed after %.1fs (timeout 2 s)" % (time.monotonic() - t0))
                # a client with a request answered is idle after it too
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sgd.sock)
                socks.append(s)
                s.sendall(b'{"argv": ["status"]}\n')
                assert unix_closed_by_peer(s, 20), "a client idle after its reply was kept"
            assert sgd.ok("status")["devices_enabled"] == 0
        finally:
            for s in socks:
                s.close()
            rc = sgd.stop()
        assert rc == 0, (rc, sgd.logtext()[-2000:])


@test
def test_factory_reset_and_clean_shutdown():
    demo = Demo().start()
    try:
        demo.wait_all_ok()
        demo.sgd.ok("factory-reset", "--yes")
        s = demo.sgd.ok("settings")["settings"]
        assert s["left_ir_enabled"] == 0 and s["rs485_type_1"] == 0
        wait_until(lambda: demo.sgd.ok("status")["devices_enabled"] == 0, 5, "slots disabled")
    finally:
        rc = demo.stop()
    assert rc == 0
    assert not os.path.exists(demo.sgd.sock)
    state = os.listdir(demo.sgd.state)
    assert not [f for f in state if f.endswith(".tmp")], state


@test
def test_sighup_reload_and_config_check():
    demo = Demo().start()
    try:
        demo.wait_all_ok()
        demo.sgd.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloading" in demo.sgd.logtext(), 5, "reload logged")
        assert demo.sgd.ok("status")["devices_enabled"] == 6
    finally:
        demo.stop()
    p = subprocess.run([os.path.join(BUILD, "sgd"), "-n", "-c", demo.sgd.conf],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    bad = demo.sgd.conf + ".bad"
    with open(bad, "w") as f:
        f.write("serial_rs485 = /dev/null\nbogus_key = 1\n")
    p = subprocess.run([os.path.join(BUILD, "sgd"), "-n", "-c", bad], capture_output=True, text=True)
    assert p.returncode != 0 and "bogus_key" in p.stderr and ":2" in p.stderr, p.stderr


@test
def test_valgrind_clean_shutdown():
    if os.environ.get("SG_SANITIZED"):
        print("  (skipped under ASan: valgrind runs on the plain build)")
        return
    demo = Demo(wrapper=["valgrind", "--error-exitcode=99", "--leak-check=full",
                         "--errors-for-leak-kinds=definite,indirect", "-q"])
    try:
        demo.start(FAST)
        demo.wait_all_ok(timeout=60)
        demo.sgd.ok("bicom", "3", "toggle")
        demo.sgd.ok("measurements", "1")
        demo.sgd.ok("scan", "--from", "1", "--to", "6")
    finally:
        rc = demo.stop()
    assert rc == 0, "valgrind reported errors (exit %d):\n%s" % (rc, demo.sgd.logtext()[-3000:])


if __name__ == "__main__":
    sys.exit(run(sys.argv))
