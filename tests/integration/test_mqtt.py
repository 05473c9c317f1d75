#!/usr/bin/env python3
"""MQTT links, commands, Home Assistant discovery, the outage buffer and the
Standard TCP push: real sgd + sgsim on ptys against a real mosquitto started
by the test (tests/integration/broker.py: plain, TLS with a test CA made by
the openssl CLI, mutual TLS with a password), observed with paho-mqtt and
compared with the REST API and the simulators.

  test_plain_hello_periodic_rest_equal  hello, availability + last will, periodic
                                        payloads = REST bytes = simulator values
  test_commands_round_trip              every command of CONTRACTS §2
  test_malformed_commands               bad commands: error replies, nothing changes;
                                        a silent device: one error, no stale values
  test_outage_replay                    broker killed: buffered, replayed in order with
                                        the original read times; kept across an sgd
                                        restart; bounded buffer drops the oldest
  test_tls_and_mtls                     TLS, mutual TLS + password, wrong CA/cert/password
  test_ha_discovery                     configs as HA needs them, templates render,
                                        Bicom switch, re-announce, ha_discovery=0
  test_ha_states_and_availability       default_entity_id, announce per push link, state
                                        at once and after HA's birth, device offline/online
  test_standard_tcp                     XML push = REST, status, silent server
  test_dns_off_loop                     a DNS server that never answers stalls nothing;
                                        TLS to a name still checks that name and sends
                                        it as SNI; GET /api "loop" turn figures

Run one test: /usr/bin/python3 tests/integration/test_mqtt.py test_standard_tcp
SG_DEBUG=1 prints arrival timelines of the outage test.
"""
import decimal
import json
import math
import os
import random
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEMO_METERS, FAST, PHASE_KEY, RIGHT_IR_BICOM_ADDR, Demo, Sgd, Sim,  # noqa
                     close, run, sim_of, test, wait_until)
from broker import PASSWORD, USER, Broker, Observer, retained  # noqa: E402

RS485_SLOTS = (1, 2, 3, 4)
SECRET = "Zx8-mqtt-secret-5521"


# ---- set-up helpers ----

def link_settings(n, port, proto=1, tls=0, server="127.0.0.1", **kw):
    """push<n>_/mqtt<n>_ settings for one link; kw: any mqtt<n>_<key>=value."""
    s = ["push%d_protocol=%d" % (n, proto), "mqtt%d_server=%s" % (n, server),
         "mqtt%d_port=%d" % (n, port), "mqtt%d_tls=%d" % (n, tls)]
    s += ["mqtt%d_%s=%s" % (n, k, v) for k, v in kw.items()]
    return s


def push_settings(link, intv=1, slots=RS485_SLOTS, leftir=True, ir_relay=True):
    """Periodic publishing of the demo devices to link (1, 2 or 3 = both)."""
    s = []
    if leftir:
        s += ["leftir_pushlink=%d" % link, "leftir_pushintv=%d" % intv]
    for n in slots:
        s += ["rs485_pushlnk%d=%d" % (n, link), "rs485_pushint%d=%d" % (n, intv)]
    if ir_relay:
        s += ["ir_relay_pushlink=%d" % link, "ir_relay_pushintv=%d" % intv]
    return s


def topics_of(sgd, n=1):
    """(base, cmd topic) of link n from the settings."""
    s = sgd.ok("settings")["settings"]
    root = s["mqtt%d_roottopic" % n]
    return root + "/" + s["mqtt%d_pub_topic" % n], root + "/" + s["mqtt%d_sub_topic" % n]


def api(sgd):
    st, _, data = sgd.http("GET", "/api")
    assert st == 200 and isinstance(data, dict), (st, data)
    return data


def link_info(sgd, n):
    links = api(sgd)["links"]
    mine = [x for x in links if x.get("link") == n]
    assert len(mine) == 1, links
    return mine[0]


def wait_link(sgd, n, pred, timeout, what):
    return wait_until(lambda: (lambda li: li if pred(li) else None)(link_info(sgd, n)), timeout,
                      "link %d %s" % (n, what), interval=0.1)


def wait_connected(sgd, n, timeout=20, prefix=False):
    """MQTT: exactly "Connected"; Standard TCP (prefix): "Connected…" (it may
    add when the last push went through)."""
    return wait_link(sgd, n, lambda li: li["status"] == "Connected" or
                     (prefix and li["status"].startswith("Connected")), timeout, "Connected")


def wait_error(sgd, n, timeout=20):
    return wait_link(sgd, n, lambda li: li["status"].startswith("Error: "), timeout,
                     "in an Error: state")


def jpay(m):
    return json.loads(m.payload.decode("utf-8"))


def read_at(m):
    return jpay(m)["header"]["read_at_ms"]


def alive(sgd):
    assert sgd.proc.poll() is None, "sgd died (%r); log tail:\n%s" % (
        sgd.proc.returncode, sgd.logtext()[-3000:])


def stop_clean(sgd):
    """SIGTERM; the daemon must exit 0 (under ASan/UBSan: no report, no leak)."""
    rc = sgd.stop()
    assert rc == 0, "sgd exited with %r; log tail:\n%s" % (rc, sgd.logtext()[-4000:])


def freeze(demo):
    """Freeze the meter simulators; returns the wall time (ms) after which
    readings carry the frozen values."""
    for s in (demo.left, demo.rs485):
        s.ctl("freeze 1")
    return time.time() * 1000 + 100


# ---- comparisons with the simulator ----

def lookup(meas, qty, phase):
    if qty in PHASE_KEY and phase > 0:
        return meas["Phases"][phase - 1].get(PHASE_KEY[qty])
    if qty in PHASE_KEY:
        return meas["Total"].get(PHASE_KEY[qty])
    if qty == "UPP":
        return meas["PhaseToPhase"][phase - 1]["U"]
    return meas.get(qty)


def compare_sim_measurements(doc, served, what):
    meas = doc["measurements"]
    n = 0
    for q in served["measurements"]:
        if q["qty"] == "Tariff":
            assert meas.get("Tariff") == q["value"], (what, meas.get("Tariff"), q)
            continue
        m = lookup(meas, q["qty"], q["phase"])
        assert m is not None, "%s lacks %s phase %d" % (what, q["qty"], q["phase"])
        assert close(m["value"], q["value"]), \
            "%s %s/%d: published %r, simulator %r" % (what, q["qty"], q["phase"], m["value"],
                                                      q["value"])
        n += 1
    return n


def compare_sim_counters(doc, served, what):
    got = doc["counters"]
    flat = {(c["name"], kind == "resettable"): c for kind in ("resettable", "non_resettable")
            for c in got[kind]}
    for c in served["counters"]:
        mine = flat.get((c["name"], c["resettable"]))
        assert mine, "%s: counter %s missing" % (what, c["name"])
        assert close(mine["value"], c["value"]), (what, c["name"], mine["value"], c["value"])
        assert mine["unit"] == c["unit"], (what, c["name"], mine["unit"], c["unit"])
        # R-A8: tariff mask and phase as the meter has them (null: no register)
        assert mine["tariffs"] == c["tariffs"], (what, c["name"], mine["tariffs"], c)
        assert mine["phase"] in (None, c["phase"]), (what, c["name"], mine["phase"], c)
    assert len(flat) == len(served["counters"]), (what, len(flat), len(served["counters"]))
    return len(flat)


# ---- commands ----

class Cmd:
    """Sends commands on a link's command topic and collects the replies
    (base/status JSON, base/error text) that follow."""

    def __init__(self, obs, base, cmd_topic):
        self.obs, self.base, self.cmd_topic = obs, base, cmd_topic

    def _replies(self, mark):
        return [m for m in self.obs.since(mark)
                if m.topic in (self.base + "/status", self.base + "/error")]

    def send(self, data=None, raw=None, timeout=15):
        """Publish {"data": data} (or raw bytes); return the first reply Msg."""
        mark = self.obs.mark()
        payload = raw if raw is not None else json.dumps({"data": data})
        self.obs.publish(self.cmd_topic, payload)
        what = "a reply to %s" % (raw[:60] if raw is not None else json.dumps(data)[:120])
        return self.obs.wait_for(lambda msgs: (self._replies(mark) or [None])[0], timeout,
                                 what), mark

    def ok(self, data, timeout=15):
        """A command that must succeed: its status JSON (with "cmd", no "error")."""
        m, mark = self.send(data, timeout=timeout)
        assert m.topic == self.base + "/status", \
            "%s: error reply on %s: %r" % (data["cmd"], m.topic, m.payload[:300])
        r = jpay(m)
        assert isinstance(r, dict), (data, r)
        assert r.get("cmd") == data["cmd"], "reply to %s names cmd %r: %r" % (
            data["cmd"], r.get("cmd"), r)
        assert "error" not in r, "%s failed: %r" % (data["cmd"], r)
        return r

    def error(self, data=None, raw=None, timeout=15, settle=0.3):
        """A command that must fail: the error text (from status "error" and/or
        base/error "Error: …"). Waits settle seconds for a companion reply."""
        m, mark = self.send(data, raw=raw, timeout=timeout)
        time.sleep(settle)
        texts = []
        what = raw[:60] if raw is not None else json.dumps(data)[:120]
        for r in self._replies(mark):
            if r.topic.endswith("/error"):
                t = r.payload.decode("utf-8", "replace")
                assert t.startswith("Error: ") and len(t) > 7, (what, t)
                texts.append(t)
            else:
                j = jpay(r)
                assert isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"], \
                    "%s: expected an error, got a status reply %r" % (what, j)
                texts.append(j["error"])
        return " | ".join(texts)


def found_devices(reply):
    """The device list of a detect_485_devices reply: {address: entry}."""
    lists = [v for v in reply.values() if isinstance(v, list) and v and
             all(isinstance(x, dict) for x in v)]
    assert lists, "no device list in %r" % reply
    out = {}
    for d in lists[0]:
        a = d.get("address", d.get("modbus_address", d.get("addr")))
        out[a] = d
    return out


def regs_text(values):
    return b"".join(int(v, 16).to_bytes(2, "big") for v in values)


def state_word(reply):
    """"on"/"off" carried by a bicom reply (any member but cmd/val)."""
    for k, v in reply.items():
        if k not in ("cmd", "val") and isinstance(v, str) and v.lower() in ("on", "off"):
            return v.lower()
    return None


# ---- 1. hello, availability, periodic payload = REST ----

