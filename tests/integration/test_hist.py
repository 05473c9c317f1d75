#!/usr/bin/python3
"""History through the running daemon: load profile intervals from real
polls with simulated time (sgctl's test-only "clock" hook runs wall time 120x
faster), recorders capturing at local midnight, the tariff calendar over REST
and sgctl (an invalid file keeps the old calendar), tariff counters, data kept
across a restart and across kill -9 (database intact), and a meter that
stops answering leaves missing intervals, never zeros. Two weeks across DST
and a year of recorders run on the lock-step clock in test_hist_long.py. The calendar rules,
DST, gaps and resets are proven by the unit tests (test_loadprof, test_lpstore,
test_recorder, test_tariffs, test_localtime)."""
import csv
import io
import json
import os
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["SGD_TEST_HOOKS"] = "1"
from harness import (FAST, Demo, run, test, unix_request, wait_until)  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARIFFS = os.path.join(ROOT, "etc", "tariffs.example.json")
RATE = 120
# 2026-06-10 23:50:00 CEST (UTC+2) = 21:50 UTC: ten simulated minutes before
# a local midnight, a Wednesday in the summer season of the example calendar
START_MS = 1781128200000


def clock(demo, wall_ms, rate=RATE):
    reply = json.loads(unix_request(demo.sgd.sock, json.dumps(
        {"cmd": "clock", "wall_ms": wall_ms, "rate": rate})))
    assert reply.get("ok"), reply
    return reply


def start_demo(extra=()):
    demo = Demo().start(FAST + ["timezone=60", "dst_auto=1"] + list(extra))
    demo.sgd.http_on()
    demo.wait_all_ok()
    return demo


def lp(demo, index, query):
    st, _, doc = demo.sgd.http("GET", "/api/load_profile/%d?%s" % (index, query))
    assert st == 200, (st, doc)
    return doc


def present(doc):
    return [iv for iv in doc["intervals"] if iv["values"][0] is not None]


