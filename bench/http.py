#!/usr/bin/python3
"""REST throughput: sgd's /api/measurement/0 against nginx serving the same JSON.

sgd polls 18 simulated devices (the set-up of bench/cpu.py: sgsim --pace with
16 RS485 devices at 115200 baud, an IE38 on the Left IR and a Bicom on the
Right IR at 19200, poll_meas_interval=1, poll_counter_interval=1) and serves
HTTP on a free loopback port. The body of /api/measurement/0 is written to a
temporary document root, and nginx (Debian nginx, keep-alive, access log
off, application/json) serves that file on another loopback port. wrk
(-t2 -c64 --latency, keep-alive) runs against sgd, then against nginx with
worker_processes 1 (the reference: sgd's HTTP runs on one thread), then against
nginx with worker_processes auto (context). Printed: requests/s, p99 latency,
errors, the sgd/nginx ratio (target >= 0.5), sgd's CPU and its bus
transactions during its run (polling must go on under load).

Usage: bench/http.py [--build DIR] [--seconds S] [--connections N] [--threads T].
Standard library only; reuses tests/integration/harness.py and bench/cpu.py.
Exit status non-zero only when the benchmark could not run (wrk or nginx
missing, sgd or nginx did not start, no device answered); a missed target is
reported, never an error.
"""
import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# This file is named like the standard library's http package: keep its
# directory off the import path so that http.client (harness.py) is the real one.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
TARGET = 0.5
PATH = "/api/measurement/0"

NGINX_CONF = """daemon off;
worker_processes {workers};
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    types {{ }}
    default_type application/json;
    client_body_temp_path {work}/nginx-tmp/body;
    proxy_temp_path {work}/nginx-tmp/proxy;
    fastcgi_temp_path {work}/nginx-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-tmp/uwsgi;
    scgi_temp_path {work}/nginx-tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {work}/www;
    }}
}}
"""


