// weir dashboard: reads the API relative to this page, renders tables, filters them by the
// search box, and refreshes every few seconds. No framework, no build step.
"use strict";

const API = "../api/";
const REFRESH_MS = 5000;
const state = { data: null };

async function getJSON(path) {
  const resp = await fetch(API + path, { cache: "no-store" });
  if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
  return resp.json();
}

// Every page of a list endpoint (Traefik's X-Next-Page is 1 on the last page).
async function getAll(path) {
  let page = 1;
  const out = [];
  for (;;) {
    const resp = await fetch(API + path + "?per_page=500&page=" + page, { cache: "no-store" });
    if (!resp.ok) throw new Error(path + ": HTTP " + resp.status);
    out.push(...(await resp.json()));
    const next = parseInt(resp.headers.get("X-Next-Page") || "1", 10);
    if (next <= page) return out;
    page = next;
  }
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function matches(item, query) {
  if (!query) return true;
  const hay = [item.name, item.rule, item.service, item.type, item.status, (item.error || []).join(" ")]
    .filter(Boolean).join(" ").toLowerCase();
  return hay.includes(query);
}

function statusCell(row, status) {
  const td = cell(row, status || "", "status status-" + (status || "unknown"));
  td.setAttribute("data-status", status || "");
}

function errorsCell(row, errors) {
  const td = cell(row, "", "errors");
  (errors || []).forEach((e) => {
    const div = document.createElement("div");
    div.className = "error";
    div.textContent = e;
    td.appendChild(div);
  });
}

function fillRouters(id, items, query) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  items.filter((i) => matches(i, query)).forEach((r) => {
    const row = document.createElement("tr");
    row.setAttribute("data-name", r.name);
    statusCell(row, r.status);
    cell(row, r.name, "name");
    cell(row, r.rule || "");
    cell(row, (r.entryPoints || []).join(", "));
    cell(row, r.service || "");
    errorsCell(row, r.error);
    body.appendChild(row);
  });
}

function fillServices(items, query) {
  const body = document.querySelector("#http-services tbody");
  body.replaceChildren();
  items.filter((i) => matches(i, query)).forEach((s) => {
    const row = document.createElement("tr");
    row.setAttribute("data-name", s.name);
    statusCell(row, s.status);
    cell(row, s.name, "name");
    cell(row, s.type || "");
    const servers = Object.entries(s.serverStatus || {}).map(([url, st]) => url + " " + st);
    cell(row, servers.join(", "));
    errorsCell(row, s.error);
    body.appendChild(row);
  });
}

function fillMiddlewares(items, query) {
  const body = document.querySelector("#http-middlewares tbody");
  body.replaceChildren();
  items.filter((i) => matches(i, query)).forEach((m) => {
    const row = document.createElement("tr");
    row.setAttribute("data-name", m.name);
    statusCell(row, m.status);
    cell(row, m.name, "name");
    cell(row, m.type || "");
    errorsCell(row, m.error);
    body.appendChild(row);
  });
}

function fillOverview(o) {
  const el = document.getElementById("overview");
  el.replaceChildren();
  [["HTTP", o.http], ["TCP", o.tcp], ["UDP", o.udp]].forEach(([label, sec]) => {
    Object.entries(sec || {}).forEach(([kind, c]) => {
      const box = document.createElement("div");
      box.className = "card";
      box.textContent = label + " " + kind + ": " + c.total + " total, " + c.warnings + " warnings, " + c.errors + " errors";
      el.appendChild(box);
    });
  });
}

function render() {
  const d = state.data;
  if (!d) return;
  const query = document.getElementById("search").value.trim().toLowerCase();
  fillOverview(d.overview);
  const eps = document.querySelector("#entrypoints tbody");
  eps.replaceChildren();
  d.entrypoints.forEach((e) => {
    const row = document.createElement("tr");
    cell(row, e.name, "name");
    cell(row, e.address);
    eps.appendChild(row);
  });
  fillRouters("http-routers", d.routers, query);
  fillServices(d.services, query);
  fillMiddlewares(d.middlewares, query);
  fillRouters("tcp-routers", d.tcpRouters, query);
  fillRouters("udp-routers", d.udpRouters, query);
}

async function refresh() {
  const failure = document.getElementById("failure");
  try {
    const [overview, entrypoints, routers, services, middlewares, tcpRouters, udpRouters, version] = await Promise.all([
      getJSON("overview"),
      getAll("entrypoints"),
      getAll("http/routers"),
      getAll("http/services"),
      getAll("http/middlewares"),
      getAll("tcp/routers"),
      getAll("udp/routers"),
      getJSON("version"),
    ]);
    state.data = { overview, entrypoints, routers, services, middlewares, tcpRouters, udpRouters };
    document.getElementById("version").textContent = "version " + version.Version;
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    failure.hidden = true;
    render();
  } catch (e) {
    failure.hidden = false;
    failure.textContent = "Cannot read the API: " + e.message;
  }
}

document.getElementById("search").addEventListener("input", render);
refresh();
setInterval(refresh, REFRESH_MS);
