// Minimal SG status page: GET /api and /api/devices every 5 s, a login form
// when the gateway answers 403. Data only ever reaches the DOM as textContent.
"use strict";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

// [label, section, key, formatter]; a row without a key starts a section.
const ROWS = [
  ["General"],
  ["Model Type", "device", "model_type"],
  ["Serial number", "device", "serial_number"],
  ["Connection mode", "status", "connection_mode"],
  ["Description", "device", "description"],
  ["Location", "device", "location"],
  ["SG Status"],
  ["IP address", "status", "ip_address"],
  ["MAC address", "status", "mac_address"],
  ["App Status", "status", "app_status"],
  ["Upgrade Status", "status", "upgrade_status"],
  ["Link 1 Status", "status", "link1_status"],
  ["Link 2 Status", "status", "link2_status"],
  ["Settings CRC", "status", "settings_crc", hex],
  ["Free Memory", "status", "free_memory"],
  ["Error flags", "status", "error_flags", hex],
  ["Temperature", "status", "temperature"],
  ["Pulse counter", "status", "pulse_counter"],
  ["Devices responding", null, "devices_responding", null],
  ["Version Info"],
  ["SW Version", "device", "sw_ver"],
  ["HW Version", "device", "hw_ver"],
  ["Other"],
  ["Active Tariff", "status", "active_tariff"],
  ["Uptime", "status", "uptime", uptime],
  ["Local Time", "status", "local_time"],
];

function text(v) {
  if (v === undefined || v === null || v === "") return "–";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function hex(v) {
  return typeof v === "number" ? "0x" + v.toString(16).toUpperCase() : text(v);
}

function uptime(v) {
  if (typeof v !== "number") return text(v);
  const p = (n) => String(n).padStart(2, "0");
  const d = Math.floor(v / 86400), h = Math.floor(v / 3600) % 24;
  return d + "d " + p(h) + ":" + p(Math.floor(v / 60) % 60) + ":" + p(Math.floor(v % 60));
}

function cell(tag, value, cls) {
  const c = document.createElement(tag);
  c.textContent = value;
  if (cls) c.className = cls;
  return c;
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((c) => tr.appendChild(c));
  return tr;
}

function value(api, r) {
  if (r[2] === "devices_responding")
    return text(api.devices_responding) + " of " + text(api.devices_enabled);
  const fmt = r[3] || text;
  return fmt((api[r[1]] || {})[r[2]]);
}

function sectionRow(label) {
  const th = cell("th", label);
  th.colSpan = 2;
  const tr = row([th]);
  tr.className = "section";
  return tr;
}

function renderStatus(api) {
  $("status").tBodies[0].replaceChildren(...ROWS.map((r) => r.length === 1
    ? sectionRow(r[0]) : row([cell("th", r[0]), cell("td", value(api, r))])));
}

function renderDevices(list) {
  const keys = ["interface", "model", "serial", "description", "modbus_address", "status",
                "last_error"];
  $("devices").tBodies[0].replaceChildren(
    ...list.map((d) => row(keys.map((k) => cell("td", text(d[k]))))));
}

class AuthError extends Error {}

async function get(path) {
  const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (r.status === 403) throw new AuthError();
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function show(which) {
  $("login").hidden = which !== "login";
  $("content").hidden = which !== "content";
  $("logout").hidden = !document.cookie.split(/;\s*/).some((c) => c.startsWith("Authorization="));
}

async function refresh() {
  if (!$("login").hidden) return;
  try {
    const api = await get("/api");
    renderStatus(api);
    show("content");
    $("error").textContent = "";
    try {
      renderDevices((await get("/api/devices")).devices || []);
    } catch (e) {
      if (e instanceof AuthError) throw e;
      $("error").textContent = "Devices: " + e.message;
    }
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof AuthError) show("login");
    else $("error").textContent = e.message;
  }
}

function setCookie(value, extra) {
  document.cookie = "Authorization=" + value + "; path=/; SameSite=Strict" + (extra || "");
}

// btoa takes Latin-1 only: encode as UTF-8 bytes first.
function b64(s) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s)));
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  setCookie("Basic " + b64(f.user.value + ":" + f.pass.value));
  $("login-error").textContent = "";
  try {
    const r = await fetch("/api/auth", { method: "POST", credentials: "same-origin" });
    if (r.status !== 200) throw new Error(r.status === 403 ? "Wrong user or password"
                                                           : "Login failed (HTTP " + r.status + ")");
    f.pass.value = "";
    show("content");
    refresh();
  } catch (e) {
    setCookie("", "; max-age=0");
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", (ev) => {
  ev.preventDefault();
  setCookie("", "; max-age=0");
  show("content");
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
