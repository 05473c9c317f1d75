#!/usr/bin/python3
"""Weeks and months of history through the running daemon, in seconds.

The daemon's clock runs in lock-step (sgctl's test-only "clock lockstep"):
simulated wall time moves one fixed step after each completed counter poll
and is mirrored into a file that sgsim follows (--clock-file), so the meter's
counters integrate exactly the simulated time between two readings. With the
power pinned, every interval's energy is known in advance.

- Two weeks across the 2026 autumn DST change on a meter with its own load
  profile (the test-only SimLP model): 1348 intervals, each 250 Wh at 1 kW;
  a counter reset gives exactly one missing interval; a 3-hour outage of the
  gateway is filled from the meter's profile; recorders fire at each local
  midnight (25 kWh on the 25-hour day); tariff counters add up.
- A meter without a profile (IE38): the 3-hour outage stays 12 missing
  intervals; then a year in daily steps: monthly and yearly recorder views
  sum the daily consumption; CSV parses back to the same numbers.
"""
import csv
import glob
import io
import json
import os
import shutil
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["SGD_TEST_HOOKS"] = "1"
os.environ["SGD_TEST_POLL_MS"] = "5"
from harness import (DEVICES, Sgd, Sim, run, seed_settings, test, unix_request,  # noqa: E402
                     wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARIFFS = os.path.join(ROOT, "etc", "tariffs.example.json")
MIN = 60000
HOUR = 60 * MIN
DAY = 24 * HOUR
STEP = 10 * MIN
POWER_W = 1000.0
QPOWER_VAR = 300.0
AI, RI = 0, 2  # channel positions in the load-profile documents


def local_date(utc_s):
    """Local date in Central European time (the daemon's timezone=60 with
    EU DST), from the system's tzdata."""
    import datetime
    import zoneinfo
    t = datetime.datetime.fromtimestamp(utc_s, zoneinfo.ZoneInfo("Europe/Ljubljana"))
    return t.strftime("%Y-%m-%d")


def utc_ms(y, mo, d, h=0, mi=0):
    import calendar
    return calendar.timegm((y, mo, d, h, mi, 0)) * 1000


class Rig:
    """One sgsim bus with one meter on RS485 1 and a daemon, both on the
    lock-step clock."""

    def __init__(self, model, start_ms, tariffs=False, recorder=None):
        self.dir = tempfile.mkdtemp(prefix="sgd-hist-long-")
        devdir = os.path.join(self.dir, "devices")
        os.makedirs(devdir)
        for f in glob.glob(os.path.join(DEVICES, "*.json")) + \
                [os.path.join(ROOT, "tests", "devices", "simlp.json")]:
            shutil.copy(f, devdir)
        self.clock_file = os.path.join(self.dir, "clock")
        with open(self.clock_file, "wb") as f:
            f.write(struct.pack("=q", 0))
        os.environ["SGD_TEST_CLOCK_FILE"] = self.clock_file
        self.sim = Sim(self.dir, "rs485", ["%s:1" % model], devices_dir=devdir,
                       extra=["--clock-file", self.clock_file])
        self.sgd = Sgd(self.dir, {"rs485": self.sim.link}, devices_dir=devdir)
        seed_settings(self.sgd.state, {"timezone": 60, "dst_auto": 1, "poll_meas_interval": 1,
                                       "poll_counter_interval": 1})
        self.sgd.start()
        self.sgd.http_on()
        # Time stands at start before the meter is enabled, so no reading
        # carries the real date. From here on the test never moves the
        # current instant itself, it only sets step and end: a poll cycle in
        # flight always sees one time from its requests to its time stamp.
        self.now = start_ms
        self.clock("lockstep", start_ms, 0)
        self.sim.ctl("set 1 P 0 %g" % POWER_W)
        self.sim.ctl("set 1 Q 0 %g" % QPOWER_VAR)
        self.ai_index, _ = ai_counter(self)
        if tariffs:
            st, _, doc = self.sgd.http("POST", "/api/tariffs", json.load(open(TARIFFS)))
            assert st == 200, (st, doc)
        settings = ["rs485_type_1=1", "rs485_addr_1=1"]
        if recorder:
            settings += ["rec%d_name=House" % recorder, "rec%d_source=1" % recorder,
                         "rec%d_device=1" % recorder, "rec%d_counter=%d" % (recorder, self.ai_index)]
        self.sgd.ok("set", *settings)
        self.wait_read(start_ms)

    def clock(self, mode, wall_ms, step_ms, until_ms=None):
        cmd = {"cmd": "clock", "mode": mode, "wall_ms": wall_ms, "step_ms": step_ms}
        if until_ms is not None:
            cmd["until_ms"] = until_ms
        reply = json.loads(unix_request(self.sgd.sock, json.dumps(cmd)))
        assert reply.get("ok"), reply
        return reply

    def read_at(self):
        st, _, doc = self.sgd.http("GET", "/api/counter/1")
        return doc["header"]["read_at_ms"] if st == 200 else None

    def wait_read(self, ms, timeout=120):
        """Until the daemon has a counter reading taken at simulated ms."""
        wait_until(lambda: self.read_at() == ms, timeout,
                   "a counter reading at %d (last %s)" % (ms, self.read_at()), interval=0.05)

    def run_to(self, until_ms, step=STEP):
        """Lock-step from the current instant to until_ms, then hold there
        (a jump is one step of the whole distance: the gateway was off)."""
        self.clock("lockstep", self.now, step, until_ms)
        self.wait_read(until_ms)
        self.now = until_ms

    def lp(self, query):
        st, _, doc = self.sgd.http("GET", "/api/load_profile/1?" + query)
        assert st == 200, (st, doc)
        return doc

    def stop(self):
        try:
            rc = self.sgd.stop()
            assert rc == 0, "sgd exit %s" % rc
        finally:
            self.sim.stop()
            os.environ.pop("SGD_TEST_CLOCK_FILE", None)


def ai_counter(rig):
    """(index, value) of the meter's first Wh-import counter, as sgsim serves it."""
    vals = rig.sim.ctl("values 1")
    for c in vals["counters"]:
        if c["unit"] == "Wh" and c["direction"] == "import" and not c["resettable"]:
            return c["index"], c["value"]
    raise AssertionError("no Wh import counter: %s" % vals["counters"])


def check_csv(rig, query, doc):
    st, hdrs, raw = rig.sgd.http("GET", "/api/load_profile/1?%s&format=csv" % query, raw=True)
    assert st == 200 and hdrs["content-type"].startswith("text/csv"), (st, hdrs)
    rows = {int(r["start_utc"]): r for r in csv.DictReader(io.StringIO(raw.decode()))}
    for iv in doc["intervals"]:
        v = iv["values"][AI]
        cell = rows[iv["start"]]["ai_Wh"]
        if v is None:
            assert cell == "", (iv, cell)
        else:
            assert abs(float(cell) - v) <= 1e-9 * max(1.0, v), (iv, cell)


@test
def test_two_weeks_across_dst_with_meter_profile():
    # Monday 2026-10-19 00:00 CEST; the clocks go back on Sunday 2026-10-25
    start = utc_ms(2026, 10, 18, 22)
    end = utc_ms(2026, 11, 1, 23)  # Monday 2026-11-02 00:00 CET
    rig = Rig("SIMLP", start, tariffs=True, recorder=1)
    idx = rig.ai_index
    try:
        st, _, tar0 = rig.sgd.http("GET", "/api/tariffs")
        kwh0 = sum(t["kwh"] for c in tar0["counters"] if c["index"] == 1 for t in c["tariffs"])

        # a meter reset (replacement) on Wednesday 12:00 local
        reset_at = utc_ms(2026, 10, 21, 10)
        rig.run_to(reset_at)
        rig.sim.ctl("counter 1 %d 1000" % idx)
        # the gateway is off from Friday 06:00 to 09:00 local; the meter counts on
        gap_from = utc_ms(2026, 10, 23, 4)
        rig.run_to(gap_from)
        rig.run_to(gap_from + 3 * HOUR, step=3 * HOUR)
        # the rest of the two weeks, through the 25-hour Sunday
        rig.run_to(end)

        query = "from=2026-10-19&to=2026-11-01"
        doc = rig.lp(query)
        days = {d["date"]: d for d in doc["days"]}
        assert len(days) == 14, sorted(days)
        assert days["2026-10-25"]["intervals"] == 100, days["2026-10-25"]
        assert all(d["intervals"] == 96 for k, d in days.items() if k != "2026-10-25"), days
        ivs = doc["intervals"]
        starts = [iv["start"] for iv in ivs]
        assert starts == list(range(start // 1000, end // 1000, 900)), \
            (len(starts), starts[:3], starts[-3:])
        assert len(ivs) == 1348, len(ivs)
        missing = [iv["start"] for iv in ivs if iv["values"][AI] is None]
        assert missing == [reset_at // 1000], missing
        for iv in ivs:
            ai, ri = iv["values"][AI], iv["values"][RI]
            if ai is not None:
                assert abs(ai - POWER_W / 4) < 1.0, iv
            assert ri is not None and abs(ri - QPOWER_VAR / 4) < 1.0, iv
        # the gap's 12 intervals came from the meter's own profile (exact
        # captures, not the gateway's float32 counter readings)
        gap = [iv for iv in ivs if gap_from // 1000 <= iv["start"] < gap_from // 1000 + 10800]
        assert len(gap) == 12 and all(abs(iv["values"][AI] - 250.0) <= 0.02 for iv in gap), gap
        st, _, api = rig.sgd.http("GET", "/api")
        fill = api["profile_fill"]
        assert len(fill) == 1 and fill[0]["index"] == 1 and fill[0]["filled"] >= 12 and \
            fill[0]["errors"] == 0, fill
        total = sum(iv["values"][AI] for iv in ivs if iv["values"][AI] is not None)
        assert abs(total - 1347 * 250.0) < 5.0, total
        for d in doc["days"]:
            day_ivs = [iv for iv in ivs if local_date(iv["start"]) == d["date"]]
            s = sum(iv["values"][AI] for iv in day_ivs if iv["values"][AI] is not None)
            assert len(day_ivs) == d["intervals"], (d, len(day_ivs))
            assert abs(d["totals"][AI] - s) < 1e-6, d
            assert d["missing"][AI] == (1 if d["date"] == "2026-10-21" else 0), d
        check_csv(rig, query, doc)
        print("  1348 intervals, %d missing (the reset), gap filled from the meter, "
              "%.1f Wh" % (len(missing), total))

        # recorders: one value per local midnight; 25 kWh on the long day;
        # the reset day has no consumption (never negative)
        st, _, rec = rig.sgd.http("GET", "/api/recorder/1?view=daily&from=2026-10-19&to=2026-11-02")
        assert st == 200, (st, rec)
        cons = {d["date"]: d["consumption"] for d in rec["data"]}
        vals = {d["date"]: d["value"] for d in rec["data"]}
        assert all(vals[k] is not None for k in cons), vals
        assert cons["2026-10-21"] is None, cons
        for day, c in cons.items():
            if day in ("2026-10-21", "2026-11-02"):
                continue
            want = 25000.0 if day == "2026-10-25" else 24000.0
            assert c is not None and abs(c - want) < 2.0, (day, c)
        st, _, mon = rig.sgd.http("GET", "/api/recorder/1?view=monthly&from=2026")
        assert st == 200, mon
        oct_ = [m for m in mon["data"] if m["month"] == "2026-10"][0]
        s = sum(c for d, c in cons.items() if d.startswith("2026-10") and c is not None)
        assert abs(oct_["consumption"] - s) < 1e-6, (oct_, s)
        print("  recorder: %d midnights, October %.0f Wh" % (len(vals), oct_["consumption"]))

        # tariff counters: every reading's energy went to some tariff, except
        # the step across the reset (a counter going back is no energy)
        st, _, tar = rig.sgd.http("GET", "/api/tariffs")
        kwh = sum(t["kwh"] for c in tar["counters"] if c["index"] == 1 for t in c["tariffs"])
        want = (end - start) / HOUR * POWER_W / 1000 - STEP / HOUR * POWER_W / 1000
        assert abs(kwh - kwh0 - want) < 0.01, (kwh, kwh0, want)
        st, _, meas = rig.sgd.http("GET", "/api/measurement/1")
        assert st == 200, meas
        assert meas["header"]["active_tariff"] == tar["active"]["tariff"], (meas["header"], tar)
        st, _, ctr = rig.sgd.http("GET", "/api/counter/1")
        assert ctr["header"]["active_tariff"] == tar["active"]["tariff"], ctr["header"]
        print("  tariff counters %.3f kWh over %d tariffs" % (kwh - kwh0, len(
            tar["calendar"]["tariffs"])))
    finally:
        rig.stop()


@test
def test_gap_without_profile_and_a_year_of_recorders():
    start = utc_ms(2026, 12, 30, 23)  # Thursday 2026-12-31 00:00 CET
    rig = Rig("IE38", start, recorder=2)
    try:
        gap_from = utc_ms(2026, 12, 31, 5)  # 06:00 local
        rig.run_to(gap_from)
        rig.run_to(gap_from + 3 * HOUR, step=3 * HOUR)
        new_year = utc_ms(2026, 12, 31, 23)
        rig.run_to(new_year)
        doc = rig.lp("from=2026-12-31")
        ivs = doc["intervals"]
        assert len(ivs) == 96, len(ivs)
        missing = [iv["start"] for iv in ivs if iv["values"][AI] is None]
        assert missing == list(range(gap_from // 1000, gap_from // 1000 + 10800, 900)), missing
        assert all(abs(iv["values"][AI] - 250.0) < 1.0 for iv in ivs
                   if iv["values"][AI] is not None), ivs
        print("  IE38 (no profile): 3-hour gap = %d missing intervals" % len(missing))

        # a year in daily steps: every reading at 23:00 UTC, the first of its
        # local day (00:00 CET, 01:00 CEST), so each day is 24 kWh
        rig.run_to(utc_ms(2028, 1, 1, 23), step=DAY)
        st, _, mon = rig.sgd.http("GET", "/api/recorder/2?view=monthly&from=2027")
        assert st == 200, mon
        st, _, day = rig.sgd.http("GET", "/api/recorder/2?view=daily&from=2027-01-01&to=2027-12-31")
        assert st == 200 and len(day["data"]) == 365, (st, len(day.get("data", [])))
        assert all(d["consumption"] is not None and abs(d["consumption"] - 24000) < 2
                   for d in day["data"]), [d for d in day["data"]
                                           if d["consumption"] is None
                                           or abs(d["consumption"] - 24000) >= 2][:3]
        for m in mon["data"]:
            s = sum(d["consumption"] for d in day["data"] if d["date"].startswith(m["month"]))
            assert abs(m["consumption"] - s) < 1e-3, (m, s)
            assert m["days_with_data"] == m["days"], m
        st, _, yr = rig.sgd.http("GET", "/api/recorder/2?view=yearly&from=2027&to=2027")
        assert st == 200, yr
        y = yr["data"][0]
        assert abs(y["consumption"] - sum(m["consumption"] for m in mon["data"])) < 1e-3, y
        assert abs(y["consumption"] - 365 * 24000) < 10, y
        # CSV parses back to the same numbers
        st, hdrs, raw = rig.sgd.http("GET", "/api/recorder/2?format=csv&from=2027-01-01&to=2027-12-31",
                                     raw=True)
        assert st == 200, (st, raw[:200])
        rows = list(csv.DictReader(io.StringIO(raw.decode())))
        by_date = {r["date"]: r for r in rows}
        for d in day["data"]:
            r = by_date[d["date"]]
            assert float(r["value"]) == d["value"], (r, d)
        print("  2027: %.0f Wh in %d months, %d CSV rows" % (y["consumption"], len(mon["data"]),
                                                             len(rows)))
    finally:
        rig.stop()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
