#!/usr/bin/python3
"""Device health through the running daemon (issue 12 §2): a meter that
answers every read with a Modbus exception is not "ok" (REST 503, status
"read error" naming the exception and the registers, an event, the MQTT error
topic and no more periodic documents), its old values never get a new read
time, and it recovers when the fault is cleared. A
partial fault (one block failing, the others read) leaves the failed block's
read time where it was while the others move on, and a failing counter block
leaves missing load-profile intervals, never the stale counter. Faults come
from sgsim (`fault ADDR exception CODE [SPACE FIRST LAST]`)."""
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["SGD_TEST_HOOKS"] = "1"
from harness import (DEVICES, FAST, Demo, run, test, unix_request, wait_until)  # noqa: E402

LEFT = 33  # the Left IR IE38 of the demo layout, HA index 0
# 2026-06-10 23:50:00 CEST, as in test_hist.py
START_MS = 1781128200000


def ie38_ranges():
    """(measurement block, counter block) of the IE38 description as
    (first, last) input registers: what the daemon reads in one request each."""
    with open(os.path.join(DEVICES, "ie38.json")) as f:
        d = json.load(f)

    def words(field):
        return 2 if field["type"] in ("t5", "t6", "t7", "float32", "int32", "uint32") else 1
    meas = [(m["reg"], m["reg"] + words(m) - 1) for m in d["measurements"]]
    ctr = [(c["value"]["reg"], c["value"]["reg"] + words(c["value"]) - 1) for c in d["counters"]]
    return ((min(a for a, _ in meas), max(b for _, b in meas)),
            (min(a for a, _ in ctr), max(b for _, b in ctr)))


MEAS, CTR = ie38_ranges()


def failed_block(text):
    """(first, last, more) of "exception 4 (…) on input 105–112 and 3 more
    blocks"; AssertionError if the text does not say so."""
    m = re.fullmatch(r"exception 4 \(slave device failure\) on input (\d+)\u2013(\d+)"
                     r"(?: and (\d+) more blocks?)?", text)
    assert m, text
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def start_demo(extra=()):
    demo = Demo().start(FAST + list(extra))
    demo.sgd.http_on()
    demo.wait_all_ok()
    return demo


def left_dev(demo):
    return demo.sgd.ok("devices")["devices"][0]


def ctl_read_at(demo, what):
    """read_at_ms of sgctl's measurements/counters of the Left IR meter."""
    return demo.sgd.ok(what, "0")["read_at_ms"]


def sim_requests(demo):
    return demo.left.ctl("stats")["per_addr"][str(LEFT)]["requests"]


def wait_cycles(demo, n, timeout=30):
    """Wait until the daemon sent the Left IR meter n more requests."""
    start = sim_requests(demo)
    wait_until(lambda: sim_requests(demo) >= start + n, timeout, "%d more requests" % n)


def events(demo):
    return demo.sgd.ok("events", "50")["events"]


def error_flags(demo):
    st, _, doc = demo.sgd.http("GET", "/api")
    assert st == 200, (st, doc)
    return int(doc["status"]["error_flags"], 16)