def find_tool(name):
    return shutil.which(name) or next((p for p in ("/usr/sbin/" + name, "/sbin/" + name)
                                       if os.access(p, os.X_OK)), None)


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out):
    """requests/s, p99 ms, requests, errors (non-2xx + socket errors) of wrk --latency output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    n = re.search(r"^\s*(\d+) requests in", out, re.M)
    if not (rps and p99 and n):
        raise RuntimeError("cannot parse wrk output:\n" + out)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    return {"rps": float(rps.group(1)), "p99_ms": to_ms(*p99.groups()), "requests": int(n.group(1)),
            "errors": errors}


def run_wrk(wrk, url, a):
    args = [wrk, "-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.seconds, "--latency",
            "--timeout", "5s", url]
    p = subprocess.run(args, capture_output=True, text=True, timeout=a.seconds + 60)
    if p.returncode != 0:
        raise RuntimeError("wrk failed (%d): %s" % (p.returncode, p.stderr.strip()))
    return parse_wrk(p.stdout)


def start_nginx(nginx, work, workers, port, harness):
    conf = os.path.join(work, "nginx-%s.conf" % workers)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(workers=workers, work=work, port=port))
    os.makedirs(os.path.join(work, "nginx-tmp"), exist_ok=True)
    log = open(os.path.join(work, "nginx-%s.out" % workers), "w")
    proc = subprocess.Popen([nginx, "-e", os.path.join(work, "nginx-error.log"), "-c", conf,
                             "-p", work], stdout=log, stderr=log)
    try:
        harness.wait_until(lambda: proc.poll() is not None or harness.port_accepts(port), 10,
                           "nginx on port %d" % port)
    except AssertionError:
        proc.poll()
    if proc.poll() is not None:
        log.close()
        with open(os.path.join(work, "nginx-%s.out" % workers)) as f:
            out = f.read()
        err = os.path.join(work, "nginx-error.log")
        if os.path.exists(err):
            with open(err) as f:
                out += f.read()
        raise RuntimeError("nginx did not start (exit %r):\n%s" % (proc.returncode, out))
    return proc, log


def stop_nginx(proc, log):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bus_tx(sgd):
    return sum(b.get("transactions", 0) for b in sgd.ok("status")["buses"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    wrk, nginx = find_tool("wrk"), find_tool("nginx")
    missing = [n for n, p in (("wrk", wrk), ("nginx", nginx)) if not p]
    if missing:
        print("http.py: %s not installed (Debian packages wrk, nginx: run "
              "tools/install-deps bench as root)" % " and ".join(missing))
        return 2

    build = os.path.abspath(a.build)
    os.environ["SG_BUILD"] = os.path.relpath(build, ROOT) if build.startswith(ROOT) else build
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    import harness  # noqa: E402  (needs SG_BUILD set first)
    harness.BUILD = build
    spec = importlib.util.spec_from_file_location("cpu", os.path.join(HERE, "cpu.py"))
    cpu = importlib.util.module_from_spec(spec)  # the 18-device mix
    spec.loader.exec_module(cpu)

    work = tempfile.mkdtemp(prefix="sgd-bench-http-")
    os.chmod(work, 0o755)  # nginx workers may run as another user
    sims, sgd, ngx = [], None, None
    rc = 0
    try:
        sgd, _ = cpu.start_rig(harness, work, sims, cpu.rig_settings())
        port = sgd.http_on()
        st, _, body = sgd.http("GET", PATH, raw=True)
        if st != 200:
            raise RuntimeError("GET %s answered %d: %r" % (PATH, st, body[:200]))
        docdir = os.path.join(work, "www", os.path.dirname(PATH).lstrip("/"))
        os.makedirs(docdir)
        with open(os.path.join(work, "www", PATH.lstrip("/")), "wb") as f:
            f.write(body)
        for dirpath, _, files in os.walk(os.path.join(work, "www")):
            os.chmod(dirpath, 0o755)
            for fn in files:
                os.chmod(os.path.join(dirpath, fn), 0o644)

        # bus transactions without HTTP load, for comparison with those under load
        tx_a, ta = bus_tx(sgd), time.monotonic()
        time.sleep(3)
        idle_tps = (bus_tx(sgd) - tx_a) / (time.monotonic() - ta)

        # sgd under load, with its CPU and bus transactions over the run
        pid = sgd.proc.pid
        c0, t0, tx0 = proc_cpu_s(pid), time.monotonic(), bus_tx(sgd)
        r_sgd = run_wrk(wrk, "http://127.0.0.1:%d%s" % (port, PATH), a)
        c1, t1, tx1 = proc_cpu_s(pid), time.monotonic(), bus_tx(sgd)
        wall = t1 - t0
        not_ok = [d["interface"] for d in sgd.ok("devices")["devices"]
                  if d["status"] not in ("ok", "disabled")]

        refs = []
        for workers in ("1", "auto"):
            nport = harness.free_port()
            ngx = start_nginx(nginx, work, workers, nport, harness)
            st, _, nbody = harness.http_request(nport, "GET", PATH, raw=True)
            if st != 200 or nbody != body:
                raise RuntimeError("nginx served %d, %d bytes (expected the %d-byte file)"
                                   % (st, len(nbody), len(body)))
            refs.append(run_wrk(wrk, "http://127.0.0.1:%d%s" % (nport, PATH), a))
            stop_nginx(*ngx)
            ngx = None
        r_ngx, r_auto = refs
        ratio = r_sgd["rps"] / r_ngx["rps"] if r_ngx["rps"] else 0.0
        ratio_auto = r_sgd["rps"] / r_auto["rps"] if r_auto["rps"] else 0.0
        ncpu = os.cpu_count() or 1

        print("body %d bytes; wrk -t%d -c%d -d%ds --latency (keep-alive), %d CPUs"
              % (len(body), a.threads, a.connections, a.seconds, ncpu))
        print("%-22s %11s %10s %9s %8s" % ("server", "requests/s", "p99 ms", "requests", "errors"))
        for name, r in (("sgd", r_sgd), ("nginx 1 worker", r_ngx),
                        ("nginx auto (%d)" % ncpu, r_auto)):
            print("%-22s %11.0f %10.2f %9d %8d" % (name, r["rps"], r["p99_ms"], r["requests"],
                                                  r["errors"]))
        print("sgd/nginx(1 worker) %.3f (target >= %.1f: %s); sgd/nginx(auto) %.3f"
              % (ratio, TARGET, "met" if ratio >= TARGET else "MISSED", ratio_auto))
        print("sgd during its run: %.1f %% of one core; bus %.1f tx/s (%.1f tx/s without HTTP "
              "load); devices not ok: %s" % (100.0 * (c1 - c0) / wall, (tx1 - tx0) / wall, idle_tps,
                                            ", ".join(not_ok) or "none"))
        print("RESULT sgd_rps=%.0f sgd_p99_ms=%.2f sgd_errors=%d nginx_rps=%.0f nginx_p99_ms=%.2f "
              "nginx_errors=%d ratio=%.3f nginx_auto_rps=%.0f nginx_auto_p99_ms=%.2f "
              "nginx_auto_workers=%d ratio_auto=%.3f body_bytes=%d sgd_cpu_pct=%.1f bus_tps=%.1f "
              "bus_idle_tps=%.1f devices_not_ok=%d"
              % (r_sgd["rps"], r_sgd["p99_ms"], r_sgd["errors"], r_ngx["rps"], r_ngx["p99_ms"],
                 r_ngx["errors"], ratio, r_auto["rps"], r_auto["p99_ms"], ncpu, ratio_auto,
                 len(body), 100.0 * (c1 - c0) / wall, (tx1 - tx0) / wall, idle_tps,
                 len(not_ok)))
    except Exception as e:  # report, don't fail `make bench` with a traceback
        print("http.py: %s" % e)
        if sgd and os.path.exists(sgd.logpath):
            print("--- sgd log (tail) ---\n" + "".join(open(sgd.logpath).readlines()[-20:]))
        rc = 1
    finally:
        if ngx:
            stop_nginx(*ngx)
        cpu.stop_rig("http.py", rc, work, sgd, sims)
    return rc


if __name__ == "__main__":
    sys.exit(main())
