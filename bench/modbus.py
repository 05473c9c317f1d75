#!/usr/bin/python3
"""Modbus TCP gateway throughput: requests/s and p99 latency through sgd's
gateway against one simulated RTU line, compared with the wire limit of the
same requests and with mbusd (a C Modbus TCP <-> RTU gateway) on the same line.

For each baud rate (115200 and 19200) sgsim --pace serves the demo's RS485
devices (WM3M4C:1, MC750:2, Bicom:3, IE14:4) on a pty; sgd polls all four
every second (poll_meas_interval=1, poll_counter_interval=1), so background
polling of the other devices goes on during the runs. Closed-loop clients
(asyncio, raw sockets, one request in flight per connection) read 10 input
registers of device 1 (fc 4 at PDU 107, U1-U3 and on: 8-byte RTU request,
25-byte reply) through sgd for --seconds each:

  - with rs485_cache_ms_1=0 (pure forwarding: every read is a bus transaction)
    with 1 and 16 clients;
  - with the default freshness (1000 ms: reads of a block the poller read a
    moment ago come from the register cache) with 1 and 16 clients;
  - with cache 0 and background polling idled (poll intervals 3600 s / 1 day),
    with 1 and 16 clients: the gateway's own cost, like for like with mbusd.

The wire limit is that of bench_bus (bench/bench_bus.c): request + reply, each
followed by t3.5 (1750 us above 19200 baud, else 3.5 characters), 10 bits per
character. Forwarded req/s are printed against it, and against sgsim's pacing
floor (request + 3.5 chars + reply, what the simulator enforces). The line
also carries the background polls of all four devices, counted separately.

Reference: mbusd, from $MBUSD or /tmp/mbusd/mbusd (not a Debian package;
0.2.0 and newer are handled), on the same paced sim line with sgd stopped,
-R 1 (its default 100 ms pause between requests would cap it), -W 500, -N 0,
1 and 16 clients; the ratios sgd/mbusd are printed. Without it:
"mbusd: not available (set MBUSD=path)".

Usage: bench/modbus.py [--build DIR] [--seconds S]. Standard library only;
reuses tests/integration/harness.py. Exit status non-zero only when the
benchmark could not run; figures are reported, never judged as failures.
"""
import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOST = "127.0.0.1"
DEVS = ["WM3M4C:1", "MC750:2", "Bicom:3", "IE14:4"]
TYPES = [1, 4, 2, 1]            # rs485_type_N of each
BAUD_CODE = {1200: 0, 2400: 1, 4800: 2, 9600: 3, 19200: 4, 38400: 5, 57600: 6, 115200: 7}
UNIT, FC, ADDR, COUNT = 1, 4, 107, 10
DISTINCT_ADDR = 140
BITS = 10                       # 8N1 + start bit, as bench_bus
REQ_BYTES, REP_BYTES = 8, 5 + 2 * COUNT


def frame_us(nbytes, baud):
    """sched_rtu_frame_us(): the frame plus its t3.5 silence (integer us)."""
    gap = 1750 if baud > 19200 else 35 * BITS * 1000000 // 10 // baud
    return nbytes * BITS * 1000000 // baud + gap


def wire_limit(baud):
    return 1e6 / (frame_us(REQ_BYTES, baud) + frame_us(REP_BYTES, baud))


def sim_floor(baud):
    return 1e6 / ((REQ_BYTES + 3.5 + REP_BYTES) * BITS * 1e6 / baud)


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


# ---- closed-loop Modbus TCP clients ----

async def _client(port, k, deadline, lat, stat, distinct):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    except (OSError, asyncio.TimeoutError):
        stat["errors"] += 1
        return
    import socket
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # distinct: client k reads from DISTINCT_ADDR + k (inside the P/Q/S/PF
    # registers 140-171, all served, same sizes), so no two clients ask the
    # same and sgd cannot let one read ride along with another's
    addr = DISTINCT_ADDR + k if distinct else ADDR
    pdu = bytes([FC, addr >> 8, addr & 0xFF, COUNT >> 8, COUNT & 0xFF])
    tid = (k * 4099) & 0xFFFF
    perf = time.perf_counter
    try:
        while time.monotonic() < deadline:
            tid = (tid + 1) & 0xFFFF
            frame = bytes([tid >> 8, tid & 0xFF, 0, 0, 0, len(pdu) + 1, UNIT]) + pdu
            t0 = perf()
            writer.write(frame)
            hdr = await asyncio.wait_for(reader.readexactly(7), 5)
            n = (hdr[4] << 8) | hdr[5]
            body = await asyncio.wait_for(reader.readexactly(n - 1), 5)
            dt = perf() - t0
            if (hdr[0] << 8 | hdr[1]) != tid or hdr[6] != UNIT:
                stat["errors"] += 1
                break
            if body[0] != FC or body[1] != 2 * COUNT:
                stat["exceptions"] += 1
                continue
            lat.append(dt)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        stat["errors"] += 1
    finally:
        writer.close()


