#!/usr/bin/python3
"""Daemon CPU while polling 18 devices every second.

sgsim --pace serves 16 RS485 devices (115200 baud), an IE38 on the Left IR
and a Bicom on the Right IR (19200 baud); sgd polls all 18 slots with
poll_meas_interval=1 and poll_counter_interval=1. Once every device is "ok",
utime+stime of sgd (all its threads, /proc/PID/stat) is sampled over
--seconds of wall time: CPU % of one core, printed against the 5 % budget.
Polls achieved come from the bus transaction counters of `sgctl status`
before/after, against the reads one poll cycle per device per second needs
(bench_bus --list builds them from the same descriptions as the poller).

Usage: bench/cpu.py [--build DIR] [--seconds S]. Standard library only;
reuses tests/integration/harness.py. Reports, never fails on a missed target.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUDGET_PCT = 5.0

# 16 RS485 devices: (sgsim model string, rs485_type_N slot type), addresses 1..16.
RS485_MIX = [("WM3M4C", 1), ("MC750", 4), ("Bicom", 2), ("IE14", 1),
             ("WM3-6", 1), ("WM1-6", 1), ("IE38MD", 1), ("MT550", 4)] * 2
LEFT_IR = "IE38MD"
IR_ADDR = 33


def proc_cpu_s(pid):
    """utime + stime of pid (all threads) in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bus_counters(sgd):
    st = sgd.ok("status")
    return {b["name"]: (b.get("transactions", 0), b.get("errors", 0)) for b in st["buses"]}


def reads_per_cycle(build, baud, devs):
    """Reads one poll cycle (counters due) takes for devs, and its wire time in us."""
    args = [os.path.join(build, "bench", "bench_bus"), "--link", "-", "--baud", str(baud),
            "--devices-dir", os.path.join(ROOT, "etc", "devices"), "--list"]
    for d in devs:
        args += ["--dev", d]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    last = out.strip().splitlines()[-1].split()
    # "reads per cycle N, wire U us per cycle at B baud"
    return int(last[3].rstrip(",")), float(last[5])


def rig_devices(harness):
    """sgsim device lists (RS485, Left IR, Right IR) of the 18-device mix."""
    return (["%s:%d" % (m, i + 1) for i, (m, _) in enumerate(RS485_MIX)],
            ["%s:%d" % (LEFT_IR, IR_ADDR)], ["Bicom:%d" % harness.RIGHT_IR_BICOM_ADDR])


def rig_settings(extra_rs485=lambda n: []):
    """Settings polling all 18 slots every second; extra_rs485(n): more per RS485 slot."""
    settings = ["left_ir_enabled=1", "ir_counter_addr=%d" % IR_ADDR, "ir_ext_rel_mode=1",
                "poll_meas_interval=1", "poll_counter_interval=1"]
    for i, (_, typ) in enumerate(RS485_MIX):
        settings += ["rs485_type_%d=%d" % (i + 1, typ), "rs485_addr_%d=%d" % (i + 1, i + 1)]
        settings += extra_rs485(i + 1)
    return settings


def start_rig(harness, work, sims, settings):
    """The three paced simulators (appended to sims as they start) and sgd
    with settings, once all 18 devices are ok; returns (sgd, seconds to ok)."""
    rs485_devs, left_devs, right_devs = rig_devices(harness)
    sims.append(harness.Sim(work, "rs485", rs485_devs, baud=115200, pace=True))
    sims.append(harness.Sim(work, "left_ir", left_devs, baud=19200, pace=True))
    sims.append(harness.Sim(work, "right_ir", right_devs, baud=19200, pace=True))
    sgd = harness.Sgd(work, {"rs485": sims[0].link, "left": sims[1].link, "right": sims[2].link})
    sgd.start()
    for k in range(0, len(settings), 40):  # sgctl takes up to 64 arguments
        sgd.ok("set", *settings[k:k + 40])

    def all_ok():
        devs = sgd.ok("devices")["devices"]
        live = [d for d in devs if d["status"] != "disabled"]
        return len(live) == 18 and all(d["status"] == "ok" for d in live)
    t_ok = time.monotonic()
    harness.wait_until(all_ok, 60, "all 18 devices ok", interval=0.25)
    return sgd, time.monotonic() - t_ok