@test
def test_intervals_recorder_tariffs():
    demo = start_demo()
    try:
        # calendar first, so the tariff counters run from the start
        st, _, doc = demo.sgd.http("POST", "/api/tariffs", json.load(open(TARIFFS)))
        assert st == 200 and doc["calendar"]["tariffs"], (st, doc)
        clock(demo, START_MS)
        # the recorder is bound once the clock is in June (it would hold
        # today's real date otherwise, and a recorder never goes back)
        demo.sgd.ok("set", "rec1_source=1", "rec1_device=0", "rec1_counter=0")
        # 40 simulated minutes: midnight, then at least two whole intervals
        wait_until(lambda: len(present(lp(demo, 0, "from=2026-06-11"))) >= 2, 60,
                   "two complete intervals after midnight", interval=0.5)
        doc = lp(demo, 0, "from=2026-06-11")
        names = [c["name"] for c in doc["channels"]]
        assert names[:4] == ["ai", "ae", "ri", "re"], names
        ivs = present(doc)
        starts = [iv["start"] for iv in ivs]
        assert all(s % 900 == 0 for s in starts), starts
        assert all(b - a == 900 for a, b in zip(starts, starts[1:])), starts
        assert all(iv["values"][0] >= 0 for iv in ivs), ivs
        assert any(iv["values"][0] > 0 for iv in ivs), "no energy in any interval"
        day = doc["days"][0]
        assert day["date"] == "2026-06-11" and day["intervals"] == 96, day
        assert abs(day["totals"][0] - sum(iv["values"][0] for iv in ivs)) < 1e-6, day
        print("  %d intervals of 2026-06-11 so far, %.3f Wh active import" % (
            len(ivs), day["totals"][0]))
        # CSV carries the same numbers
        st, hdrs, raw = demo.sgd.http("GET", "/api/load_profile/0?from=2026-06-11&format=csv",
                                      raw=True)
        assert st == 200 and hdrs["content-type"].startswith("text/csv"), (st, hdrs)
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        by_start = {int(r["start_utc"]): r for r in rows}
        for iv in ivs:
            assert abs(float(by_start[iv["start"]]["ai_Wh"]) - iv["values"][0]) <= 1e-9 * max(1, iv["values"][0]), iv
        # the recorder took the first reading of the new local day
        st, _, rec = demo.sgd.http("GET", "/api/recorder/1?from=2026-06-10&to=2026-06-11")
        assert st == 200, rec
        vals = {d["date"]: d["value"] for d in rec["data"]}
        assert vals.get("2026-06-11") is not None, rec
        counters = demo.sgd.ok("counters", "0")
        print("  recorder 1: 2026-06-11 = %s" % vals["2026-06-11"])
        # the active tariff follows simulated local time; counters accumulate
        st, _, tar = demo.sgd.http("GET", "/api/tariffs")
        assert tar["active"] and 1 <= tar["active"]["tariff"] <= 3, tar
        ctr0 = [c for c in tar["counters"] if c["index"] == 0][0]
        assert sum(t["kwh"] for t in ctr0["tariffs"]) > 0, ctr0
        assert ctr0["enabled"] is True, ctr0
        # leftir_tariffs=0 stops the Left IR meter's tariff counters (only its)
        demo.sgd.ok("set", "leftir_tariffs=0")

        def tariff_kwh():
            st, _, t = demo.sgd.http("GET", "/api/tariffs")
            return {c["index"]: (c["enabled"], sum(x["kwh"] for x in c["tariffs"]))
                    for c in t["counters"]}
        off = tariff_kwh()
        assert off[0][0] is False and off[1][0] is True, off
        wait_until(lambda: tariff_kwh()[1][1] > off[1][1] and tariff_kwh()[4][1] > off[4][1],
                   60, "RS485 tariff counters still counting", interval=0.5)
        assert tariff_kwh()[0][1] == off[0][1], (tariff_kwh(), off)
        demo.sgd.ok("set", "leftir_tariffs=1")
        wait_until(lambda: tariff_kwh()[0][1] > off[0][1], 60,
                   "Left IR tariff counters counting again", interval=0.5)
        st, _, api = demo.sgd.http("GET", "/api")
        assert api["status"]["active_tariff"] == tar["active"]["tariff"], api["status"]
        # calculate (R-B2): "1-0" is RS485 1 minus Left IR, interval by interval
        demo.sgd.ok("set", "calc1_name=RS485 1 minus house", "calc1_expr=1-0")
        rc, _, err = demo.sgd.ctl("set", "calc2_expr=1-x")
        assert rc == 1 and "calc2_expr" in err, (rc, err)
        st, _, calc = demo.sgd.http("GET", "/api/calculate/1?from=2026-06-11")
        assert st == 200 and calc["name"] == "RS485 1 minus house", (st, calc)
        a = {iv["start"]: iv["values"] for iv in lp(demo, 1, "from=2026-06-11")["intervals"]}
        b = {iv["start"]: iv["values"] for iv in lp(demo, 0, "from=2026-06-11")["intervals"]}
        both = 0
        for iv in calc["intervals"]:
            va, vb = a.get(iv["start"]), b.get(iv["start"])
            if va and vb and va[0] is not None and vb[0] is not None:
                assert abs(iv["values"][0] - (va[0] - vb[0])) < 1e-6, (iv, va, vb)
                both += 1
            else:
                assert iv["values"][0] is None, (iv, va, vb)
        assert both >= 1, calc["intervals"]
        st, _, doc = demo.sgd.http("GET", "/api/calculate/2")
        assert st == 404, (st, doc)
        out = demo.sgd.ok("calculate", "1", "--from", "2026-06-11")
        assert out["equation"] == "1-0" and len(out["intervals"]) >= len(calc["intervals"]), out
        rc, out, _ = demo.sgd.ctl("calculate", "1", "--from", "2026-06-11", "--csv")
        assert rc == 0 and out["csv"].startswith("start_utc,start_local,ai_Wh"), (rc, out)
        print("  calculate 1 = RS485 1 - Left IR over %d intervals" % both)
        # sgctl: the same data
        out = demo.sgd.ok("load-profile", "0", "--from", "2026-06-11")
        assert len(present(out)) >= len(ivs), out
        assert demo.sgd.ok("recorder", "list")["recorders"][0]["enabled"] is True
        assert counters
    finally:
        demo.stop()


@test
def test_bad_input_keeps_history():
    demo = start_demo()
    try:
        st, _, good = demo.sgd.http("POST", "/api/tariffs", json.load(open(TARIFFS)))
        assert st == 200
        bad = [({"tariffs": []}, "tariff"),
               ({"tariffs": [{"name": "A", "price": -1}], "seasons": []}, "price"),
               ({"tariffs": [{"name": "A", "price": 1}], "seasons": [
                   {"name": "S", "start": "02-30", "schedule": {}}]}, "start"),
               ({"bogus": 1}, "bogus"), ([1, 2], "")]
        for body, word in bad:
            st, _, doc = demo.sgd.http("POST", "/api/tariffs", body)
            assert st == 400 and word in doc["error"], (body, st, doc)
        st, _, now = demo.sgd.http("GET", "/api/tariffs")
        assert now["calendar"] == good["calendar"], "an invalid file replaced the calendar"
        for path, want in (("/api/load_profile/17", 404), ("/api/load_profile/x", 400),
                           ("/api/load_profile/0?from=2026-02-30", 400),
                           ("/api/load_profile/0?from=2026-01-01&to=2027-06-01", 400),
                           ("/api/load_profile/0?format=xml", 400),
                           ("/api/recorder/0", 404), ("/api/recorder/9", 404),
                           ("/api/recorder/x", 400), ("/api/recorder/1?view=weekly", 400),
                           ("/api/recorder/1?view=monthly&from=20x6", 400)):
            st, _, doc = demo.sgd.http("GET", path)
            assert st == want and doc["error"], (path, st, doc)
        st, _, doc = demo.sgd.http("POST", "/api/recorder/1", {"action": "erase"})
        assert st == 400, doc
        # sgctl: a bad file is refused with the member named, the old one stays
        bad_file = os.path.join(demo.workdir, "bad.json")
        with open(bad_file, "w") as f:
            f.write('{"tariffs": [{"name": "A", "price": 1}], "seasons": "x"}')
        rc, _, err = demo.sgd.ctl("tariffs", "set", bad_file)
        assert rc == 1 and "seasons" in err, (rc, err)
        rc, out, err = demo.sgd.ctl("tariffs", "set", TARIFFS)
        assert rc == 0, err
        assert demo.sgd.proc.poll() is None
    finally:
        demo.stop()