def load(port, clients, seconds, distinct=False):
    """clients connections reading for seconds: dict rps, p50_ms, p99_ms, errors."""
    lat = []
    stat = {"errors": 0, "exceptions": 0}

    async def main():
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(_client(port, k, deadline, lat, stat, distinct) for k in range(clients)))

    c0 = time.process_time()
    t0 = time.monotonic()
    asyncio.run(main())
    wall = time.monotonic() - t0
    cpu = time.process_time() - c0
    return {"rps": len(lat) / wall, "p50_ms": 1000 * pct(lat, 50), "p99_ms": 1000 * pct(lat, 99),
            "n": len(lat), "errors": stat["errors"], "exceptions": stat["exceptions"],
            "client_cpu": 100.0 * cpu / wall}


# ---- mbusd ----

def find_mbusd():
    exe = os.environ.get("MBUSD") or "/tmp/mbusd/mbusd"
    return exe if os.path.isfile(exe) and os.access(exe, os.X_OK) else None


def start_mbusd(exe, link, baud, port, work, harness):
    log = os.path.join(work, "mbusd.log")
    base = [exe, "-d", "-L", log, "-p", link, "-s", str(baud), "-P", str(port), "-C", "32",
            "-N", "0", "-R", "1", "-W", "500", "-T", "0"]
    last = ""
    # newer versions bind with -A and take the line mode with -m; 0.2.0 knows neither
    for args in (base + ["-A", HOST, "-m", "8n1"], base):
        out = open(os.path.join(work, "mbusd.out"), "w")
        proc = subprocess.Popen(args, stdout=out, stderr=out)
        try:
            harness.wait_until(lambda: proc.poll() is not None or harness.port_accepts(port), 10,
                               "mbusd on port %d" % port)
        except AssertionError:
            pass
        out.close()
        if proc.poll() is None and harness.port_accepts(port):
            return proc
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with open(os.path.join(work, "mbusd.out")) as f:
            last = f.read()[-500:]
    raise RuntimeError("mbusd did not start: %s" % last)


def stop_proc(proc, port, harness):
    if proc and proc.poll() is None:
        proc.terminate()
        harness.port_accepts(port)  # mbusd 0.2.0 sees the signal when select() returns
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- one baud rate ----

def post(sgd, obj):
    st, _, data = sgd.http("POST", "/api/settings", obj)
    if st != 200:
        raise RuntimeError("POST /api/settings %r: %r %r" % (obj, st, data))
    time.sleep(0.05)


def modbus_counters(sgd):
    st, _, data = sgd.http("GET", "/api")
    return data.get("modbus", {}) if st == 200 and isinstance(data, dict) else {}


def sim_requests(sim):
    """(requests to any device, requests to UNIT, simulated wire ms so far)."""
    st = sim.ctl("stats")
    per = st["per_addr"]
    return (sum(v["requests"] for v in per.values()), per.get(str(UNIT), {}).get("requests", 0),
            st["wire_ms"])


def measured(port, clients, seconds, sim, sgd=None, distinct=False):
    """load() plus what the line carried meanwhile."""
    m0 = modbus_counters(sgd) if sgd else {}
    s0 = sim_requests(sim)
    t0 = time.monotonic()
    r = load(port, clients, seconds, distinct)
    wall = time.monotonic() - t0
    s1 = sim_requests(sim)
    m1 = modbus_counters(sgd) if sgd else {}
    r["others_tps"] = ((s1[0] - s0[0]) - (s1[1] - s0[1])) / wall
    r["unit_tps"] = (s1[1] - s0[1]) / wall
    r["busy"] = (s1[2] - s0[2]) / (1000.0 * wall)  # share of the time bytes were on the wire
    r["cache_hits"] = m1.get("cache_hits", 0) - m0.get("cache_hits", 0)
    return r