def stop_rig(name, rc, work, sgd, sims, others=()):
    """Stop sgd, the simulators and others (objects with a stop/close/cleanup);
    keep work when rc != 0."""
    if sgd:
        try:
            sgd.stop()
        except Exception as e:
            print("%s: stopping sgd: %s" % (name, e))
    for s in sims:
        s.stop()
    for o in others:
        if o is not None:
            (getattr(o, "cleanup", None) or o.close)()
    if rc == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("%s: state kept in %s" % (name, work))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds of polling after all devices are ok, before sampling")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["SG_BUILD"] = os.path.relpath(build, ROOT) if build.startswith(ROOT) else build
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness  # noqa: E402  (needs SG_BUILD set first)
    harness.BUILD = build

    rs485_devs, left_devs, right_devs = rig_devices(harness)
    expect = {
        "RS485": reads_per_cycle(build, 115200, rs485_devs),
        "Left IR": reads_per_cycle(build, 19200, left_devs),
        "Right IR": reads_per_cycle(build, 19200, right_devs),
    }

    work = tempfile.mkdtemp(prefix="sgd-bench-")
    sims, sgd = [], None
    rc = 0
    try:
        sgd, t_ok = start_rig(harness, work, sims, rig_settings())
        time.sleep(a.settle)

        pid = sgd.proc.pid
        c0, t0, b0 = proc_cpu_s(pid), time.monotonic(), bus_counters(sgd)
        time.sleep(a.seconds)
        c1, t1, b1 = proc_cpu_s(pid), time.monotonic(), bus_counters(sgd)
        wall = t1 - t0
        cpu_pct = 100.0 * (c1 - c0) / wall
        devs = sgd.ok("devices")["devices"]
        not_ok = [d for d in devs if d["status"] not in ("ok", "disabled")]

        print("all 18 devices ok after %.1f s; sampled sgd (pid %d) over %.1f s" % (t_ok, pid, wall))
        print("%-9s %9s %9s %8s %10s %8s" % ("bus", "tx/s", "needed/s", "ratio", "errors", "wire"))
        tot_tps = tot_need = 0.0
        for name in ("RS485", "Left IR", "Right IR"):
            tx = b1[name][0] - b0[name][0]
            err = b1[name][1] - b0[name][1]
            tps = tx / wall
            need, cyc_us = expect[name]
            tot_tps += tps
            tot_need += need
            print("%-9s %9.1f %9d %8.3f %10d %7.0f%%" % (name, tps, need, tps / need, err,
                                                         100.0 * cyc_us / 1e6))
        print("(needed/s = reads of one poll cycle with counters, per device per second; "
              "wire = share of each second that cycle occupies the line)")
        if not_ok:
            print("devices not ok at the end: %s" % ", ".join(
                "%s %s" % (d["interface"], d["status"]) for d in not_ok))
        print("sgd CPU        %.2f %% of one core (%.2f s CPU in %.1f s)" % (cpu_pct, c1 - c0, wall))
        print("RESULT cpu_pct=%.2f budget_pct=%.1f ratio=%.3f polls_tps=%.1f polls_needed=%d "
              "polls_ratio=%.3f devices=18" % (cpu_pct, BUDGET_PCT, cpu_pct / BUDGET_PCT, tot_tps,
                                               tot_need, tot_tps / tot_need))
    except Exception as e:  # report, don't fail `make bench`
        print("cpu.py: %s" % e)
        if sgd and os.path.exists(sgd.logpath):
            print("--- sgd log (tail) ---\n" + "".join(open(sgd.logpath).readlines()[-20:]))
        rc = 1
    finally:
        stop_rig("cpu.py", rc, work, sgd, sims)
    return rc


if __name__ == "__main__":
    sys.exit(main())