@test
def test_restart_and_kill9_keep_intervals():
    demo = start_demo()
    try:
        clock(demo, START_MS + 3600 * 1000)  # 00:50 local on 2026-06-11
        wait_until(lambda: len(present(lp(demo, 1, "from=2026-06-11"))) >= 2, 60,
                   "intervals of RS485 1", interval=0.5)
        before = present(lp(demo, 1, "from=2026-06-11"))
        # kill -9 while intervals are being written, three times
        for _ in range(3):
            demo.sgd.proc.send_signal(signal.SIGKILL)
            demo.sgd.proc.wait(10)
            demo.sgd.log.close()
            demo.sgd.start()
            clock(demo, START_MS + 3600 * 1000 + 2 * 3600 * 1000)
            db = sqlite3.connect(os.path.join(demo.sgd.state, "history.db"))
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            db.close()
        after = {iv["start"]: iv for iv in present(lp(demo, 1, "from=2026-06-11"))}
        for iv in before:
            assert iv["start"] in after and after[iv["start"]]["values"] == iv["values"], iv
        # clear: only that device's profile goes
        st, _, doc = demo.sgd.http("POST", "/api/load_profile/1", {"action": "clear"})
        assert st == 200, doc
        assert not present(lp(demo, 1, "from=2026-06-11"))
        print("  %d intervals survived 3 kill -9; clear emptied RS485 1" % len(before))
        assert demo.stop() == 0
    finally:
        demo.stop()


@test
def test_silent_device_is_missing():
    """A meter that stops answering for 40 simulated minutes: the intervals
    it was silent through are stored as missing, never as zero, and the
    intervals before and after are whole."""
    demo = start_demo()
    try:
        rate = 300  # one poll per 5 simulated minutes: still 3 per interval
        clock(demo, START_MS, rate)
        anchor = time.monotonic()  # simulated time >= START_MS + (now - anchor) * rate

        def sim_now_s():
            return (START_MS + int((time.monotonic() - anchor) * 1000) * rate) // 1000

        wait_until(lambda: len(present(lp(demo, 0, "from=2026-06-11"))) >= 1, 60,
                   "a complete interval of Left IR", interval=0.5)
        demo.left.ctl("present 33 0")
        time.sleep(1.0)  # a cycle in flight finishes; three failures make it "down"
        st, _, doc = demo.sgd.http("GET", "/api/counter/0")
        assert st == 200, (st, doc)
        t_before = doc["header"]["read_at_ms"] // 1000
        wait_until(lambda: demo.sgd.ok("devices")["devices"][0]["status"] == "not responding",
                   20, "Left IR not responding")
        wait_until(lambda: sim_now_s() >= t_before + 2400, 60, "40 silent simulated minutes",
                   interval=0.2)
        silent_until = sim_now_s()
        demo.left.ctl("present 33 1")
        wait_until(lambda: any(iv["start"] >= silent_until for iv in
                               present(lp(demo, 0, "from=2026-06-11"))), 90,
                   "Left IR intervals after the silence", interval=0.5)
        doc = lp(demo, 0, "from=2026-06-11")
        by_start = {iv["start"]: iv for iv in doc["intervals"]}
        first = min(by_start)
        inside = [s for s in range(first, silent_until, 900) if s > t_before and s + 900 <= silent_until]
        assert len(inside) >= 1, (t_before, silent_until)
        for s in inside:
            assert s in by_start, "interval %d not stored at all" % s
            assert by_start[s]["values"][0] is None, by_start[s]
        before = [iv for iv in doc["intervals"] if iv["start"] + 900 <= t_before]
        assert before and all(iv["values"][0] is not None for iv in before), before
        assert all(iv["values"][0] > 0 for iv in present(doc)), present(doc)
        day = doc["days"][0]
        assert day["missing"][0] >= len(inside), day
        print("  silent %d s simulated: %d intervals stored as missing, %d present" % (
            silent_until - t_before, len([1 for iv in doc["intervals"]
                                          if iv["values"][0] is None]), len(present(doc))))
    finally:
        demo.stop()


if __name__ == "__main__":
    sys.exit(run(sys.argv))