@test
def test_exception_fault_not_ok_and_recovery():
    """Every read answered with exception 4: 503 after three cycles, the
    error named in devices, events and status, no read time after the fault;
    cleared: fresh values and "ok" again."""
    demo = start_demo()
    try:
        st, _, doc = demo.sgd.http("GET", "/api/measurement/0")
        assert st == 200 and doc["header"]["status"] == "ok", (st, doc)
        assert error_flags(demo) & 4 == 0
        demo.left.ctl("fault %d exception 4" % LEFT)
        seen = {"measurement": set(), "counter": set()}

        def refused():
            for kind in seen:
                s, _, d = demo.sgd.http("GET", "/api/%s/0" % kind)
                if s == 200:
                    seen[kind].add(d["header"]["read_at_ms"])
                elif s != 503:
                    raise AssertionError((kind, s, d))
            return s == 503 and d
        body = wait_until(refused, 30, "503 for the meter answering exceptions", interval=0.1)
        assert body["device_status"] == "read error", body
        assert "exception 4" in body["error"], body
        # a reading in flight when the fault came may still land; never more
        for kind, times in seen.items():
            assert len(times) <= 2, (kind, sorted(times))
        st, _, doc = demo.sgd.http("GET", "/api/measurement/0")
        assert st == 503, (st, doc)
        st, _, doc = demo.sgd.http("GET", "/get_command?command=get_measurements&number=0")
        assert st == 503, (st, doc)
        d = left_dev(demo)
        assert d["status"] == "read error", d
        # the first measurement block, and how many others fail with it
        first, last, more = failed_block(d["last_error"])
        assert first == MEAS[0] and last <= MEAS[1] and more >= 1, d
        where = d["last_error"]
        st, _, api = demo.sgd.http("GET", "/api/devices")
        assert api["devices"][0]["status"] == "read error", api["devices"][0]
        assert error_flags(demo) & 4, error_flags(demo)
        ev = [e for e in events(demo) if e["kind"] == "error" and "read error" in e["msg"]]
        assert ev and ev[-1]["msg"] == "Left IR Energy meter read error (%s)" % where, ev
        # the old values stay old: polled on, their read time does not move
        m0, c0 = ctl_read_at(demo, "measurements"), ctl_read_at(demo, "counters")
        wait_cycles(demo, 6)
        assert ctl_read_at(demo, "measurements") == m0
        assert ctl_read_at(demo, "counters") == c0
        assert demo.sgd.ok("measurements", "0")["status"] == "read error"
        # the other devices are not disturbed
        assert demo.sgd.ok("devices")["devices"][2]["status"] == "ok"

        demo.left.ctl("fault %d none" % LEFT)
        wait_until(lambda: left_dev(demo)["status"] == "ok", 30, "Left IR ok again")
        st, _, doc = demo.sgd.http("GET", "/api/measurement/0")
        assert st == 200 and doc["header"]["read_at_ms"] > m0, (st, doc, m0)
        st, _, doc = demo.sgd.http("GET", "/api/counter/0")
        assert st == 200 and doc["header"]["read_at_ms"] > c0, (st, doc, c0)
        assert error_flags(demo) & 4 == 0
        rec = [e for e in events(demo) if e["kind"] == "recovered"]
        assert rec and rec[-1]["msg"] == "Left IR Energy meter read without errors again", rec
    finally:
        demo.stop()


@test
def test_partial_fault_keeps_block_read_time():
    """Only the measurement block fails: its read time stays while the
    counters' moves on; three failures make the device a read error naming
    that block; cleared, both move again."""
    demo = start_demo()
    try:
        demo.left.ctl("fault %d exception 4 input %d %d" % ((LEFT,) + MEAS))
        wait_until(lambda: left_dev(demo)["status"] == "read error", 30,
                   "Left IR read error")
        first, last, _ = failed_block(left_dev(demo)["last_error"])
        assert MEAS[0] <= first <= last <= MEAS[1], (first, last, MEAS)
        st, _, doc = demo.sgd.http("GET", "/api/counter/0")
        assert st == 503, (st, doc)  # the device as a whole is not "ok"
        m0, c0 = ctl_read_at(demo, "measurements"), ctl_read_at(demo, "counters")
        wait_until(lambda: ctl_read_at(demo, "counters") > c0, 30, "counters read on")
        wait_cycles(demo, 4)
        assert ctl_read_at(demo, "measurements") == m0
        demo.left.ctl("fault %d none" % LEFT)
        wait_until(lambda: left_dev(demo)["status"] == "ok", 30, "Left IR ok again")
        assert ctl_read_at(demo, "measurements") > m0
    finally:
        demo.stop()