def rest_match(sgd, obs, topic, path, timeout=20):
    """Poll REST path until a reply has the read_at_ms of a message published
    on topic; return (message, rest bytes, number of equal pairs)."""
    deadline = time.monotonic() + timeout
    rest = {}
    while time.monotonic() < deadline:
        st, _, raw = sgd.http("GET", path, raw=True)
        assert st == 200, (path, st, raw[:200])
        rest.setdefault(json.loads(raw)["header"]["read_at_ms"], raw)
        pairs = [(m, rest[read_at(m)]) for m in obs.since(0, topic) if read_at(m) in rest]
        if pairs:
            for m, raw in pairs:
                if m.payload != raw:
                    raise AssertionError("%s payload differs from GET %s of the same reading "
                                         "(read_at_ms %d):\n  mqtt %r\n  rest %r" % (
                                             topic, path, read_at(m), m.payload[:400],
                                             raw[:400]))
            return pairs[-1][0], pairs[-1][1], len(pairs)
        time.sleep(0.07)
    raise AssertionError("no publication on %s with the read_at_ms of a GET %s reply in %ds "
                         "(published %s, REST %s)" % (
                             topic, path, timeout,
                             [read_at(m) for m in obs.since(0, topic)][-6:], sorted(rest)[-6:]))


@test
def test_plain_hello_periodic_rest_equal():
    broker = Broker().start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        demo.start(FAST + link_settings(1, broker.plain) + push_settings(1)
                   + ["auth_password=" + SECRET])
        sgd = demo.sgd
        sgd.http_on()
        base, _ = topics_of(sgd)
        dev = api(sgd)["device"]
        # 001: the root topic defaults to the serial number
        assert base == "%s/publish" % dev["serial_number"], base
        # hello on connect
        h = jpay(obs.wait_msg(base + "/status/hello", timeout=20))
        assert h.get("hello") == "hello world", h
        for k in ("serial_number", "model_type", "sw_ver", "hw_ver"):
            assert k in h, (k, h)
            assert str(h[k]) == str(dev[k]), (k, h[k], dev[k])
        li = wait_connected(sgd, 1)
        assert li["protocol"] == "MQTT", li
        assert api(sgd)["status"]["link1_status"] == "Connected"
        # availability "online", retained (seen by a client that comes later)
        obs.wait_msg(base + "/availability", match=lambda m: m.payload == b"online")
        ret = retained(broker.plain, base + "/#")
        assert base + "/availability" in ret and ret[base + "/availability"].payload == b"online", \
            sorted(ret)
        demo.wait_all_ok()
        # periodic publications of each meter, about every second
        mark = obs.mark()
        t0 = time.time()
        time.sleep(5.5)
        for index, _, _ in DEMO_METERS:
            for kind in ("measurements", "counters"):
                topic = "%s/device/%d/%s" % (base, index, kind)
                got = obs.since(mark, topic)
                gaps = [b.t - a.t for a, b in zip(got, got[1:])]
                reads = [read_at(m) for m in got]
                print("  %s: %d in %.1fs, gaps %s" % (topic[len(base):], len(got),
                                                      time.time() - t0,
                                                      " ".join("%.2f" % g for g in gaps)))
                assert len(got) >= 4, "%s: %d publications in 5.5 s" % (topic, len(got))
                assert max(gaps) < 2.5, (topic, gaps)
                assert reads == sorted(reads), (topic, reads)
                assert all(not m.retain for m in got)
        # payload = REST JSON of the same reading, byte for byte
        for index, _, _ in DEMO_METERS:
            for kind, path in (("measurements", "/api/measurement/%d"),
                               ("counters", "/api/counter/%d")):
                topic = "%s/device/%d/%s" % (base, index, kind)
                m, raw, n = rest_match(sgd, obs, topic, path % index)
                print("  %s = GET %s (read_at_ms %d, %d bytes, %d equal pairs)" % (
                    topic[len(base):], path % index, read_at(m), len(raw), n))
        # values equal the simulator's (frozen)
        frozen = freeze(demo)
        n = 0
        for index, name, addr in DEMO_METERS:
            served = sim_of(demo, name).ctl("values %d" % addr)
            for kind, cmp in (("measurements", compare_sim_measurements),
                              ("counters", compare_sim_counters)):
                topic = "%s/device/%d/%s" % (base, index, kind)
                # a whole poll cycle after the freeze
                m = obs.wait_msg(topic, match=lambda m: read_at(m) > frozen + 1000, timeout=10)
                n += cmp(jpay(m), served, topic)
        print("  %d published values equal the simulators'" % n)
        assert n > 60, n
        # the secret never goes out
        assert not any(SECRET.encode() in m.payload for m in obs.since(0))
        # last will: sgd vanishes -> the broker publishes "offline"
        mark = obs.mark()
        sgd.proc.kill()
        sgd.proc.wait()
        obs.wait_msg(base + "/availability", mark, match=lambda m: m.payload == b"offline",
                     timeout=10, what="last will 'offline' after SIGKILL of sgd")
        ret = retained(broker.plain, base + "/availability")
        assert ret[base + "/availability"].payload == b"offline", ret
    finally:
        obs.close()
        demo.stop()
        broker.cleanup()


# ---- 2. every command round-trips ----

@test
def test_commands_round_trip():
    broker = Broker(extra_plain=True).start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        demo.start(FAST + link_settings(1, broker.plain)
                   + link_settings(2, broker.plain, roottopic="sgdtest/two")
                   + push_settings(1, slots=(1,), ir_relay=False)
                   + ["auth_password=" + SECRET])
        sgd = demo.sgd
        sgd.http_on()
        base, cmd_topic = topics_of(sgd)
        base2, cmd2 = topics_of(sgd, 2)
        assert (base2, cmd2) == ("sgdtest/two/publish", "sgdtest/two/cmd"), (base2, cmd2)
        obs.wait_msg(base + "/status/hello", timeout=20)
        obs.wait_msg(base2 + "/status/hello", timeout=20)
        demo.wait_all_ok()
        c = Cmd(obs, base, cmd_topic)
        pid = sgd.proc.pid

        # get_settings: the settings, secrets never
        r = c.ok({"cmd": "get_settings"})
        mine = sgd.ok("settings")["settings"]
        s = r.get("settings", r)
        assert isinstance(s, dict) and s.get("description") == mine["description"], r
        for k, v in mine.items():
            assert k in s and s[k] == v, (k, s.get(k), v)
        assert SECRET not in json.dumps(r), "get_settings leaks auth_password"
        # set_settings (keys beside cmd, as in the manual)
        r = c.ok({"cmd": "set_settings", "description": "MQTT roof", "location": "Attic 2"})
        after = sgd.ok("settings")["settings"]
        assert after["description"] == "MQTT roof" and after["location"] == "Attic 2", r
        st, _, rs = sgd.http("GET", "/api/settings")
        assert rs["settings"]["description"] == "MQTT roof"
        # legacy mqtt_port / mqtt_tls: this link's numbered keys (sent on link 2)
        c2 = Cmd(obs, base2, cmd2)
        mark = obs.mark()
        r = c2.ok({"cmd": "set_settings", "mqtt_port": broker.plain2, "mqtt_tls": 0})
        after = sgd.ok("settings")["settings"]
        assert after["mqtt2_port"] == broker.plain2 and after["mqtt2_tls"] == 0, r
        assert after["mqtt1_port"] == broker.plain, "legacy mqtt_port changed link 1"
        assert "mqtt_port" not in after
        obs.wait_msg(base2 + "/status/hello", mark, timeout=20,
                     what="link 2 hello after moving to the second listener")
        wait_connected(sgd, 2)
        assert link_info(sgd, 1)["status"] == "Connected"

        # measurements / counters by address (0 = Left IR) and by index
        for data, index, serial, key in (
                ({"cmd": "measurements", "addr": 0}, 0, "IE000033", "measurements"),
                ({"cmd": "measurements", "addr": 4}, 4, "IE000004", "measurements"),
                ({"cmd": "measurements", "index": 2}, 2, "MC000002", "measurements"),
                ({"cmd": "counters", "addr": 1}, 1, "WM000001", "counters"),
                ({"cmd": "counters", "index": 0}, 0, "IE000033", "counters")):
            r = c.ok(data)
            assert key in r and r["header"]["serial"] == serial, (data, r)
            assert r["header"]["index"] == index, (data, r["header"])
            path = "/api/%s/%d" % ("measurement" if key == "measurements" else "counter", index)
            _, _, rest = sgd.http("GET", path)
            assert set(r[key]) == set(rest[key]), (data, sorted(r[key]), sorted(rest[key]))
            if key == "counters":  # R-A8: each counter says its tariffs and phase
                for ctr in r[key]["non_resettable"] + r[key]["resettable"]:
                    assert "tariffs" in ctr and "phase" in ctr, (data, ctr)

        # bicom on/off/toggle/state, RS485 (3) and the Right IR (0)
        for addr, sim, saddr in ((3, demo.rs485, 3), (0, demo.right, RIGHT_IR_BICOM_ADDR)):
            for op, want in (("on", "on"), ("off", "off"), ("toggle", "on"), ("state", "on"),
                             ("toggle", "off"), ("state", "off")):
                r = c.ok({"cmd": "bicom", "addr": addr, "val": op})
                assert state_word(r) == want, (addr, op, r)
                assert sim.ctl("relay %d" % saddr)["relay"] == want, (addr, op)

        # modbus_read of the IE38 identification (by serial and by address 0)
        served = demo.left.ctl("values 33")
        for who in ({"serial_number": "IE000033"}, {"modbus_address": 0}):
            r = c.ok(dict({"cmd": "modbus_read", "reg": 30001, "no_regs": 14}, **who))
            assert r["register"] == 30001 and r["number_of_registers"] == 14, r
            assert r.get("modbus_address") in (33, 0), r
            vals = r["values"]
            assert len(vals) == 14 and all(re.match(r"^0x[0-9A-Fa-f]{4}$", v) for v in vals), vals
            raw = regs_text(vals)
            assert raw[2:18].rstrip(b"\0 ").decode() == served["model"], raw
            assert raw[18:26].rstrip(b"\0 ").decode() == served["serial"], raw
            assert int(vals[13], 16) == served["sw_version"], (vals, served["sw_version"])
        # write single / multi (description, holding PDU 101 = 40102), read back
        r = c.ok({"cmd": "modbus_write_single", "modbus_address": 1, "reg": 40102,
                  "value": 0x4142})
        assert demo.rs485.ctl("values 1")["description"].startswith("AB"), r
        r = c.ok({"cmd": "modbus_read", "modbus_address": 1, "reg": 40102, "no_regs": 1})
        assert r["values"] == ["0x4142"], r
        r = c.ok({"cmd": "modbus_write_multi", "serial_number": "WM000001", "reg": 40102,
                  "values": [67, 68, 69, 70]})
        assert demo.rs485.ctl("values 1")["description"].startswith("CDEF"), r
        r = c.ok({"cmd": "modbus_read", "serial_number": "WM000001", "reg": 40102, "no_regs": 2})
        assert [v.upper() for v in r["values"]] == ["0X4344", "0X4546"], r
        assert r["modbus_address"] == 1, r

        # write_cert: into <state>/files only
        pem = open(broker.certs["ca.pem"]).read()
        r = c.ok({"cmd": "write_cert", "name": "mqtt-ca.pem", "cert": pem})
        path = os.path.join(sgd.state, "files", "mqtt-ca.pem")
        assert os.path.exists(path), r
        assert open(path).read().strip() == pem.strip()
        before = sorted(os.listdir(os.path.join(sgd.state, "files")))
        problems = []  # checked at the end, so that one finding does not hide the rest
        for name, cert in (("../x.pem", pem), ("a/b.pem", pem), ("/tmp/abs.pem", pem),
                           (".hidden.pem", pem), ("plain.pem", "hello, not a certificate"),
                           ("half.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n")):
            try:
                err = c.error({"cmd": "write_cert", "name": name, "cert": cert})
                print("  write_cert %r refused: %s" % (name, err.split(" | ")[0]))
            except AssertionError as e:
                problems.append("write_cert %r: %s" % (name, str(e).splitlines()[0][:300]))
        now = sorted(os.listdir(os.path.join(sgd.state, "files")))
        if now != before:
            problems.append("files folder now holds %r (before %r)" % (now, before))
        for p in (os.path.join(sgd.state, "x.pem"), os.path.join(sgd.workdir, "x.pem"),
                  os.path.join(sgd.state, "files", "a"), "/tmp/abs.pem"):
            assert not os.path.exists(p), p

        # reboot, upgrade_app: honest errors, nothing happens
        err = c.error({"cmd": "reboot"})
        print("  reboot: %s" % err)
        err = c.error({"cmd": "upgrade_app", "uri": "https://fw.invalid/SG.bin",
                       "cert": "mqtt-ca.pem"})
        print("  upgrade_app: %s" % err)
        assert sgd.proc.pid == pid
        alive(sgd)

        # detect_485_devices finds the 4 RS485 devices
        t0 = time.monotonic()
        r = c.ok({"cmd": "detect_485_devices", "baud_rate": 115200, "stop_bits": 1}, timeout=120)
        found = found_devices(r)
        print("  detect_485_devices: %s in %.1fs" % (sorted(found), time.monotonic() - t0))
        assert sorted(found) == [1, 2, 3, 4], r
        assert found[1].get("model") == "WM3M4C" and found[2].get("model") == "MC750", found
        assert found[3].get("model") == "Bicom" and found[4].get("model") == "IE14", found
        demo.wait_all_ok()
        alive(sgd)
        stop_clean(sgd)
        assert not problems, "\n".join(problems)
    finally:
        obs.close()
        demo.stop()
        broker.cleanup()


