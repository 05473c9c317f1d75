"""Damaged and malformed files through the daemon: settings.json and its last
good copy, time-stamped quarantine copies, a broken device description."""
import base64
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from harness import (BUILD, DEMO_SETTINGS, DEVICES, RIGHT_IR_BICOM_ADDR, Sgd, Sim, free_port,
                     http_request, port_accepts, run, test, wait_until)

AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:iskra").decode()}
ERRF_SETTINGS_FILE = 0x100
ERRF_DESCRIPTIONS = 0x200


def state_file(sgd, name):
    return os.path.join(sgd.state, name)


def bad_copies(sgd, name="settings.json"):
    return sorted(glob.glob(state_file(sgd, name + ".bad-*")))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def flip_digit(path, value):
    """Change one digit of value in the file: still JSON, wrong CRC."""
    txt = read(path)
    i = txt.index(value.encode())
    write(path, txt[:i] + bytes([txt[i] ^ 1]) + txt[i + 1:])


def api_status(port, headers=None):
    st, _, doc = http_request(port, "GET", "/api", headers=headers)
    assert st == 200, (st, doc)
    return doc


@test
def test_two_damaged_settings_both_kept():
    sgd = Sgd(tempfile.mkdtemp(prefix="sgd-files-"), {})
    sgd.start()
    sgd.ok("set", "location=Cellar")
    sgd.stop()
    contents = []
    for damage in (b"first damage", b"second damage"):
        write(state_file(sgd, "settings.json"), damage)
        contents.append(damage)
        sgd.start()
        sgd.stop()
    copies = bad_copies(sgd)
    assert len(copies) == 2, copies
    assert sorted(read(c) for c in copies) == sorted(contents), copies
    assert not os.path.exists(state_file(sgd, "settings.json.bad")), "old fixed name used"


@test
def test_damaged_settings_restored_from_prev():
    sgd = Sgd(tempfile.mkdtemp(prefix="sgd-files-"), {})
    sgd.start()
    port = sgd.http_on()
    sgd.ok("set", "auth_enabled=1", "location=Attic")
    sgd.stop()
    good = read(state_file(sgd, "settings.json"))
    assert read(state_file(sgd, "settings.json.prev")) == good
    flip_digit(state_file(sgd, "settings.json"), str(port))
    sgd.start()
    try:
        s = sgd.ok("settings")["settings"]
        # authentication stays on and the port stays where it was
        assert s["auth_enabled"] == 1 and s["http_port"] == port and s["location"] == "Attic", s
        wait_until(lambda: port_accepts(port), 10, "HTTP on the old port")
        st, _, _ = http_request(port, "GET", "/api")
        assert st in (401, 403), st  # authentication still on
        doc = api_status(port, AUTH)
        assert int(doc["status"]["error_flags"], 16) & ERRF_SETTINGS_FILE, doc["status"]
        sf = doc["settings_file"]
        assert sf["source"] == "settings.json.prev", sf
        assert "CRC mismatch" in sf["error"] and "settings.json.bad-" in sf["error"], sf
        ctl = sgd.ok("status")
        assert ctl["settings_source"] == "settings.json.prev", ctl
        assert "CRC mismatch" in ctl["settings_error"], ctl
        text = subprocess.run([os.path.join(BUILD, "sgctl"), "--socket", sgd.sock, "status"],
                              capture_output=True, text=True, timeout=30).stdout
        assert "Settings error:" in text and "CRC mismatch" in text, text
        assert len(bad_copies(sgd)) == 1
        # settings.json was written back: the next start is clean
        assert read(state_file(sgd, "settings.json")) == good
    finally:
        sgd.stop()
    sgd.start()
    try:
        assert sgd.ok("status")["settings_error"] is None
        doc = api_status(port, AUTH)
        assert doc["settings_file"] == {"source": "settings.json", "error": None}, doc
        assert not int(doc["status"]["error_flags"], 16) & ERRF_SETTINGS_FILE
    finally:
        sgd.stop()