def run_baud(baud, seconds, harness, work, mbusd):
    res = {"baud": baud, "limit": wire_limit(baud), "floor": sim_floor(baud)}
    work = os.path.join(work, str(baud))
    os.makedirs(work)
    sim = harness.Sim(work, "rs485", DEVS, baud=baud, pace=True)
    sgd = None
    try:
        port, http_port = harness.free_port(), harness.free_port()
        sgd = harness.Sgd(work, {"rs485": sim.link}, extra_conf="modbus_tcp_bind = %s\n" % HOST)
        settings = {"tcp_port": port, "http_port": http_port, "rs485_baud_rate": BAUD_CODE[baud],
                    "poll_meas_interval": 1, "poll_counter_interval": 1, "rs485_cache_ms_1": 0}
        for i, t in enumerate(TYPES):
            settings["rs485_type_%d" % (i + 1)] = t
            settings["rs485_addr_%d" % (i + 1)] = int(DEVS[i].split(":")[1])
        harness.seed_settings(sgd.state, settings)
        sgd.start()
        sgd.http_port = http_port
        harness.wait_until(lambda: harness.port_accepts(port), 10, "sgd Modbus TCP")

        def all_ok():
            live = [d for d in sgd.ok("devices")["devices"] if d["status"] != "disabled"]
            return len(live) == len(DEVS) and all(d["status"] == "ok" for d in live)
        harness.wait_until(all_ok, 60, "all devices ok", interval=0.25)
        load(port, 1, 0.5)  # warm-up

        for cache in (0, 1000):
            if cache:
                post(sgd, {"rs485_cache_ms_1": cache})
                load(port, 1, 0.3)
            for clients in (1, 16):
                res[(cache, clients)] = measured(port, clients, seconds, sim, sgd)
            if not cache:
                res[(0, "16d")] = measured(port, 16, seconds, sim, sgd, distinct=True)
        # the same forwarding with background polling idle: what the gateway
        # itself costs, like for like with mbusd (which polls nothing)
        post(sgd, {"rs485_cache_ms_1": 0, "poll_meas_interval": 3600,
                   "poll_counter_interval": 86400})
        time.sleep(1.5)  # the cycle under way ends
        for clients in (1, 16):
            res[("idle", clients)] = measured(port, clients, seconds, sim, sgd)
        res[("idle", "16d")] = measured(port, 16, seconds, sim, sgd, distinct=True)
        sgd.stop()
        sgd = None

        if mbusd:
            mport = harness.free_port()
            proc = start_mbusd(mbusd, sim.link, baud, mport, work, harness)
            try:
                load(mport, 1, 0.5)
                for clients in (1, 16):
                    res[("mbusd", clients)] = measured(mport, clients, seconds, sim)
                res[("mbusd", "16d")] = measured(mport, 16, seconds, sim, distinct=True)
            finally:
                stop_proc(proc, mport, harness)
    finally:
        if sgd:
            try:
                sgd.stop()
            except Exception as e:
                print("modbus.py: stopping sgd: %s" % e)
        sim.stop()
    return res