# ---- 3. malformed commands ----

MALFORMED_RAW = [
    b"not json", b"", b"[1, 2, 3]", b'"get_settings"', b"42", b'{"nodata": {}}',
    b'{"data": "get_settings"}', b'{"data": []}', b'{"data": {}}', b'{"data": {"cmd": 5}}',
    b'{"data": {"cmd": null}}', b'{"data": {"cmd": ["reboot"]}}',
    b'{"data": {"cmd": "get_settings"}} trailing',
    b'{"data": {"cmd": "\xff\xfe"}}', b'{"data": {"cmd": "get_set', b"\x00\x01\x02",
]
MALFORMED = [
    {"cmd": "format_disk"}, {"cmd": ""}, {"cmd": "GET_SETTINGS"},
    {"cmd": "measurements"}, {"cmd": "measurements", "addr": "zero"},
    {"cmd": "measurements", "addr": 99}, {"cmd": "measurements", "addr": -1},
    {"cmd": "measurements", "index": 17}, {"cmd": "counters", "index": 6},
    {"cmd": "counters", "addr": 1.5},
    {"cmd": "bicom", "addr": 3, "val": "explode"}, {"cmd": "bicom", "addr": 3, "val": 1},
    {"cmd": "bicom", "addr": [3], "val": "on"}, {"cmd": "bicom", "addr": 9, "val": "on"},
    {"cmd": "bicom", "addr": 3},
    {"cmd": "modbus_read", "modbus_address": 1, "reg": 50000, "no_regs": 1},
    {"cmd": "modbus_read", "modbus_address": 1, "reg": 20001, "no_regs": 1},
    {"cmd": "modbus_read", "modbus_address": 1, "reg": 30002, "no_regs": 0},
    {"cmd": "modbus_read", "modbus_address": 1, "reg": 30002, "no_regs": 200},
    {"cmd": "modbus_read", "modbus_address": 1, "reg": "30002", "no_regs": 1},
    {"cmd": "modbus_read", "modbus_address": 1, "reg": 30002, "no_regs": "1"},
    {"cmd": "modbus_read", "modbus_address": 99, "reg": 30002, "no_regs": 1},
    {"cmd": "modbus_read", "modbus_address": 300, "reg": 30002, "no_regs": 1},
    {"cmd": "modbus_read", "serial_number": "ZZ999999", "reg": 30002, "no_regs": 1},
    {"cmd": "modbus_read", "serial_number": 12345678, "reg": 30002, "no_regs": 1},
    {"cmd": "modbus_read", "reg": 30002, "no_regs": 1},
    {"cmd": "modbus_write_single", "modbus_address": 1, "reg": 40102, "value": 70000},
    {"cmd": "modbus_write_single", "modbus_address": 1, "reg": 40102, "value": -1},
    {"cmd": "modbus_write_single", "modbus_address": 1, "reg": 40102},
    {"cmd": "modbus_write_single", "modbus_address": 1, "reg": 30002, "value": 1},
    {"cmd": "modbus_write_single", "modbus_address": 1, "reg": 50000, "value": 1},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": [65, 66, 67]},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": [65, 300]},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": [65, -1]},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": "AB"},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": []},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": [65] * 300},
    {"cmd": "modbus_write_multi", "modbus_address": 1, "reg": 40102, "values": ["A", "B"]},
    {"cmd": "set_settings", "http_port": 0},
    {"cmd": "set_settings", "description": "Hacked", "http_port": "x"},
    {"cmd": "set_settings", "description": 12345},
    {"cmd": "set_settings", "no_such_key": 1},
    {"cmd": "set_settings", "serial_number": "XX000000"},
    {"cmd": "set_settings", "description": "Hacked", "rs485_type_1": 9},
    {"cmd": "detect_485_devices", "baud_rate": 12345},
    {"cmd": "detect_485_devices", "baud_rate": "fast"},
    {"cmd": "write_cert", "name": "x.pem"}, {"cmd": "write_cert", "cert": "x"},
    {"cmd": "write_cert", "name": 5, "cert": "x"},
]


@test
def test_malformed_commands():
    broker = Broker().start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        demo.start(FAST + link_settings(1, broker.plain) + push_settings(1, slots=(1, 4),
                                                                         ir_relay=False))
        sgd = demo.sgd
        sgd.http_on()
        base, cmd_topic = topics_of(sgd)
        obs.wait_msg(base + "/status/hello", timeout=20)
        demo.wait_all_ok()
        c = Cmd(obs, base, cmd_topic)
        before = sgd.ok("settings")["settings"]
        desc1 = demo.rs485.ctl("values 1")["description"]
        relay3 = demo.rs485.ctl("relay 3")["relay"]
        files_before = sorted(os.listdir(os.path.join(sgd.state, "files"))) \
            if os.path.isdir(os.path.join(sgd.state, "files")) else []
        huge = 200 * 1024
        cases = [("raw", p) for p in MALFORMED_RAW] + [("json", d) for d in MALFORMED] + [
            ("raw", b'{"data": {"cmd": "' + b"x" * huge + b'"}}'),
            ("raw", b"[" * huge),
            ("raw", b'{"data": {"cmd": "set_settings", "description": "' + b"y" * huge + b'"}}'),
            ("raw", os.urandom(huge)),
        ]
        failures = []
        t0 = time.monotonic()
        for kind, what in cases:
            try:
                if kind == "raw":
                    c.error(raw=what, timeout=10)
                else:
                    c.error(what, timeout=10)
            except AssertionError as e:
                failures.append("%s: %s" % ((what[:70] if kind == "raw" else json.dumps(what)),
                                            str(e).splitlines()[0][:200]))
            alive(sgd)
        print("  %d malformed commands in %.1fs" % (len(cases), time.monotonic() - t0))
        # nothing changed
        after = sgd.ok("settings")["settings"]
        changed = {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                   if before.get(k) != after.get(k)}
        assert demo.rs485.ctl("values 1")["description"] == desc1, "RS485 1 description changed"
        assert demo.rs485.ctl("relay 3")["relay"] == relay3, "Bicom 3 switched"
        now_files = sorted(os.listdir(os.path.join(sgd.state, "files"))) \
            if os.path.isdir(os.path.join(sgd.state, "files")) else []
        assert now_files == files_before, now_files
        # alive, connected, publishing
        alive(sgd)
        assert link_info(sgd, 1)["status"] == "Connected"
        mark = obs.mark()
        obs.wait_msg(base + "/device/0/measurements", mark, timeout=5,
                     what="periodic publishing after the malformed commands")
        c.ok({"cmd": "get_settings"})
        # a device that stops answering: "Error: …" on base/error, no stale values
        mark = obs.mark()
        demo.rs485.ctl("present 4 0")
        m_err = obs.wait_msg(base + "/error", mark, timeout=20,
                             what="an error for RS485 4 not responding")
        t_err = time.time()
        text = m_err.payload.decode()
        print("  device gone: %r" % text)
        assert text.startswith("Error: ") and "respond" in text and "RS485 4" in text, text
        err_c = c.error({"cmd": "measurements", "addr": 4})
        print("  measurements of it: %s" % err_c.split(" | ")[0])
        time.sleep(2)
        # (its availability going "offline" is not a value: that is wanted)
        stale = [m for m in obs.since(mark, prefix=base + "/device/4/") if m.t > t_err + 0.5
                 and not m.topic.endswith("/availability")]
        obs.wait_msg(base + "/device/4/availability", mark,
                     match=lambda m: m.payload == b"offline", timeout=10,
                     what="RS485 4 offline for Home Assistant")
        assert b"online" not in [m.payload for m in
                                 obs.since(mark, base + "/device/4/availability")]
        assert not stale, "%d publications of the silent device: %r" % (
            len(stale), stale[0].payload[:300])
        assert obs.since(mark, base + "/device/1/measurements"), "RS485 1 no longer published"
        demo.rs485.ctl("present 4 1")
        mark = obs.mark()
        obs.wait_msg(base + "/device/4/measurements", mark, timeout=40,
                     what="RS485 4 published again after it came back")
        errs = [m.payload for m in obs.since(0, base + "/error") if m.payload == m_err.payload]
        assert len(errs) == 1, "the not-responding error should come once: %r" % errs
        stop_clean(sgd)
        assert not changed, "settings changed: %r" % changed
        assert not failures, "%d of %d malformed commands without a proper error reply:\n  %s" % (
            len(failures), len(cases), "\n  ".join(failures))
    finally:
        obs.close()
        demo.stop()
        broker.cleanup()