@test
def test_damaged_settings_and_prev_defaults():
    sgd = Sgd(tempfile.mkdtemp(prefix="sgd-files-"), {})
    sgd.start()
    port = sgd.http_on()
    sgd.stop()
    flip_digit(state_file(sgd, "settings.json"), str(port))
    flip_digit(state_file(sgd, "settings.json.prev"), str(port))
    sgd.start()
    try:
        st = sgd.ok("status")
        assert st["settings_source"] == "defaults", st
        assert "factory defaults in use" in st["settings_error"], st
        assert "settings.json.prev: CRC mismatch" in st["settings_error"], st
        assert sgd.ok("settings", "http_port")["http_port"] == 80
        assert len(bad_copies(sgd)) == 1 and len(bad_copies(sgd, "settings.json.prev")) == 1
        port = sgd.http_on()
        doc = api_status(port)
        assert int(doc["status"]["error_flags"], 16) & ERRF_SETTINGS_FILE, doc["status"]
        assert doc["settings_file"]["source"] == "defaults", doc["settings_file"]
        assert "factory defaults" in doc["settings_file"]["error"], doc["settings_file"]
    finally:
        sgd.stop()


def broken_devices_dir():
    """etc/devices with wm3m4.json broken at one member (its "match" intact)."""
    d = tempfile.mkdtemp(prefix="sgd-devices-")
    for name in os.listdir(DEVICES):
        if name.endswith(".json"):
            shutil.copy(os.path.join(DEVICES, name), d)
    path = os.path.join(d, "wm3m4.json")
    txt = read(path).decode()
    i = txt.index('"phases": ')
    j = txt.index(",", i)
    write(path, (txt[:i] + '"phases": 7' + txt[j:]).encode())
    return d


@test
def test_malformed_description_skipped():
    devices = broken_devices_dir()
    work = tempfile.mkdtemp(prefix="sgd-files-")
    # the simulators serve from the shipped files (they refuse broken ones)
    left = Sim(work, "left_ir", ["IE38:33"], baud=19200)
    right = Sim(work, "right_ir", ["Bicom:%d" % RIGHT_IR_BICOM_ADDR], baud=19200)
    rs485 = Sim(work, "rs485", ["WM3M4C:1", "MC750:2", "Bicom:3", "IE14:4"])
    sgd = Sgd(work, {"left": left.link, "right": right.link, "rs485": rs485.link},
              devices_dir=devices)
    try:
        sgd.start()
        sgd.ok("set", *DEMO_SETTINGS)

        def settled():
            devs = {d["index"]: d for d in sgd.ok("devices")["devices"]}
            others_ok = all(devs[i]["status"] == "ok" for i in (0, 2, 3, 4))
            return others_ok and devs[1]["status"] == "unknown model" and devs
        devs = wait_until(settled, 30, "the other devices polled, WM3M4C without description")
        assert "no description" in devs[1]["last_error"], devs[1]
        assert "wm3m4.json is broken" in devs[1]["last_error"], devs[1]
        # the others are really read
        assert sgd.ok("measurements", "2")
        port = sgd.http_on()
        doc = api_status(port)
        assert int(doc["status"]["error_flags"], 16) & ERRF_DESCRIPTIONS, doc["status"]
        d = doc["descriptions"]
        assert d["broken"] == 1 and d["loaded"] == 7, d
        assert d["errors"] == [{"file": "wm3m4.json", "path": "phases",
                                "reason": d["errors"][0]["reason"]}], d
        assert d["errors"][0]["reason"], d
        st, _, body = http_request(port, "GET", "/api/measurement/1")
        assert st == 503 and "no description" in body["error"], (st, body)
        st, _, body = http_request(port, "GET", "/api/devices")
        slot = [x for x in body["devices"] if x.get("index") == 1] if isinstance(body, dict) \
            else [x for x in body if x.get("index") == 1]
        assert slot and "wm3m4.json is broken" in str(slot[0]), slot
        st, _, body = http_request(port, "GET", "/api/measurement/2")
        assert st == 200, (st, body)
        ctl = sgd.ok("status")
        assert ctl["descriptions_broken"] == 1 and ctl["descriptions_loaded"] == 7, ctl
        assert ctl["description_errors"][0]["file"] == "wm3m4.json", ctl
        text = subprocess.run([os.path.join(BUILD, "sgctl"), "--socket", sgd.sock, "status"],
                              capture_output=True, text=True, timeout=30).stdout
        assert "BROKEN DESCRIPTION" in text and "wm3m4.json" in text and "phases" in text, text
        assert "wm3m4.json skipped" in sgd.logtext()
    finally:
        sgd.stop()
        for s in (left, right, rs485):
            s.stop()
    # the configuration check names the file and lets the daemon start
    p = subprocess.run([os.path.join(BUILD, "sgd"), "-n", "-c", sgd.conf], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert "wm3m4.json" in p.stderr and "phases" in p.stderr, p.stderr
    assert "1 device description skipped" in p.stdout, p.stdout


if __name__ == "__main__":
    sys.exit(run(sys.argv))