@test
def test_mqtt_error_and_no_stale_push():
    """Over MQTT: the read error on the error topic (once, naming the
    exception), no periodic document of the meter while it lasts, and fresh
    ones after the fault is cleared."""
    from broker import Broker, Observer
    broker = Broker().start()
    obs = Observer(broker.plain)
    demo = Demo()
    try:
        demo.start(FAST + ["push1_protocol=1", "mqtt1_server=127.0.0.1",
                           "mqtt1_port=%d" % broker.plain, "mqtt1_tls=0",
                           "leftir_pushlink=1", "leftir_pushintv=1"])
        demo.wait_all_ok()
        s = demo.sgd.ok("settings")["settings"]
        base = s["mqtt1_roottopic"] + "/" + s["mqtt1_pub_topic"]
        topic = base + "/device/0/measurements"
        m = obs.wait_msg(topic, timeout=20, what="a periodic Left IR document")
        mark = obs.mark()
        demo.left.ctl("fault %d exception 4" % LEFT)
        err = obs.wait_msg(base + "/error", mark, timeout=30, what="the read error")
        t_err = err.t
        text = err.payload.decode()
        assert text.startswith("Error: Left IR Energy meter read error (exception 4 "
                               "(slave device failure) on input %d\u2013" % MEAS[0]), text
        frozen = max(json.loads(x.payload)["header"]["read_at_ms"]
                     for x in obs.since(0, topic=topic))
        wait_cycles(demo, 6)
        stale = [x for x in obs.since(mark, topic=topic) if x.t > t_err + 0.5]
        assert not stale, [json.loads(x.payload)["header"] for x in stale]
        assert len(obs.since(mark, topic=base + "/error")) == 1
        mark = obs.mark()
        demo.left.ctl("fault %d none" % LEFT)
        m = obs.wait_msg(topic, mark, timeout=30, what="documents again")
        assert json.loads(m.payload)["header"]["read_at_ms"] > frozen
    finally:
        demo.stop()
        obs.close()
        broker.stop()


def lp(demo, query):
    st, _, doc = demo.sgd.http("GET", "/api/load_profile/0?%s" % query)
    assert st == 200, (st, doc)
    return doc


def present(doc):
    return [iv for iv in doc["intervals"] if iv["values"][0] is not None]


@test
def test_counter_exceptions_leave_missing_intervals():
    """The counter block answers exceptions for 40 simulated minutes: those
    load-profile intervals are stored as missing (not as zero energy from a
    stale counter with fresh read times), the ones before and after are whole."""
    demo = start_demo(["timezone=60", "dst_auto=1"])
    try:
        rate = 300  # one poll per 5 simulated minutes
        reply = json.loads(unix_request(demo.sgd.sock, json.dumps(
            {"cmd": "clock", "wall_ms": START_MS, "rate": rate})))
        assert reply.get("ok"), reply
        anchor = time.monotonic()

        def sim_now_s():
            return (START_MS + int((time.monotonic() - anchor) * 1000) * rate) // 1000

        wait_until(lambda: len(present(lp(demo, "from=2026-06-11"))) >= 1, 60,
                   "a complete interval of Left IR", interval=0.5)
        demo.left.ctl("fault %d exception 4 input %d %d" % ((LEFT,) + CTR))
        wait_until(lambda: left_dev(demo)["status"] == "read error", 30, "Left IR read error")
        assert failed_block(left_dev(demo)["last_error"]) == CTR + (0,), left_dev(demo)
        t_before = ctl_read_at(demo, "counters") // 1000
        wait_until(lambda: sim_now_s() >= t_before + 2400, 60, "40 simulated minutes",
                   interval=0.2)
        assert ctl_read_at(demo, "counters") // 1000 == t_before
        until = sim_now_s()
        demo.left.ctl("fault %d none" % LEFT)
        wait_until(lambda: any(iv["start"] >= until for iv in
                               present(lp(demo, "from=2026-06-11"))), 90,
                   "Left IR intervals after the fault", interval=0.5)
        doc = lp(demo, "from=2026-06-11")
        by_start = {iv["start"]: iv for iv in doc["intervals"]}
        first = min(by_start)
        inside = [s for s in range(first, until, 900) if s > t_before and s + 900 <= until]
        assert len(inside) >= 1, (t_before, until)
        for s in inside:
            assert s in by_start, "interval %d not stored at all" % s
            assert by_start[s]["values"][0] is None, by_start[s]
        before = [iv for iv in doc["intervals"] if iv["start"] + 900 <= t_before]
        assert before and all(iv["values"][0] is not None for iv in before), before
        assert all(iv["values"][0] > 0 for iv in present(doc)), present(doc)
        print("  %d intervals missing while the counters failed, %d present" % (
            len(inside), len(present(doc))))
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(run(sys.argv))