def vm_hwm_kb(pid):
    """Peak resident memory of pid (VmHWM), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


@test
def test_oversized_command():
    """A command far over the size limit never enters sgd's memory: the link
    speaks MQTT v5 and announces a maximum packet size (256 KiB), so the
    broker drops a 32 MiB command for it; one a little over 64 KiB is still
    refused with an error reply; will, retained availability, QoS 1 and the
    subscriptions work over v5; the link keeps working."""
    broker = Broker().start()
    obs = Observer(broker.plain)
    work = tempfile.mkdtemp(prefix="sgd-mqtt-")
    sgd = Sgd(work, {})
    try:
        sgd.start()
        sgd.http_on()
        mark = obs.mark()
        sgd.ok("set", *link_settings(1, broker.plain))
        base, cmd_topic = topics_of(sgd)
        obs.wait_msg(base + "/status/hello", mark, timeout=20)
        wait_connected(sgd, 1)
        c = Cmd(obs, base, cmd_topic)
        # each command runs once (a v5 broker sends a copy per matching
        # subscription: overlapping ones would run it twice)
        mark = obs.mark()
        for _ in range(3):
            obs.publish(cmd_topic, json.dumps({"data": {"cmd": "get_settings"}}))
        obs.publish(cmd_topic, json.dumps({"data": {"cmd": "no_such_command"}}))
        # answered after every copy of the three
        obs.wait_for(lambda msgs: [m for m in obs.since(mark, base + "/status")
                                   if b"no_such_command" in m.payload], 15,
                     "the reply to the fourth command")
        n = sum(1 for m in obs.since(mark, base + "/status") if b'"get_settings"' in m.payload)
        assert n == 3, "3 commands got %d replies" % n
        err = c.error(raw=b'{"data": {"cmd": "' + b"x" * (100 * 1024) + b'"}}')
        assert "refused" in err, err
        pid = sgd.proc.pid
        before = vm_hwm_kb(pid)
        huge = 32 * 1024 * 1024
        mark = obs.mark()
        obs.publish(cmd_topic, b'{"data": {"cmd": "' + b"x" * huge + b'"}}', timeout=120)
        # answered, so the huge one (published before) was delivered or dropped
        assert c.ok({"cmd": "get_settings"}, timeout=60)
        grown = vm_hwm_kb(pid) - before
        print("  peak memory of sgd grew by %d KiB with a %d MiB command" % (grown, huge >> 20))
        assert grown < 12 * 1024, "sgd took a %d MiB command into memory (VmHWM +%d KiB)" % (
            huge >> 20, grown)
        big = [m for m in obs.since(mark) if m.topic in (base + "/status", base + "/error")
               and b"%d" % (huge + 20) in m.payload]
        assert not big, "the %d MiB command reached sgd: %r" % (huge >> 20, big[0].payload[:200])
        alive(sgd)
        assert link_info(sgd, 1)["status"] == "Connected"
        # the will over v5: a killed sgd is announced offline by the broker
        ret = retained(broker.plain, base + "/availability").get(base + "/availability")
        assert ret and ret.payload == b"online", ret
        mark = obs.mark()
        sgd.proc.kill()
        sgd.proc.wait()
        m = obs.wait_msg(base + "/availability", mark, timeout=90,
                         what="the last will after kill -9")
        assert m.payload == b"offline", m.payload
    finally:
        obs.close()
        sgd.stop()
        broker.cleanup()


class V311Broker(threading.Thread):
    """A broker that speaks MQTT 3.1.1 only: a v5 CONNECT gets the 3.1.1
    refusal "unacceptable protocol version"; a 3.1.1 one is accepted, and
    SUBSCRIBE, QoS 1 PUBLISH and PINGREQ are acknowledged. Records the
    protocol level of every CONNECT."""

    def __init__(self):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.levels, self.published = [], []
        self.start()

    @staticmethod
    def packet(s):
        head = s.recv(1)
        if not head:
            raise EOFError
        n, mult = 0, 1
        while True:
            b = s.recv(1)[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        body = b""
        while len(body) < n:
            chunk = s.recv(n - len(body))
            if not chunk:
                raise EOFError
            body += chunk
        return head[0], body

    def serve(self, s):
        t, body = self.packet(s)
        assert t >> 4 == 1 and body[:6] == b"\x00\x04MQTT", body[:8]
        self.levels.append(body[6])
        if body[6] != 4:
            s.sendall(b"\x20\x02\x00\x01")  # 3.1.1: unacceptable protocol version
            return
        s.sendall(b"\x20\x02\x00\x00")
        while True:
            t, body = self.packet(s)
            kind = t >> 4
            if kind == 8:  # SUBSCRIBE: grant QoS 1 to each filter
                n, off = 0, 2
                while off < len(body):
                    off += 2 + ((body[off] << 8) | body[off + 1]) + 1
                    n += 1
                s.sendall(bytes([0x90, 2 + n]) + body[:2] + b"\x01" * n)
            elif kind == 3:
                tl = (body[0] << 8) | body[1]
                self.published.append(body[2:2 + tl].decode())
                if (t >> 1) & 3:
                    s.sendall(b"\x40\x02" + body[2 + tl:4 + tl])
            elif kind == 12:
                s.sendall(b"\xd0\x00")
            elif kind == 14:
                return

    def run(self):
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            try:
                self.serve(s)
            except (EOFError, OSError, IndexError):
                pass
            finally:
                s.close()

    def close(self):
        self.srv.close()


@test
def test_v311_broker():
    """A broker that refuses MQTT v5 is spoken to in 3.1.1 from the next
    attempt on."""
    fake = V311Broker()
    work = tempfile.mkdtemp(prefix="sgd-mqtt-")
    sgd = Sgd(work, {})
    try:
        sgd.start()
        sgd.http_on()
        sgd.ok("set", *link_settings(1, fake.port))
        wait_connected(sgd, 1, timeout=30)
        assert fake.levels[:2] == [5, 4], fake.levels
        base, _ = topics_of(sgd)
        wait_until(lambda: base + "/status/hello" in fake.published, 10, "hello over 3.1.1")
        alive(sgd)
        stop_clean(sgd)
    finally:
        sgd.stop()
        fake.close()


# ---- 4. broker outage: buffered, replayed in order ----

def series(obs, topic):
    """(read_at_ms, receive time) of every message on topic, in arrival order."""
    return [(read_at(m), m.t) for m in obs.since(0, topic)]


def check_continuous(topic, s, t_lo_ms, t_hi_ms, max_gap_ms=2500):
    """read_at_ms non-decreasing in arrival order, and no gap over max_gap_ms
    between t_lo and t_hi."""
    reads = [r for r, _ in s]
    back = [(a, b) for a, b in zip(reads, reads[1:]) if b < a]
    assert not back, "%s: out of order (read_at_ms after read_at_ms): %r\n  arrivals " \
        "(read_at - kill @ arrival - kill, s): %s" % (topic, back[:5], " ".join(
            "%.2f@%.2f" % (r / 1000 - t_lo_ms / 1000, rt - t_lo_ms / 1000) for r, rt in s))
    inside = sorted(set(r for r in reads if t_lo_ms - 3000 <= r <= t_hi_ms + 3000))
    assert inside and inside[0] <= t_lo_ms and inside[-1] >= t_hi_ms, \
        "%s: readings do not cover %d..%d: %r" % (topic, t_lo_ms, t_hi_ms, inside)
    gaps = [(a, b) for a, b in zip(inside, inside[1:]) if b - a > max_gap_ms]
    assert not gaps, "%s: gaps in read_at_ms during the outage: %r" % (
        topic, [(a, b, b - a) for a, b in gaps])
    return len(reads) - len(set(reads))


@test
def test_outage_replay():
    broker = Broker(persistence=True).start()
    obs = Observer(broker.plain, client_id="outage-%d" % os.getpid(), persistent=True)
    demo = Demo()
    sgd2 = sim2 = None
    try:
        demo.start(FAST + link_settings(1, broker.plain) + push_settings(1, slots=(1, 2),
                                                                         ir_relay=False))
        sgd = demo.sgd
        sgd.http_on()
        base, _ = topics_of(sgd)
        obs.wait_msg(base + "/status/hello", timeout=20)
        demo.wait_all_ok()
        topics = ["%s/device/%d/%s" % (base, i, k) for i in (0, 1, 2)
                  for k in ("measurements", "counters")]
        for t in topics:
            obs.wait_msg(t, timeout=10)
        time.sleep(2)  # steady publishing; the broker autosaves the observer's session
        t_kill = time.time()
        broker.kill()
        li = wait_link(sgd, 1, lambda li: li["status"] != "Connected", 10, "not Connected")
        print("  broker killed: link 1 %r after %.1fs" % (li["status"], time.time() - t_kill))
        # during the outage: polling, REST, status
        r0 = json.loads(sgd.http("GET", "/api/measurement/0", raw=True)[2])["header"]["read_at_ms"]
        statuses = set()
        while time.time() - t_kill < 6:
            li = link_info(sgd, 1)
            statuses.add(li["status"])
            time.sleep(0.2)
        st, _, m = sgd.http("GET", "/api/measurement/0")
        assert st == 200 and m["header"]["read_at_ms"] > r0 + 2000, (r0, m["header"])
        demo.wait_all_ok(timeout=5)
        li = link_info(sgd, 1)
        print("  during the outage: statuses %s; buffered %s, dropped %s" % (
            sorted(statuses), li.get("buffered"), li.get("dropped")))
        assert all(s == "Connecting" or s.startswith("Error: ") for s in statuses), statuses
        assert li["buffered"] >= 20, li
        assert li["dropped"] == 0, li
        t_restart = time.time()
        m_restart = obs.mark()
        broker.start()
        li = wait_connected(sgd, 1, timeout=30)
        t_conn = time.time()
        print("  broker restarted: link 1 Connected again after %.1fs" % (t_conn - t_restart))
        obs.wait_msg(base + "/status/hello", m_restart, timeout=10, what="hello on reconnect")
        obs.wait_msg(base + "/availability", m_restart, match=lambda m: m.payload == b"online",
                     timeout=10, what="availability online on reconnect")
        wait_link(sgd, 1, lambda li: li["buffered"] == 0, 30, "buffer drained")
        print("  buffer drained %.1fs after the restart" % (time.time() - t_restart))
        for t in topics:
            obs.wait_msg(t, match=lambda m: m.t > t_conn and read_at(m) > t_conn * 1000,
                         timeout=10, what="live publication on %s after the outage" % t)
        dups = 0
        for t in topics:
            s = series(obs, t)
            if os.environ.get("SG_DEBUG"):
                print("  %s (read_at - kill @ arrival - kill, s): %s" % (t[len(base):], " ".join(
                    "%.2f@%.2f" % (r / 1000 - t_kill, rt - t_kill) for r, rt in s
                    if -3 < r / 1000 - t_kill < 9)))
            dups += check_continuous(t, s, int(t_kill * 1000), int(t_restart * 1000))
            replayed = [r for r, rt in s if t_kill * 1000 < r < t_restart * 1000]
            assert len(replayed) >= 4, (t, replayed)
            late = [r for r, rt in s if t_kill * 1000 + 500 < r < t_restart * 1000 and
                    rt > t_restart]
            assert late, "%s: nothing made during the outage arrived after it" % t
            print("  %s: %d publications made during the outage, delivered after it with "
                  "their own read_at_ms" % (t[len(base):], len(replayed)))
        print("  duplicates (same read_at_ms twice): %d; broker redeliveries to the observer "
              "ignored: %d" % (dups, obs.redelivered))
        # at least once may mean twice (a batch cut by the outage is sent again), never more
        copies = {}
        for t in topics:
            for r, _ in series(obs, t):
                copies[(t, r)] = copies.get((t, r), 0) + 1
        many = {"%s@%d" % (t[len(base):], r): n for (t, r), n in copies.items() if n > 2}
        assert not many, "publications that arrived more than twice: %r" % many
        alive(sgd)
        li = link_info(sgd, 1)
        assert li["buffered"] == 0 and li["dropped"] == 0, li

        # the buffer is on disk: broker away, sgd stopped with publications
        # buffered, broker back, sgd started again -> they arrive
        t_kill = time.time()
        broker.kill()
        wait_link(sgd, 1, lambda li: li["buffered"] >= 12, 15, "buffering")
        t_stop = time.time()
        held = link_info(sgd, 1)["buffered"]
        stop_clean(sgd)
        broker.start()
        mark = obs.mark()
        t_start = time.time()
        sgd.start()
        obs.wait_msg(base + "/status/hello", mark, timeout=20, what="hello after the restart")
        wait_link(sgd, 1, lambda li: li["buffered"] == 0, 30, "buffer drained after restart")
        for t in topics:  # in order: once a live one is there, the replayed ones are too
            obs.wait_msg(t, mark, match=lambda m: read_at(m) > t_start * 1000, timeout=10,
                         what="live publication on %s after the restart" % t)
        # the newest reading of each topic that arrived before sgd was stopped
        last = {t: max(read_at(m) for m in obs.since(0, t) if m.seq < mark) for t in topics}
        kept = {(m.topic, read_at(m)) for m in obs.since(mark) if m.topic in last and
                last[m.topic] < read_at(m) < t_stop * 1000}
        print("  sgd stopped with %d buffered while the broker was away: %d of them arrived "
              "after its restart" % (held, len(kept)))
        if os.environ.get("SG_DEBUG"):
            for t in topics:
                print("  %s: last before kill %.2f; after restart %s" % (
                    t[len(base):], last[t] / 1000 - t_kill, " ".join(
                        "%.2f" % (read_at(m) / 1000 - t_kill) for m in obs.since(mark, t))))
            print("  stop at %.2f" % (t_stop - t_kill))
            print("\n".join("  log: " + ln for ln in sgd.logtext().splitlines()
                            if "MQTT" in ln or "mqtt" in ln or "outbox" in ln))
        # (+2: a periodic publication may fall between reading the status and the stop)
        assert held <= len(kept) <= held + 2, "%d buffered at the stop, %d arrived" % (
            held, len(kept))
        for t in topics:
            reads = [read_at(m) for m in obs.since(0, t)]
            assert reads == sorted(reads), (t, "out of order after the restart")
        stop_clean(sgd)
        demo.stop()

        # bounded buffer: mqtt_buffer_max = 10, oldest dropped first, counted
        work = tempfile.mkdtemp(prefix="sgd-mqtt-")
        sim2 = Sim(work, "left_ir", ["IE38:33"], baud=19200)
        sgd2 = Sgd(work, {"left": sim2.link}, extra_conf="mqtt_buffer_max = 10\n")
        mark = obs.mark()
        sgd2.start()
        sgd2.ok("set", "left_ir_enabled=1", "ir_counter_addr=33", *(
            FAST + link_settings(1, broker.plain, roottopic="bounded/gw") +
            ["leftir_pushlink=1", "leftir_pushintv=1"]))
        sgd2.http_on()
        base = "bounded/gw/publish"
        obs.wait_msg(base + "/status/hello", mark, timeout=20)
        topics = [base + "/device/0/measurements", base + "/device/0/counters"]
        for t in topics:
            obs.wait_msg(t, mark, timeout=10)
        time.sleep(2)
        t_kill = time.time()
        broker.kill()
        wait_link(sgd2, 1, lambda li: li["dropped"] > 0, 20, "dropping")
        most = 0
        t_end = time.time() + 4
        while time.time() < t_end:
            li = link_info(sgd2, 1)
            most = max(most, li["buffered"])
            time.sleep(0.2)
        print("  bounded: during the outage buffered at most %d, dropped %d" % (most,
                                                                                li["dropped"]))
        assert most == 10, "buffer of 10 held %d" % most
        t_restart = time.time()
        broker.start()
        wait_connected(sgd2, 1, timeout=30)
        t_conn = time.time()
        li = wait_link(sgd2, 1, lambda li: li["buffered"] == 0, 30, "buffer drained")
        dropped = li["dropped"]
        for t in topics:
            obs.wait_msg(t, mark, match=lambda m: read_at(m) > t_conn * 1000, timeout=10)
        # the last reading made before the kill, per topic (it may have been in
        # flight then and arrive only after the reconnect: QoS 1, not the buffer)
        before = {t: max(r for r, rt in obs_since_series(obs, t, mark) if r < t_kill * 1000)
                  for t in topics}
        # what waited in the buffer: made after the last delivery before the kill and
        # before the link came back (publications keep going into the buffer until then)
        replayed = []
        for t in topics:
            replayed += [(r, t) for r, rt in obs_since_series(obs, t, mark)
                         if before[t] < r < t_conn * 1000]
        made = 2 * (t_conn - t_kill)
        if os.environ.get("SG_DEBUG"):
            for t in topics:
                print("  %s: %s" % (t, " ".join("%.1f@%.1f" % (r / 1000 - t_kill, rt - t_kill)
                                              for r, rt in obs_since_series(obs, t, mark))))
        print("  bounded: broker away %.1f s, link back after %.1f s; of ~%.0f publications "
              "made meanwhile %d arrived, %d dropped" % (t_restart - t_kill, t_conn - t_kill,
                                                       made, len(replayed), dropped))
        assert dropped >= 5, li
        # 10 held by the buffer (its bound is checked above), + up to one per topic at
        # each end: in flight at the kill (QoS 1), published around the reconnect (a
        # reading goes out up to 1 s after its read_at_ms: time cannot separate them)
        assert 8 <= len(replayed) <= 14, \
            "%d buffered publications arrived, the buffer held 10" % len(replayed)
        assert abs(len(replayed) + dropped - made) <= 6, (len(replayed), dropped, made)
        # the oldest are the ones missing: what arrived is the newest, contiguous tail
        for t in topics:
            reads = sorted(r for r, tt in replayed if tt == t)
            assert reads, "%s: nothing of the outage arrived" % t
            assert reads[0] - before[t] > 2500, \
                "%s: the first replayed reading (%d) follows the last one before the kill " \
                "(%d): the oldest were not the ones dropped" % (t, reads[0], before[t])
            gaps = [(a, b) for a, b in zip(reads, reads[1:]) if b - a > 2500]
            assert not gaps, "%s: the kept publications are not the newest: gaps %r" % (t, gaps)
            assert reads[-1] > t_conn * 1000 - 2500, (t, reads[-1], t_conn)
        alive(sgd2)
        stop_clean(sgd2)
    finally:
        obs.close()
        demo.stop()
        if sgd2:
            sgd2.stop()
        if sim2:
            sim2.stop()
        broker.cleanup()


def obs_since_series(obs, topic, mark):
    return [(read_at(m), m.t) for m in obs.since(mark, topic)]


# ---- 5. TLS and mutual TLS ----

def copy_files(sgd, certs, names):
    d = os.path.join(sgd.state, "files")
    os.makedirs(d, exist_ok=True)
    for n in names:
        shutil.copy(certs[n], os.path.join(d, n))


@test
def test_tls_and_mtls():
    broker = Broker().start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        copy_files(demo.sgd, broker.certs, ("ca.pem", "wrong-ca.pem", "client.pem", "client.key",
                                            "wrong-client.pem", "wrong-client.key"))
        demo.start(FAST + link_settings(1, broker.tls, tls=1, ca_file="ca.pem")
                   + ["leftir_pushlink=1", "leftir_pushintv=1"])
        sgd = demo.sgd
        sgd.http_on()
        base, _ = topics_of(sgd)
        obs.wait_msg(base + "/status/hello", timeout=20, what="hello over TLS")
        wait_connected(sgd, 1)
        obs.wait_msg(base + "/device/0/measurements", timeout=10)
        print("  TLS (server verified with ca.pem): Connected, publishing")

        def other_fine():
            alive(sgd)
            assert link_info(sgd, 1)["status"] == "Connected", link_info(sgd, 1)
            st, _, _ = sgd.http("GET", "/api/measurement/0")
            assert st == 200
        base2 = "sgdtest/tls2/publish"
        cases = [
            ("wrong CA", dict(port=broker.tls, tls=1, ca_file="wrong-ca.pem"),
             ("certificate", "verif", "tls", "ssl")),
            ("mutual TLS, right cert + password", dict(
                port=broker.mtls, tls=2, ca_file="ca.pem", cert_file="client.pem",
                key_file="client.key", username=USER, password=PASSWORD), None),
            ("mutual TLS, client cert of another CA", dict(
                port=broker.mtls, tls=2, ca_file="ca.pem", cert_file="wrong-client.pem",
                key_file="wrong-client.key", username=USER, password=PASSWORD), ()),
            ("mutual TLS, wrong password", dict(
                port=broker.mtls, tls=2, ca_file="ca.pem", cert_file="client.pem",
                key_file="client.key", username=USER, password="not-" + PASSWORD),
             ("authoris", "authoriz")),
            ("mutual TLS, no client certificate", dict(
                port=broker.mtls, tls=1, ca_file="ca.pem", username=USER, password=PASSWORD),
             ()),
            ("plain MQTT to the TLS port", dict(port=broker.tls, tls=0), ()),
        ]
        failures = []
        for name, kw, words in cases:
            port = kw.pop("port")
            tls = kw.pop("tls")
            # through "Disabled", so that the status read next is this case's
            sgd.ok("set", "push2_protocol=0")
            wait_link(sgd, 2, lambda li: li["status"] == "Disabled", 10, "Disabled")
            mark = obs.mark()
            sgd.ok("set", *link_settings(2, port, tls=tls, roottopic="sgdtest/tls2", **dict({
                "ca_file": "", "cert_file": "", "key_file": "", "username": "",
                "password": ""}, **kw)))
            try:
                if words is None:
                    obs.wait_msg(base2 + "/status/hello", mark, timeout=20,
                                 what="hello over %s" % name)
                    wait_connected(sgd, 2)
                    print("  %s: Connected" % name)
                else:
                    li = wait_error(sgd, 2, timeout=20)
                    print("  %s: %s" % (name, li["status"]))
                    if words:
                        assert any(w in li["status"].lower() for w in words), \
                            "%s: status %r does not mention %s" % (name, li["status"],
                                                                  "/".join(words))
                    assert not obs.since(mark, base2 + "/status/hello"), name
            except AssertionError as e:
                failures.append("%s: %s" % (name, str(e).splitlines()[0]))
            other_fine()
        stop_clean(sgd)
        assert not failures, "\n".join(failures)
    finally:
        obs.close()
        demo.stop()
        broker.cleanup()


# ---- 6. Home Assistant discovery ----

class Tmpl:
    """A tiny evaluator for the value templates HA configs use here:
    {{ value_json.a.b[0].c.value }}, {{ (value_json.x.value / 1000) | round(3) }},
    '| float', '| int', '* N', '+ N', '- N', {{ value }}."""
    TOK = re.compile(r"\s*(?:(\d+\.\d*|\d+)|([A-Za-z_][A-Za-z_0-9]*)|('[^']*'|\"[^\"]*\")|(.))")

    def __init__(self, text):
        m = re.fullmatch(r"\s*\{\{(.*)\}\}\s*", text, re.S)
        if not m:
            raise ValueError("not a single {{ expression }}: %r" % text)
        self.toks = [t for t in self.TOK.findall(m.group(1).strip()) if any(t)]
        self.i = 0
        self.text = text

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("", "", "", "")

    def take(self, op=None):
        t = self.peek()
        if op is not None and t[3] != op:
            raise ValueError("expected %r in %r" % (op, self.text))
        self.i += 1
        return t

    def render(self, payload):
        self.i = 0
        self.value = payload.decode("utf-8")
        try:
            self.json = json.loads(self.value)
        except ValueError:
            self.json = None
        v = self.expr()
        if self.i != len(self.toks):
            raise ValueError("unsupported template %r" % self.text)
        return v

    # Jinja precedence: filters bind to their operand, then * /, then + -.
    def expr(self):
        v = self.mul()
        while self.peek()[3] in ("+", "-"):
            op = self.take()[3]
            w = self.mul()
            v = v + w if op == "+" else v - w
        return v

    def mul(self):
        v = self.unary()
        while self.peek()[3] in ("*", "/"):
            op = self.take()[3]
            w = self.unary()
            v = v * w if op == "*" else v / w
        return v

    def unary(self):
        v = self.primary()
        while self.peek()[3] == "|":
            self.take()
            name = self.take()[1]
            args = []
            if self.peek()[3] == "(":
                self.take()
                while self.peek()[3] != ")":
                    args.append(self.expr())
                    if self.peek()[3] == ",":
                        self.take()
                self.take(")")
            if name == "round":
                v = round(float(v), int(args[0]) if args else 0)
            elif name == "float":
                v = float(v)
            elif name == "int":
                v = int(float(v))
            else:
                raise ValueError("unsupported filter %r in %r" % (name, self.text))
        return v

    def primary(self):
        num, ident, s, op = self.take()
        if num:
            return float(num)
        if op == "(":
            v = self.expr()
            self.take(")")
            return v
        if ident == "value":
            return self.value
        if ident != "value_json":
            raise ValueError("unsupported term %r in %r" % (ident or op or s, self.text))
        v = self.json
        while self.peek()[3] in (".", "["):
            if self.take()[3] == ".":
                v = v[self.take()[1]]
            else:
                n, _, s2, _ = self.take()
                v = v[int(n)] if n else v[s2[1:-1]]
                self.take("]")
        return v


HA_UNITS = {"voltage": ("V", "mV"), "current": ("A", "mA"), "power": ("W", "kW"),
            "reactive_power": ("var",), "apparent_power": ("VA",), "frequency": ("Hz",),
            "power_factor": (None, "%"), "temperature": ("°C",),
            "energy": ("Wh", "kWh", "MWh"), "reactive_energy": ("varh", "kvarh")}


@test
def test_ha_discovery():
    broker = Broker().start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        demo.start(FAST + link_settings(1, broker.plain) + push_settings(1))
        sgd = demo.sgd
        sgd.http_on()
        base, cmd_topic = topics_of(sgd)
        obs.wait_msg(base + "/status/hello", timeout=20)
        demo.wait_all_ok()
        devs = sgd.ok("devices")["devices"]
        for i in (0, 1, 2, 4):
            obs.wait_msg("%s/device/%d/measurements" % (base, i), timeout=10)
            obs.wait_msg("%s/device/%d/counters" % (base, i), timeout=10)
        # the configs: retained, seen by a client that comes later
        cfgs = wait_until(lambda: (lambda r: r if len(r) > 40 else None)(
            retained(broker.plain, "homeassistant/#")), 20, "HA discovery configs")
        print("  %d retained discovery configs" % len(cfgs))
        parsed = {}
        uids = set()
        problems = []
        for topic, m in sorted(cfgs.items()):
            assert re.match(r"^homeassistant/(sensor|switch|binary_sensor)/[^/]+(/[^/]+)?/config$",
                            topic), topic
            c = json.loads(m.payload)
            assert isinstance(c, dict), (topic, c)
            parsed[topic] = c
            comp = topic.split("/")[1]
            for k in ("unique_id", "state_topic"):
                if not (isinstance(c.get(k), str) and c[k]):
                    problems.append("%s: no %s" % (topic, k))
            if c.get("unique_id") in uids:
                problems.append("%s: duplicate unique_id %s" % (topic, c.get("unique_id")))
            uids.add(c.get("unique_id"))
            if "name" not in c and "device" not in c:
                problems.append("%s: neither name nor device" % topic)
            d = c.get("device")
            if d is not None and not (d.get("identifiers") or d.get("connections")):
                problems.append("%s: device without identifiers" % topic)
            avail = c.get("availability_topic") or \
                [a.get("topic") for a in c.get("availability", [])][:1]
            avail = avail[0] if isinstance(avail, list) and avail else avail
            # a connectivity sensor of the link itself reads the availability topic
            own = comp == "binary_sensor" and c.get("state_topic") == base + "/availability"
            if avail != base + "/availability" and not own:
                problems.append("%s: availability %r" % (topic, avail))
            if comp == "sensor":
                dc, unit = c.get("device_class"), c.get("unit_of_measurement")
                if dc in HA_UNITS and unit not in HA_UNITS[dc]:
                    problems.append("%s: device_class %s with unit %r" % (topic, dc, unit))
                if dc == "energy" and c.get("state_class") not in ("total_increasing", "total"):
                    problems.append("%s: energy with state_class %r" % (topic,
                                                                        c.get("state_class")))
                if dc != "energy" and c.get("state_class") not in ("measurement",
                                                                  "total_increasing", "total"):
                    problems.append("%s: state_class %r" % (topic, c.get("state_class")))
                if unit in ("V", "A", "W", "var", "VA", "Hz", "kWh") and dc is None and \
                        unit != "var":
                    problems.append("%s: unit %s without device_class" % (topic, unit))
        assert not problems, "%d problems:\n  %s" % (len(problems), "\n  ".join(problems[:30]))
        # value templates render against the state payloads
        rendered = 0
        per_dev = {}
        for topic, c in parsed.items():
            if not topic.startswith("homeassistant/sensor/"):
                continue
            st_msgs = obs.since(0, c["state_topic"])
            assert st_msgs, "%s: nothing published on its state_topic %s" % (topic,
                                                                             c["state_topic"])
            tm = c.get("value_template")
            payload = st_msgs[-1].payload
            v = Tmpl(tm).render(payload) if tm else payload.decode()
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise AssertionError("%s: template %r renders %r" % (topic, tm, v))
            assert math.isfinite(v), (topic, v)
            dc, unit = c.get("device_class"), c.get("unit_of_measurement")
            ranges = {"V": (200, 260), "Hz": (49, 51), "°C": (0, 80), "kWh": (0.001, 1e7)}
            if unit in ranges and dc in ("voltage", "frequency", "temperature", "energy"):
                lo, hi = ranges[unit]
                assert lo <= v <= hi, "%s: %r renders %r %s" % (topic, tm, v, unit)
            mt = re.match(r".*/device/(\d+)/(measurements|counters)$", c["state_topic"])
            assert mt, (topic, c["state_topic"])
            per_dev.setdefault(int(mt.group(1)), set()).add((dc, unit, c.get("state_class")))
            rendered += 1
        print("  %d sensor templates rendered against the published state" % rendered)
        for i in (0, 1, 2, 4):
            have = per_dev.get(i, set())
            for dc in ("power", "voltage", "current", "frequency", "power_factor"):
                assert any(h[0] == dc for h in have), "device %d has no %s sensor: %r" % (
                    i, dc, sorted(have, key=str))
            assert ("energy", "kWh", "total_increasing") in have, \
                "device %d has no kWh energy counter (total_increasing)" % i
        # an energy counter template gives the REST value in kWh
        for topic, c in parsed.items():
            if c.get("device_class") == "energy" and "/device/0/" in c.get("state_topic", ""):
                m = obs.since(0, c["state_topic"])[-1]
                v = float(Tmpl(c["value_template"]).render(m.payload))
                vals = [x["value"] / 1000 for kind in ("non_resettable", "resettable")
                        for x in jpay(m)["counters"][kind] if x["unit"] == "Wh"]
                assert any(abs(v - x) <= 0.0005 + 1e-9 * x for x in vals), (topic, v, vals)
                break
        # Bicom switches: command topic switches the simulator's relay
        switches = {t: c for t, c in parsed.items() if t.startswith("homeassistant/switch/")}
        assert len(switches) >= 2, sorted(switches)
        sims = {}
        for t, c in switches.items():
            for k in ("command_topic", "state_topic"):
                assert isinstance(c.get(k), str) and c[k], (t, k, c)
            assert c["command_topic"].startswith(cmd_topic + "/"), (t, c["command_topic"])
            mt = re.match(r".*/bicom/(\d+)/set$", c["command_topic"])
            assert mt, (t, c["command_topic"])
            addr = int(mt.group(1))
            sims[addr] = (t, c)
        assert sorted(sims) == [0, 3], sorted(sims)
        for addr, (t, c) in sorted(sims.items()):
            sim, saddr = (demo.right, RIGHT_IR_BICOM_ADDR) if addr == 0 else (demo.rs485, 3)
            on, off = c.get("payload_on", "ON"), c.get("payload_off", "OFF")
            s_on, s_off = c.get("state_on", on), c.get("state_off", off)
            for pl, want, st in ((on, "on", s_on), (off, "off", s_off), (on, "on", s_on)):
                mark = obs.mark()
                obs.publish(c["command_topic"], pl)
                wait_until(lambda: sim.ctl("relay %d" % saddr)["relay"] == want, 10,
                           "Bicom %d %s through %s" % (addr, want, c["command_topic"]))
                obs.wait_msg(c["state_topic"], mark, match=lambda m: m.payload == st.encode(),
                             timeout=10, what="state %s on %s" % (st, c["state_topic"]))
            ret = retained(broker.plain, c["state_topic"], settle=0.5)
            assert ret.get(c["state_topic"]) and ret[c["state_topic"]].payload == s_on.encode(), \
                ("state not retained", c["state_topic"], ret)
            print("  Bicom %d switched on/off/on through %s" % (addr, c["command_topic"]))
        # homeassistant/status online: announce again
        mark = obs.mark()
        obs.publish("homeassistant/status", "online")
        obs.wait_for(lambda msgs: len({m.topic for m in msgs[mark:]
                                       if m.topic in parsed and m.payload}) == len(parsed),
                     15, "every config again after homeassistant/status online")
        print("  re-announced %d configs after homeassistant/status online" % len(parsed))
        # ha_discovery=0: no announcement
        sgd.ok("set", "ha_discovery=0")
        time.sleep(0.5)
        mark = obs.mark()
        obs.publish("homeassistant/status", "online")
        time.sleep(2)
        again = [m for m in obs.since(mark, prefix="homeassistant/") if m.payload and
                 m.topic.endswith("/config")]
        assert not again, "ha_discovery=0 but %d configs announced" % len(again)
        # clean stop: "offline"
        mark = obs.mark()
        stop_clean(sgd)
        obs.wait_msg(base + "/availability", mark, match=lambda m: m.payload == b"offline",
                     timeout=10, what="'offline' at a clean stop")
    finally:
        obs.close()
        demo.stop()
        broker.cleanup()


def ha_configs(port):
    """The live (non-empty) retained discovery configs: {topic: dict}."""
    return {t: json.loads(m.payload) for t, m in retained(port, "homeassistant/#").items()
            if m.payload}


@test
def test_ha_states_and_availability():
    """Home Assistant as of 2026: default_entity_id (no object_id); only what
    a link publishes is announced; the state follows an announcement and HA's
    birth message at once (push interval 10 min here); a silent device goes
    offline in HA and comes back."""
    broker = Broker().start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        # default push links (0): the link publishes no device
        demo.start(FAST + link_settings(1, broker.plain))
        sgd = demo.sgd
        sgd.http_on()
        base, _ = topics_of(sgd)
        obs.wait_msg(base + "/status/hello", timeout=20)
        demo.wait_all_ok()
        obs.wait_for(lambda msgs: any(m.topic.startswith("homeassistant/") for m in msgs), 20,
                     "the announcement")
        cfgs = ha_configs(broker.plain)
        print("  push link 0: %d live configs: %s" % (len(cfgs), sorted(cfgs)))
        assert all(t.startswith("homeassistant/binary_sensor/") for t in cfgs), sorted(cfgs)
        assert not obs.since(0, prefix=base + "/device/"), "a device published on push link 0"
        # the Left IR meter pushed on link 1 every 10 minutes: announced, and
        # its state, availability sent with the announcement
        mark = obs.mark()
        sgd.ok("set", "leftir_pushlink=1", "leftir_pushintv=600")
        for doc in ("measurements", "counters"):
            obs.wait_msg("%s/device/0/%s" % (base, doc), mark, timeout=15,
                         what="device 0 %s right after the announcement" % doc)
        obs.wait_msg(base + "/device/0/availability", mark, match=lambda m: m.payload == b"online",
                     timeout=10)
        cfgs = wait_until(lambda: (lambda c: c if len(c) > 40 else None)(
            ha_configs(broker.plain)), 20, "the configs of device 0")
        devtopics = set()
        for t, c in cfgs.items():
            comp = t.split("/")[1]
            assert "object_id" not in c, (t, c)
            eid = c.get("default_entity_id")
            assert isinstance(eid, str) and re.fullmatch(r"[a-z_]+\.[a-z0-9_]+", eid), (t, eid)
            assert eid.split(".")[0] == comp, (t, eid)
            if comp == "binary_sensor":
                continue
            st = c["state_topic"]
            assert re.match(re.escape(base) + r"/device/0/(measurements|counters)$", st), (t, st)
            av = [a["topic"] for a in c.get("availability", [])]
            assert av == [base + "/availability", base + "/device/0/availability"], (t, av)
            assert c.get("availability_mode") == "all", (t, c)
            assert "availability_topic" not in c, (t, c)
            devtopics.add(st)
        print("  %d configs for device 0, default_entity_id e.g. %s" % (
            len(cfgs), next(c["default_entity_id"] for t, c in cfgs.items() if "/sensor/" in t)))
        # every state topic already has a value (the interval is 10 min)
        for st in devtopics:
            assert obs.since(mark, st), "nothing on %s after the announcement" % st
        # HA restarts: its birth message brings the state again
        mark = obs.mark()
        obs.publish("homeassistant/status", "online")
        for doc in ("measurements", "counters"):
            obs.wait_msg("%s/device/0/%s" % (base, doc), mark, timeout=15,
                         what="device 0 %s after homeassistant/status online" % doc)
        # a silent meter goes offline in HA, and comes back
        mark = obs.mark()
        demo.left.ctl("fault 33 noanswer")
        m = obs.wait_msg(base + "/device/0/availability", mark,
                         match=lambda m: m.payload == b"offline", timeout=30,
                         what="device 0 offline")
        assert m.retain or retained(broker.plain, base + "/device/0/availability")[
            base + "/device/0/availability"].payload == b"offline"
        print("  silent meter: device/0/availability offline")
        mark = obs.mark()
        demo.left.ctl("fault 33 none")
        obs.wait_msg(base + "/device/0/availability", mark,
                     match=lambda m: m.payload == b"online", timeout=30, what="device 0 online")
        print("  answering again: online")
        # push link back to 0: the device's entities are removed
        sgd.ok("set", "leftir_pushlink=0")
        wait_until(lambda: all("/binary_sensor/" in t for t in ha_configs(broker.plain)), 20,
                   "device 0's configs removed")
        stop_clean(sgd)
    finally:
        obs.close()
        demo.stop()
        broker.cleanup()


# ---- 7. Standard TCP push ----

class XmlServer:
    """TCP server collecting one XML document per connection; answers "OK\\n"
    unless silent (then it holds the connection without a word)."""

    def __init__(self, silent=False):
        self.silent = silent
        self.docs = []  # (time, bytes)
        self.conns = 0
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        self.port = self.srv.getsockname()[1]
        self.held = []
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                s, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.conns += 1
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(0.2)
        buf = b""
        try:
            while not self.stop_ev.is_set():
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                buf += chunk
                if buf.rstrip().endswith(b"</push>"):
                    with self.lock:
                        self.docs.append((time.time(), buf))
                    if self.silent:
                        self.held.append(s)
                        while not self.stop_ev.is_set():
                            try:
                                if not s.recv(65536):
                                    break
                            except socket.timeout:
                                continue
                        return
                    s.sendall(b"OK\n")
                    buf = b""
        except OSError:
            pass
        finally:
            s.close()

    def since(self, t):
        with self.lock:
            return [d for tt, d in self.docs if tt >= t]

    def close(self):
        self.stop_ev.set()
        self.srv.close()


def text_tol(s):
    """Half a unit in the last printed digit of s."""
    return 0.5 * 10 ** decimal.Decimal(s.strip()).as_tuple().exponent


def xml_vs_rest(sgd, root):
    """Compare every <m>/<c> of every <device> with REST; returns the count."""
    n = 0
    for dev in root.findall("device"):
        index = int(dev.get("index"))
        _, _, meas = sgd.http("GET", "/api/measurement/%d" % index)
        _, _, ctrs = sgd.http("GET", "/api/counter/%d" % index)
        ms = dev.findall("m")
        assert ms, "device %d: no <m>" % index
        names = set()
        for m in ms:
            name, ph, unit = m.get("name"), m.get("phase", "0"), m.get("unit")
            mm = meas["measurements"]
            phase = int(ph) if ph in ("0", "1", "2", "3") else None
            if name in ("Frequency", "Temperature", "Tariff") and name in mm:
                want = mm.get(name)
            elif ph in ("12", "23", "31") and "PhaseToPhase" in mm:
                want = mm["PhaseToPhase"][("12", "23", "31").index(ph)].get(name)
            elif phase and phase <= len(mm["Phases"]) and name in mm["Phases"][phase - 1]:
                want = mm["Phases"][phase - 1][name]
            elif phase == 0 and name in mm.get("Total", {}):
                want = mm["Total"][name]
            else:
                want = None
            if want is None:
                raise AssertionError("device %d: <m name=%r phase=%r> has no REST counterpart"
                                     % (index, name, phase))
            wv = want["value"] if isinstance(want, dict) else want
            wu = want.get("unit") if isinstance(want, dict) else None
            assert abs(float(m.text) - wv) <= text_tol(m.text) + 1e-9 * abs(wv), \
                "device %d %s/%d: XML %s, REST %r" % (index, name, phase, m.text, wv)
            if wu is not None and unit is not None:
                assert unit == wu, (index, name, ph, unit, wu)
            if isinstance(want, dict) and "load" in want:
                assert m.get("load") == want["load"], (index, name, ph, m.attrib, want)
            names.add((name, phase))
            n += 1
        for p, ph in enumerate(meas["measurements"]["Phases"], 1):
            for k in ("U", "I", "P"):
                if k in ph:
                    assert (k, p) in names, "device %d: no <m name=%s phase=%d>" % (index, k, p)
        rest_c = {c["name"]: c for kind in ("non_resettable", "resettable")
                  for c in ctrs["counters"][kind]}
        cs = dev.findall("c")
        assert len(cs) == len(rest_c), "device %d: %d <c>, REST has %d" % (index, len(cs),
                                                                          len(rest_c))
        for c in cs:
            want = rest_c.get(c.get("name"))
            assert want, "device %d: <c name=%r> not in REST" % (index, c.get("name"))
            assert abs(float(c.text) - want["value"]) <= text_tol(c.text) + 1e-9 * want["value"], \
                (index, c.get("name"), c.text, want["value"])
            if c.get("unit"):
                assert c.get("unit") == want["unit"], (index, c.attrib, want)
            n += 1
    return n


@test
def test_standard_tcp():
    srv = XmlServer()
    silent = XmlServer(silent=True)
    demo = Demo()
    try:
        demo.start(FAST + ["push1_protocol=0"]
                   + link_settings(2, srv.port, proto=2) + ["push2_resp_time=2"] + push_settings(2, slots=(1, 2, 4), ir_relay=False))
        sgd = demo.sgd
        sgd.http_on()
        demo.wait_all_ok()
        li = wait_connected(sgd, 2, timeout=20, prefix=True)
        print("  link 2: %s" % li["status"])
        assert li["protocol"] == "Standard TCP", li
        assert link_info(sgd, 1)["status"] == "Disabled", link_info(sgd, 1)
        t0 = time.time()
        time.sleep(4)
        docs = srv.since(t0)
        roots = [ET.fromstring(d) for d in docs]
        serial = api(sgd)["device"]["serial_number"]
        by_index = {}
        for r in roots:
            assert r.tag == "push", r.tag
            assert r.get("gateway") == serial, r.attrib
            devs = r.findall("device")
            assert len(devs) == 1, "one device per document: %d" % len(devs)
            by_index.setdefault(int(devs[0].get("index")), []).append(r)
        print("  %d documents in 4 s: %s" % (len(docs), {k: len(v) for k, v in
                                                        sorted(by_index.items())}))
        assert sorted(by_index) == [0, 1, 2, 4], sorted(by_index)
        assert all(len(v) >= 3 for v in by_index.values()), by_index
        # values: frozen simulators, so the XML and REST hold the same reading
        frozen = freeze(demo)
        time.sleep(max(0.0, frozen / 1000 - time.time()) + 2.5)
        t1 = time.time()
        wait_until(lambda: {int(ET.fromstring(d).find("device").get("index"))
                            for d in srv.since(t1)} >= {0, 1, 2, 4}, 10, "fresh documents")
        n = 0
        for d in srv.since(t1):
            n += xml_vs_rest(sgd, ET.fromstring(d))
        print("  %d XML values equal REST" % n)
        assert n > 60, n
        # a server that never answers: error with the timeout
        sgd.ok("set", "mqtt2_port=%d" % silent.port)
        t2 = time.time()
        li = wait_error(sgd, 2, timeout=20)
        print("  silent server: %r after %.1fs" % (li["status"], time.time() - t2))
        assert any(w in li["status"].lower() for w in ("timeout", "timed out", "no answer",
                                                       "no response")), li
        assert silent.conns >= 1 and silent.since(t2), "the silent server got nothing"
        alive(sgd)
        st, _, _ = sgd.http("GET", "/api/measurement/0")
        assert st == 200
        # and back
        sgd.ok("set", "mqtt2_port=%d" % srv.port)
        wait_connected(sgd, 2, timeout=20, prefix=True)
        stop_clean(sgd)
    finally:
        srv.close()
        silent.close()
        demo.stop()


# ---- 8. name lookups off the loop ----

class BlackHoleDns(threading.Thread):
    """A DNS server that reads queries and never answers, on a random
    127.x.y.z port 53 (so parallel runs do not meet)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(20):
            self.addr = "127.%d.%d.%d" % tuple(random.randrange(1, 255) for _ in range(3))
            try:
                self.sock.bind((self.addr, 53))
                break
            except OSError:
                continue
        else:
            raise AssertionError("no free 127.x.y.z:53 for the black-hole DNS server")
        self.queries = 0
        self.start()

    def run(self):
        while True:
            try:
                self.sock.recvfrom(4096)
            except OSError:
                return
            self.queries += 1

    def close(self):
        self.sock.close()