def report(res, mbusd):
    baud = res["baud"]
    lim, floor = res["limit"], res["floor"]
    print("== RS485 %d baud: fc %d read of %d registers of unit %d (%d-byte request, %d-byte "
          "reply); wire limit %.1f tx/s, sgsim floor %.1f tx/s ==" % (
              baud, FC, COUNT, UNIT, REQ_BYTES, REP_BYTES, lim, floor))
    print("%-29s %9s %8s %8s %6s %4s %8s %8s %6s %7s" % (
        "run", "req/s", "p50 ms", "p99 ms", "errors", "exc", "to unit1", "others/s", "line",
        "client"))
    rows = [("sgd cache 0, 1 client", (0, 1)), ("sgd cache 0, 16 clients", (0, 16)),
            ("sgd cache 0, 16 distinct", (0, "16d")),
            ("sgd cache 1000, 1 client", (1000, 1)), ("sgd cache 1000, 16 clients", (1000, 16)),
            ("sgd cache 0 no polls, 1 cl.", ("idle", 1)),
            ("sgd cache 0 no polls, 16 cl.", ("idle", 16)),
            ("sgd no polls, 16 distinct", ("idle", "16d")),
            ("mbusd, 1 client", ("mbusd", 1)), ("mbusd, 16 clients", ("mbusd", 16)),
            ("mbusd, 16 distinct", ("mbusd", "16d"))]
    for name, key in rows:
        r = res.get(key)
        if r:
            print("%-29s %9.1f %8.2f %8.2f %6d %4d %8.1f %8.1f %5.0f%% %6.0f%%" % (
                name, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], r["exceptions"],
                r["unit_tps"], r["others_tps"], 100 * r["busy"], r["client_cpu"]))
    print("(to unit1 / others/s: requests the simulator got for device 1 / for the other "
          "devices (background polls); line: share of time bytes were on the wire; client: "
          "CPU of this load generator, ~100 % = client-bound)")
    f1, f16 = res[(0, 1)], res[(0, 16)]
    c1, c16 = res[(1000, 1)], res[(1000, 16)]
    i1, i16 = res[("idle", 1)], res[("idle", 16)]
    d16, id16 = res[(0, "16d")], res[("idle", "16d")]
    print("forwarding / wire limit: 1 client %.3f, 16 clients %.3f (polls idle: %.3f, %.3f); "
          "/ sgsim floor: %.3f, %.3f" % (f1["rps"] / lim, f16["rps"] / lim, i1["rps"] / lim,
                                         i16["rps"] / lim, f1["rps"] / floor, f16["rps"] / floor))
    print("with the cache: 1 client %.1fx, 16 clients %.1fx the forwarded rate (%d, %d cache hits"
          "%s)" % (c1["rps"] / max(f1["rps"], 1e-9), c16["rps"] / max(f16["rps"], 1e-9),
                   c1["cache_hits"], c16["cache_hits"],
                   "; client-bound" if max(c1["client_cpu"], c16["client_cpu"]) > 90 else ""))
    out = {"baud": baud, "limit": lim, "floor": floor,
           "fwd1_rps": f1["rps"], "fwd1_p99": f1["p99_ms"], "fwd16_rps": f16["rps"],
           "fwd16_p99": f16["p99_ms"], "fwd1_ratio": f1["rps"] / lim,
           "fwd16_ratio": f16["rps"] / lim, "cache1_rps": c1["rps"], "cache1_p99": c1["p99_ms"],
           "cache16_rps": c16["rps"], "cache16_p99": c16["p99_ms"],
           "idle1_rps": i1["rps"], "idle1_p99": i1["p99_ms"], "idle16_rps": i16["rps"],
           "idle16_p99": i16["p99_ms"], "polls_tps": f16["others_tps"],
           "fwd16d_rps": d16["rps"], "fwd16d_p99": d16["p99_ms"], "fwd16d_ratio": d16["rps"] / lim,
           "idle16d_rps": id16["rps"], "idle16d_ratio": id16["rps"] / lim,
           "errors": sum(res[k]["errors"] + res[k]["exceptions"]
                         for k in ((0, 1), (0, 16), (1000, 1), (1000, 16), ("idle", 1),
                                   ("idle", 16), (0, "16d"), ("idle", "16d")))}
    if ("mbusd", 1) in res:
        m1, m16, m16d = res[("mbusd", 1)], res[("mbusd", 16)], res[("mbusd", "16d")]
        out.update({"mbusd1_rps": m1["rps"], "mbusd1_p99": m1["p99_ms"],
                    "mbusd16_rps": m16["rps"], "mbusd16_p99": m16["p99_ms"],
                    "vs_mbusd1": f1["rps"] / max(m1["rps"], 1e-9),
                    "vs_mbusd16": f16["rps"] / max(m16["rps"], 1e-9),
                    "idle_vs_mbusd1": i1["rps"] / max(m1["rps"], 1e-9),
                    "idle_vs_mbusd16": i16["rps"] / max(m16["rps"], 1e-9),
                    "mbusd16d_rps": m16d["rps"],
                    "vs_mbusd16d": d16["rps"] / max(m16d["rps"], 1e-9),
                    "idle_vs_mbusd16d": id16["rps"] / max(m16d["rps"], 1e-9)})
        print("sgd/mbusd req/s, forwarding while polling: 1 client %.3f, 16 clients %.3f; "
              "polls idle (like for like): %.3f, %.3f" % (
                  out["vs_mbusd1"], out["vs_mbusd16"], out["idle_vs_mbusd1"],
                  out["idle_vs_mbusd16"]))
        print("16 clients on distinct registers (nothing to share): sgd/mbusd %.3f while "
              "polling, %.3f polls idle" % (out["vs_mbusd16d"], out["idle_vs_mbusd16d"]))
        print("p99 ms sgd (polling) / sgd (polls idle) / mbusd: 1 client %.2f / %.2f / %.2f, "
              "16 clients %.2f / %.2f / %.2f" % (f1["p99_ms"], i1["p99_ms"], m1["p99_ms"],
                                                 f16["p99_ms"], i16["p99_ms"], m16["p99_ms"]))
    else:
        print("mbusd: not available (set MBUSD=path)")
    print("RESULT " + " ".join("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v)
                               for k, v in out.items()))
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--baud", type=int, action="append",
                    help="baud rate(s) to run (default 115200 and 19200)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ["SG_BUILD"] = os.path.relpath(build, ROOT) if build.startswith(ROOT) else build
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness  # noqa: E402  (needs SG_BUILD set first)
    harness.BUILD = build

    mbusd = find_mbusd()
    work = tempfile.mkdtemp(prefix="sgd-bench-modbus-")
    rc = 0
    try:
        for baud in a.baud or (115200, 19200):
            report(run_baud(baud, a.seconds, harness, work, mbusd), mbusd)
    except Exception as e:  # report, don't fail `make bench` with a traceback
        print("modbus.py: %s" % e)
        for d, _, files in sorted(os.walk(work)):
            for fn in sorted(files):
                if fn in ("sgd.log", "mbusd.log", "mbusd.out"):
                    with open(os.path.join(d, fn)) as f:
                        print("--- %s (tail) ---\n%s" % (os.path.join(d, fn),
                                                         "".join(f.readlines()[-20:])))
        rc = 1
    finally:
        if rc == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("modbus.py: state kept in %s" % work)
    return rc


if __name__ == "__main__":
    sys.exit(main())
