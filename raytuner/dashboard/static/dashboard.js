// raytuner dashboard: polls the server's JSON and redraws; served from the package, no dependency.
"use strict";

const POLL_MS = 1500;
const IDLE_POLL_MS = 10000; // an experiment that is not running changes rarely

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, {credentials: "same-origin", cache: "no-store"});
  let body = null;
  try { body = await response.json(); } catch (e) { body = {error: "HTTP " + response.status}; }
  if (!response.ok && !body.error) body.error = "HTTP " + response.status;
  return body;
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  if (!problem) return;
  problem.hidden = !text;
  problem.textContent = text || "";
}

function stamp() {
  const updated = document.getElementById("updated");
  if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString();
}

function number(value) {
  if (typeof value !== "number") return value === null || value === undefined ? "-" : String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1e-3 && Math.abs(value) < 1e5 ? value.toPrecision(6).replace(/\.?0+$/, "") : value.toExponential(3);
}

function expLink(name) { return "/e/" + encodeURIComponent(name); }

// ---------------------------------------------------------------- the catalog

async function pollCatalog() {
  const data = await getJSON("/api/experiments").catch((e) => ({error: String(e)}));
  if (data.error) { showProblem(data.error); }
  else {
    showProblem(data.note || "");
    const body = document.querySelector("#experiments tbody");
    const ticked = new Set(Array.from(body.querySelectorAll("input:checked")).map((i) => i.value));
    body.replaceChildren();
    for (const info of data.experiments) {
      const row = el("tr");
      row.dataset.name = info.name;
      const tick = el("input");
      tick.type = "checkbox"; tick.name = "e"; tick.value = info.name; tick.checked = ticked.has(info.name);
      const box = el("td"); box.append(tick); row.append(box);
      const name = el("td"); const link = el("a", info.name); link.href = expLink(info.name); name.append(link); row.append(name);
      const state = info.kind === "ray-tune" ? info.state + " (Ray Tune)" : info.state;
      row.append(el("td", state, "state-" + info.state.replace(/\W/g, "")));
      if (["unreadable", "unknown"].includes(info.state)) row.className = "broken";
      const trials = Object.entries(info.trials).filter(([, n]) => n).map(([k, n]) => n + " " + k).join(", ");
      row.append(el("td", trials || "-"));
      let best = info.best === null ? "-" : info.metric + " " + number(info.best);
      if (info.front !== null) best = "Pareto front: " + info.front + " trials";
      row.append(el("td", best, "num best"));
      row.append(el("td", info.started_at ? new Date(info.started_at * 1000).toLocaleString() : "-"));
      const duration = info.duration_s === null ? "-" : info.duration_s.toFixed(1) + "s" + (info.so_far ? " so far" : "");
      row.append(el("td", duration, "num"));
      body.append(row);
    }
    stamp();
  }
  setTimeout(pollCatalog, POLL_MS);
}

// ---------------------------------------------------------------- one experiment

const table = {page: 1, sort: "", desc: false, where: ""};

let shownVersion = "";

async function pollCharts(name) {
  const since = new URLSearchParams({since: shownVersion});
  const data = await getJSON("/api/e/" + encodeURIComponent(name) + "/charts?" + since).catch((e) => ({error: String(e)}));
  let wait = POLL_MS;
  if (data.error) { showProblem(data.error); }
  else {
    document.getElementById("state").textContent = data.state;
    if (!data.unchanged) showProblem(data.note || "");
    shownVersion = data.version || "";
    const charts = document.getElementById("charts");
    for (const section of data.sections || []) {
      let node = document.getElementById(section.kind);
      if (!node) { node = el("section"); node.id = section.kind; charts.append(node); }
      node.className = section.omitted ? "omitted" : "";
      const parts = [el("h2", section.title)];
      if (section.omitted) parts.push(el("p", "Not drawn: " + section.omitted, "note"));
      else {
        parts.push(el("p", section.caption, "caption"));
        const figure = el("figure"); figure.style.margin = "0";
        figure.innerHTML = section.html; // the server's own SVG, every value escaped there
        parts.push(figure);
      }
      node.replaceChildren(...parts);
    }
    stamp();
    await loadTrials(name);
    if (data.state !== "running") wait = IDLE_POLL_MS;
  }
  setTimeout(() => pollCharts(name), wait);
}

async function loadTrials(name) {
  const query = new URLSearchParams({page: table.page, where: table.where, sort: table.sort, desc: table.desc ? "1" : "0"});
  const data = await getJSON("/api/e/" + encodeURIComponent(name) + "/trials?" + query);
  const count = document.getElementById("count");
  if (data.error) { count.textContent = data.error; count.className = "problem"; return; }
  count.className = "";
  count.textContent = data.note ? data.note : data.matched + " of " + data.total + " trials";
  const head = el("tr");
  for (const column of data.columns) {
    const th = el("th", column + (table.sort === column ? (table.desc ? " ↓" : " ↑") : ""));
    if (table.sort === column) th.className = "sorted";
    th.addEventListener("click", () => {
      table.desc = table.sort === column ? !table.desc : false;
      table.sort = column; table.page = 1; loadTrials(name);
    });
    head.append(th);
  }
  document.querySelector("#trial-table thead").replaceChildren(head);
  const rows = data.rows.map((values) => {
    const row = el("tr");
    values.forEach((value, i) => {
      const cell = el("td", null, typeof value === "number" ? "num" : "");
      if (data.columns[i] === "trial_id") {
        const link = el("a", value); link.href = expLink(name) + "/trial/" + encodeURIComponent(value); cell.append(link);
      } else cell.textContent = number(value);
      row.append(cell);
    });
    return row;
  });
  document.querySelector("#trial-table tbody").replaceChildren(...rows);
  table.page = data.page;
  document.getElementById("pageinfo").textContent = "page " + data.page + " of " + data.pages;
  document.getElementById("prev").disabled = data.page <= 1;
  document.getElementById("next").disabled = data.page >= data.pages;
}

function startExperiment() {
  const name = document.body.dataset.name;
  document.getElementById("filter").addEventListener("submit", (event) => {
    event.preventDefault();
    table.where = document.getElementById("where").value.trim(); table.page = 1; loadTrials(name);
  });
  document.getElementById("prev").addEventListener("click", () => { table.page -= 1; loadTrials(name); });
  document.getElementById("next").addEventListener("click", () => { table.page += 1; loadTrials(name); });
  loadTrials(name); // at once: drawing the charts of a large experiment takes a while
  pollCharts(name);
}

// The token lives on in a cookie: take it out of the address bar and the history.
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);

if (document.body.dataset.page === "catalog") pollCatalog();
if (document.body.dataset.page === "experiment") startExperiment();