def netns_wrapper(workdir, dns_addr, hosts):
    """sgd in a mount namespace of its own whose /etc/resolv.conf names the
    black-hole server (30 s a try, 5 tries: a lookup never ends within the
    test) and whose /etc/hosts holds hosts (name -> address)."""
    resolv = os.path.join(workdir, "resolv.conf")
    hostsf = os.path.join(workdir, "hosts")
    with open(resolv, "w") as f:
        f.write("nameserver %s\noptions timeout:30 attempts:5\n" % dns_addr)
    with open(hostsf, "w") as f:
        f.write("".join("%s %s\n" % (a, n) for n, a in hosts.items()))
    script = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && '
              'shift 2 && exec "$@"')
    return ["unshare", "-m", "sh", "-c", script, "sh", resolv, hostsf]


class SniServer(threading.Thread):
    """TLS on a free port with the broker's server certificate: records the
    SNI name of each handshake, then closes (no MQTT)."""

    def __init__(self, certs):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs["server.pem"], certs["server.key"])
        self.names = []
        self.ctx.sni_callback = lambda sock, name, ctx: self.names.append(name)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            try:
                c.settimeout(5)
                self.ctx.wrap_socket(c, server_side=True).close()
            except (OSError, ssl.SSLError):
                pass
            finally:
                c.close()

    def close(self):
        self.lsock.close()


