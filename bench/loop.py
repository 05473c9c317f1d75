#!/usr/bin/python3
"""The main loop under load: how long its turns take and whether polling
keeps its rate while 64 connections flood the REST API.

Set-up: that of bench/mqtt.py (three `sgsim --pace`: 16 RS485 devices at
115200, an IE38 on the Left IR and a Bicom on the Right IR at 19200; all 18
polled every second) with link 1 publishing every device every second to a
local mosquitto, and history writing: wall time runs --clock-rate times as
fast (sgctl's test-only clock hook, SGD_TEST_HOOKS=1), so a load-profile
quarter hour closes every 900/rate s and each close commits 18 devices'
intervals to history.db (synchronous=FULL, one fsync a commit).

Two windows of --seconds each, back to back:
- reference: all of the above, no HTTP load;
- flood: the same while `wrk -t2 -c64` requests /api/measurement/0 (keep-alive).
For each window, from GET /api "loop" before and after: turns, the share of
turns over 5 ms (p99 < 5 ms <=> under 1 %) and the number over 50 ms (max <
50 ms <=> none); from `sgctl status`: bus transactions per second. Figures:
polling rate under the flood / rate in the reference window (target >=
0.95), and the p99 / max of all turns since sgd started (GET /api).

Usage: bench/loop.py [--build DIR] [--seconds 20] [--clock-rate 120].
Reports, never fails on a missed target; exit 1 only when it could not run.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
P99_MS, MAX_MS, POLL_RATIO = 5.0, 50.0, 0.95

sys.dont_write_bytecode = True  # no __pycache__ in the work tree


def load(name):
    spec = importlib.util.spec_from_file_location("bench_" + name, os.path.join(HERE, name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def snapshot(sgd, http):
    # another source address: wrk's 64 connections are all 127.0.0.1 allows
    _, _, api = sgd.http("GET", "/api", timeout=30, source="127.0.0.2")
    return {"loop": api["loop"], "tx": http.bus_tx(sgd), "t": time.monotonic()}


def window(a, b):
    turns = b["loop"]["turns"] - a["loop"]["turns"]
    slow = b["loop"]["turns_over_5ms"] - a["loop"]["turns_over_5ms"]
    stalls = b["loop"]["turns_over_50ms"] - a["loop"]["turns_over_50ms"]
    wall = b["t"] - a["t"]
    return {"turns": turns, "slow_pct": 100.0 * slow / turns if turns else 0.0,
            "stalls": stalls, "tps": (b["tx"] - a["tx"]) / wall, "wall": wall}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--clock-rate", type=int, default=120)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--settle", type=float, default=3.0)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["SG_BUILD"] = os.path.relpath(build, ROOT) if build.startswith(ROOT) else build
    os.environ["SGD_TEST_HOOKS"] = "1"  # the clock hook, for history writing
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness  # noqa: E402  (needs SG_BUILD set first)
    harness.BUILD = build
    from broker import Broker, Observer  # noqa: E402
    cpu, http = load("cpu"), load("http")

    wrk = http.find_tool("wrk")
    if not wrk:
        print("loop.py: wrk not installed (tools/install-deps bench)")
        return 2
    work = tempfile.mkdtemp(prefix="sgd-bench-loop-")
    sims, sgd, broker, obs = [], None, None, None
    rc = 0
    try:
        broker = Broker(workdir=work).start()
        obs = Observer(broker.plain)
        sgd, _ = cpu.start_rig(harness, work, sims, cpu.rig_settings(
            lambda n: ["rs485_pushlnk%d=1" % n, "rs485_pushint%d=1" % n]) + [
            "push1_protocol=1", "mqtt1_server=127.0.0.1", "mqtt1_port=%d" % broker.plain,
            "mqtt1_tls=0", "leftir_pushlink=1", "leftir_pushintv=1",
            "ir_relay_pushlink=1", "ir_relay_pushintv=1"])
        port = sgd.http_on()
        st = sgd.ok("settings")["settings"]
        base = "%s/%s" % (st["mqtt1_roottopic"], st["mqtt1_pub_topic"])
        obs.wait_msg(base + "/status/hello", timeout=20, what="sgd's hello")
        reply = json.loads(harness.unix_request(sgd.sock, json.dumps(
            {"cmd": "clock", "wall_ms": int(time.time() * 1000), "rate": a.clock_rate})))
        if not reply.get("ok"):
            raise RuntimeError("sgctl clock: %r" % reply)
        time.sleep(a.settle)

        s0 = snapshot(sgd, http)
        time.sleep(a.seconds)
        s1 = snapshot(sgd, http)
        flood = {}

        def run_flood():
            try:
                flood.update(http.run_wrk(wrk, "http://127.0.0.1:%d/api/measurement/0" % port, a))
            except Exception as e:  # reported below
                flood["error"] = str(e)
        t = threading.Thread(target=run_flood)
        t.start()
        time.sleep(0.5)  # wrk connected
        s2 = snapshot(sgd, http)
        time.sleep(a.seconds - 1.5)
        s3 = snapshot(sgd, http)
        t.join()
        if "error" in flood:
            raise RuntimeError(flood["error"])
        ref, fl = window(s0, s1), window(s2, s3)
        _, _, api = sgd.http("GET", "/api", timeout=30)
        lp = api["loop"]
        ratio = fl["tps"] / ref["tps"] if ref["tps"] else 0.0
        lp_docs = sgd.http("GET", "/api/load_profile/1?from=last24h", timeout=30)[2]
        stored = sum(1 for iv in lp_docs.get("intervals", []) if iv["values"][0] is not None)
        not_ok = [d["interface"] for d in sgd.ok("devices")["devices"]
                  if d["status"] not in ("ok", "disabled")]

        for name, w in (("reference", ref), ("REST flood", fl)):
            print("%-10s %5.1f s: %6d turns, %5.2f %% over 5 ms, %d over 50 ms; bus %.1f tx/s"
                  % (name, w["wall"], w["turns"], w["slow_pct"], w["stalls"], w["tps"]))
        print("wrk -t%d -c%d: %.0f req/s, p99 %.2f ms, errors %d"
              % (a.threads, a.connections, flood["rps"], flood["p99_ms"], flood["errors"]))
        print("since start: %d turns, p99 %.3f ms, max %.3f ms, %d over 5 ms, %d over 50 ms"
              % (lp["turns"], lp["turn_p99_ms"], lp["turn_max_ms"], lp["turns_over_5ms"],
                 lp["turns_over_50ms"]))
        print("history: wall time x%d, %d intervals of device 1 stored; devices not ok: %s"
              % (a.clock_rate, stored, ", ".join(not_ok) or "none"))
        print("RESULT ref_tps=%.1f flood_tps=%.1f poll_ratio=%.3f ref_turns=%d ref_slow_pct=%.2f "
              "ref_stalls=%d flood_turns=%d flood_slow_pct=%.2f flood_stalls=%d p99_ms=%.3f "
              "max_ms=%.3f turns=%d rps=%.0f http_p99_ms=%.2f http_errors=%d lp_intervals=%d "
              "devices_not_ok=%d"
              % (ref["tps"], fl["tps"], ratio, ref["turns"], ref["slow_pct"], ref["stalls"],
                 fl["turns"], fl["slow_pct"], fl["stalls"], lp["turn_p99_ms"],
                 lp["turn_max_ms"], lp["turns"], flood["rps"], flood["p99_ms"], flood["errors"],
                 stored, len(not_ok)))
    except Exception as e:  # report, don't fail `make bench` with a traceback
        print("loop.py: %s" % e)
        if sgd and os.path.exists(sgd.logpath):
            print("--- sgd log (tail) ---\n" + "".join(open(sgd.logpath).readlines()[-20:]))
        rc = 1
    finally:
        if obs:
            obs.close()
        cpu.stop_rig("loop.py", rc, work, sgd, sims, (broker,))
    return rc


if __name__ == "__main__":
    sys.exit(main())