@test
def test_dns_off_loop():
    broker = Broker().start()
    obs = Observer(broker.plain)
    dns = BlackHoleDns()
    sni = SniServer(broker.certs)
    workdir = tempfile.mkdtemp(prefix="sgd-test-")
    demo = Demo(workdir, wrapper=netns_wrapper(workdir, dns.addr, {
        "localhost": "127.0.0.1", "wrong.sgdtest": "127.0.0.1"}))
    try:
        copy_files(demo.sgd, broker.certs, ("ca.pem", "client.pem", "client.key"))
        demo.start(FAST + link_settings(1, broker.plain, server="stall.sgdtest")
                   + ["push1_resp_time=300", "leftir_pushlink=1", "leftir_pushintv=1"])
        sgd = demo.sgd
        sgd.http_on()
        wait_until(lambda: dns.queries > 0, 20, "the lookup of stall.sgdtest reaching DNS")
        # The lookup hangs for minutes; the loop goes on: REST answers and
        # the meters keep being read.
        t0 = get_json(sgd, "/api/measurement/0")["header"]["read_at_ms"] or 0
        for _ in range(10):
            assert link_info(sgd, 1)["status"] == "Connecting", link_info(sgd, 1)
            get_json(sgd, "/api/devices")
        wait_until(lambda: (get_json(sgd, "/api/measurement/0")["header"]["read_at_ms"] or 0)
                   > t0, 20, "a new reading of the IE38 while DNS hangs")
        print("  %d DNS queries unanswered; link 1 Connecting, REST and polling go on"
              % dns.queries)
        # A name from /etc/hosts: resolved off the loop, connected; TLS checks the name.
        mark = obs.mark()
        sgd.ok("set", *link_settings(2, broker.tls, tls=1, server="localhost",
                                     ca_file="ca.pem", roottopic="sgdtest/dns2"))
        obs.wait_msg("sgdtest/dns2/publish/status/hello", mark, timeout=20,
                     what="hello over TLS to localhost")
        wait_connected(sgd, 2)
        # mutual TLS by name: the client certificate goes into our TLS context too
        sgd.ok("set", "push2_protocol=0")
        wait_link(sgd, 2, lambda li: li["status"] == "Disabled", 10, "Disabled")
        mark = obs.mark()
        sgd.ok("set", *link_settings(2, broker.mtls, tls=2, server="localhost", ca_file="ca.pem",
                                     cert_file="client.pem", key_file="client.key",
                                     username=USER, password=PASSWORD,
                                     roottopic="sgdtest/dns4"))
        obs.wait_msg("sgdtest/dns4/publish/status/hello", mark, timeout=20,
                     what="hello over mutual TLS to localhost")
        wait_connected(sgd, 2)
        # The certificate names localhost and 127.0.0.1, not wrong.sgdtest:
        # the same broker behind that name must fail verification.
        sgd.ok("set", "push2_protocol=0")
        wait_link(sgd, 2, lambda li: li["status"] == "Disabled", 10, "Disabled")
        mark = obs.mark()
        sgd.ok("set", *link_settings(2, broker.tls, tls=1, server="wrong.sgdtest",
                                     ca_file="ca.pem", cert_file="", key_file="",
                                     username="", password="", roottopic="sgdtest/dns3"))
        li = wait_error(sgd, 2, timeout=20)
        print("  TLS to wrong.sgdtest: %s" % li["status"])
        assert any(w in li["status"].lower() for w in ("certificate", "verif")), li
        assert not obs.since(mark, "sgdtest/dns3/publish/status/hello")
        # SNI carries the name, not the address connected to.
        sgd.ok("set", *link_settings(2, sni.port, tls=1, server="localhost",
                                     ca_file="ca.pem", cert_file="", key_file="",
                                     username="", password=""))
        wait_until(lambda: "localhost" in sni.names, 20, "a TLS handshake with SNI localhost")
        assert all(n == "localhost" for n in sni.names), sni.names
        # the loop's turn figures
        lp = get_json(sgd, "/api")["loop"]
        assert set(lp) == {"turns", "turn_p99_ms", "turn_max_ms", "turns_over_5ms",
                           "turns_over_50ms"}, lp
        assert lp["turns"] > 0 and 0 <= lp["turn_p99_ms"] <= lp["turn_max_ms"], lp
        assert lp["turns"] >= lp["turns_over_5ms"] >= lp["turns_over_50ms"] >= 0, lp
        print("  GET /api loop: %r" % lp)
        assert link_info(sgd, 1)["status"] == "Connecting"
        stop_clean(sgd)  # exits without waiting for the lookup
    finally:
        obs.close()
        demo.stop()
        dns.close()
        sni.close()
        broker.cleanup()


def get_json(sgd, path):
    st, _, data = sgd.http("GET", path, timeout=10)
    assert st == 200 and isinstance(data, dict), (path, st, data)
    return data


if __name__ == "__main__":
    sys.exit(run(sys.argv))
