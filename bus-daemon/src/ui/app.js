// Integration bus management UI. Plain JavaScript, no external resources.
// Every value from the server is put into the page as text (never as HTML).
"use strict";

const view = document.getElementById("view");
const modal = document.getElementById("modal");
const modalBody = document.getElementById("modal-body");

// ---- helpers ----

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "checked" || k === "disabled" || k === "selected") node[k] = !!v;
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(method, path, body) {
  // The CSRF header: a cross-site page cannot send it, this page always does.
  const opts = { method, headers: { "X-Bus-Csrf": "1" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (res.status === 401 && path !== "/api/login") {
    showLogin();
    throw new Error("Log in to continue.");
  }
  if (!res.ok) {
    const e = new Error((data && data.error) || `${res.status} ${res.statusText}`);
    e.status = res.status;
    throw e;
  }
  return data;
}

function showLogin() {
  const error = el("div", { class: "error" });
  const form = el("form", { class: "edit", id: "login" },
    el("h2", {}, "Log in"),
    el("label", { for: "token" }, "Access token"),
    el("input", { type: "text", id: "token", name: "token", autocomplete: "off" }),
    error,
    el("button", { class: "primary", type: "submit" }, "Log in"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/login", { token: form.elements.token.value });
      closeModal();
      show(currentTab || "connectors");
    } catch (e) { error.textContent = e.message; }
  });
  openModal(form);
}

// A success shows for a moment; an error stays until it is dismissed.
function toast(message, kind) {
  const t = document.getElementById("toast");
  clearTimeout(toast.timer);
  if (kind === "error") {
    t.className = "show error";
    t.setAttribute("role", "alert");
    t.replaceChildren(el("span", {}, message),
      el("button", { class: "dismiss", "aria-label": "Dismiss", onclick: () => { t.className = ""; } }, "✕"));
  } else {
    t.className = "show";
    t.setAttribute("role", "status");
    t.replaceChildren(message);
    toast.timer = setTimeout(() => { t.className = ""; }, 2500);
  }
}

// The popup is named by its heading, closes with Escape, and gives the
// focus back to what opened it.
const modalBox = modal.querySelector(".modal-box");
let modalOpener = null;
function openModal(...content) {
  modalBody.replaceChildren(...content.flat(2).filter((c) => c !== null && c !== undefined && c !== false));
  const heading = modalBody.querySelector("h2, h3");
  if (heading) {
    heading.id = heading.id || "modal-title";
    modalBox.setAttribute("aria-labelledby", heading.id);
    modalBox.removeAttribute("aria-label");
  } else {
    modalBox.removeAttribute("aria-labelledby");
    modalBox.setAttribute("aria-label", "Details");
  }
  if (modal.hidden) modalOpener = document.activeElement;
  modal.hidden = false;
  const first = modalBody.querySelector("input, select, textarea, button") || document.getElementById("modal-close");
  first.focus();
}
function closeModal() {
  modal.hidden = true;
  modalBody.replaceChildren();
  if (modalOpener && modalOpener.isConnected) modalOpener.focus();
  modalOpener = null;
  if (openTask !== null) { openTask = null; syncUrl(); }
}
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !modal.hidden) closeModal(); });
document.getElementById("modal-close").addEventListener("click", closeModal);
modal.addEventListener("click", (e) => { if (e.target === modal) closeModal(); });

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

// A sort button's order is announced on its header cell (`aria-sort`
// belongs to column headers, not buttons).
function table(headers, rows) {
  const th = (h) => el("th", { "aria-sort": h instanceof Element ? h.dataset.order : undefined }, h);
  return el("table", {}, el("thead", {}, el("tr", {}, headers.map(th))), el("tbody", {}, rows));
}

function showError(e) { toast(e.message || String(e), "error"); }

// ---- grids: server-side sorting, search and paging ----

// A grid's state while the page lives: sort column, order, search, page.
function gridState(sort, order) { return { sort, order, defaultSort: sort, defaultOrder: order, search: "", offset: 0, limit: 50 }; }

function gridQuery(g, q) {
  q.set("sort", g.sort);
  q.set("order", g.order);
  if (g.search) q.set("search", g.search);
  q.set("offset", String(g.offset));
  q.set("limit", String(g.limit));
  return q;
}

// A header that sorts by `key` on click (again: the other order).
function sortable(g, label, key, rerender) {
  const active = g.sort === key;
  const arrow = active ? (g.order === "asc" ? " ▲" : " ▼") : "";
  return el("button", { class: "sort" + (active ? " active" : ""), "data-sort": key, "data-order": active ? (g.order === "asc" ? "ascending" : "descending") : "none",
    onclick: () => { if (active) g.order = g.order === "asc" ? "desc" : "asc"; else { g.sort = key; g.order = "asc"; } g.offset = 0; rerender(); } }, label + arrow);
}

function searchBox(g, id, rerender) {
  // What is typed and not searched for yet survives a repaint of the view
  // (a live refresh, the grid listing again after a bulk action, another
  // tab and back): a repaint replaces the box.
  const input = el("input", { type: "search", id, placeholder: "Search", value: g.draft ?? g.search, "aria-label": "Search" });
  const keep = () => { g.draft = input.value; };
  input.addEventListener("input", keep);
  input.addEventListener("change", keep);
  const go = () => { g.search = input.value.trim(); g.draft = undefined; g.offset = 0; rerender(); };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  return [input, el("button", { id: id + "-go", onclick: go }, "Search")];
}

// First / Previous / Next / Last, the position with the total, the page size.
function pager(g, total, noun, rerender) {
  const pages = Math.max(1, Math.ceil(total / g.limit));
  const page = Math.floor(g.offset / g.limit) + 1;
  const go = (n) => { g.offset = (Math.min(Math.max(n, 1), pages) - 1) * g.limit; rerender(); };
  const size = el("select", { class: "page-size", "aria-label": "Rows per page", onchange: (e) => { g.limit = Number(e.target.value); g.offset = 0; rerender(); } },
    [25, 50, 100, 200].map((n) => el("option", { value: String(n), selected: g.limit === n }, `${n} per page`)));
  return el("div", { class: "pager" },
    el("button", { class: "first-page", disabled: page === 1, onclick: () => go(1) }, "First"),
    el("button", { class: "prev-page", disabled: page === 1, onclick: () => go(page - 1) }, "Previous"),
    el("span", { class: "position muted" }, `Page ${page} of ${pages} · ${total} ${noun}`),
    el("button", { class: "next-page", disabled: page >= pages, onclick: () => go(page + 1) }, "Next"),
    el("button", { class: "last-page", disabled: page >= pages, onclick: () => go(pages) }, "Last"),
    size);
}

let settingsCache = null;
async function settings() {
  settingsCache = await api("GET", "/api/settings");
  return settingsCache;
}

// ---- tabs ----

const tabs = {
  overview: renderOverview,
  connector: renderConnectorPage,
  connectors: renderConnectors,
  outgoing: () => renderTasks("outgoing"),
  incoming: () => renderTasks("incoming"),
  settings: renderSettings,
  eventlog: renderEventLog,
  scheduled: renderScheduled,
  content: renderContent,
};

let currentTab = null;

// Replaces the view, unless the user moved to another tab meanwhile (a slow
// answer must not paint over the tab now shown).
function paint(tab, ...nodes) {
  if (currentTab !== tab) return;
  // A refresh that shows the same keeps the nodes there are (a click or
  // text typed into them is not lost).
  const fresh = document.createElement("div");
  fresh.append(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
  if (signature(fresh) !== signature(view)) view.replaceChildren(...fresh.childNodes);
  syncUrl();
}

// What a view shows: its markup and the state of its controls (a checkbox's
// `checked`, a field's `value` are properties, not markup).
function signature(root) {
  const controls = [...root.querySelectorAll("input, select, textarea")]
    .map((c) => (c.type === "checkbox" || c.type === "radio" ? String(c.checked) : c.value));
  return root.innerHTML + "\u0000" + controls.join("\u0000");
}

// ---- the view in the URL: `#outgoing?connector=…&search=…&sort=…&order=…&page=…&limit=…&task=…` ----
//
// A grid's filter, search, sort, page and the open task live in the hash,
// so a reload or a shared link shows the same view. Changes within a tab
// replace the entry; another tab is a new one (Back returns to it).

// The grid and filters of a tab, or null for tabs without a grid.
function viewState(tab) {
  if (tab === "connector") return { filters: connectorPage, keys: ["name"] };
  if (tab === "connectors") return { grid: connectorGrid, filters: {} };
  if (tab === "outgoing" || tab === "incoming") return { grid: queueState[tab].grid, filters: queueState[tab], keys: ["connector"] };
  if (tab === "eventlog") return { grid: logState.grid, filters: logState, keys: ["source", "type"] };
  return null;
}

let openTask = null;

function hashOf(tab) {
  const v = viewState(tab);
  const q = new URLSearchParams();
  if (v) {
    for (const k of v.keys || []) if (v.filters[k]) q.set(k, v.filters[k]);
  }
  if (v && v.grid) {
    const g = v.grid;
    if (g.search) q.set("search", g.search);
    if (g.sort !== g.defaultSort || g.order !== g.defaultOrder) { q.set("sort", g.sort); q.set("order", g.order); }
    if (g.offset) q.set("page", String(Math.floor(g.offset / g.limit) + 1));
    if (g.limit !== 50) q.set("limit", String(g.limit));
  }
  if (openTask !== null && (tab === "outgoing" || tab === "incoming")) q.set("task", String(openTask));
  const qs = q.toString();
  return "#" + tab + (qs ? "?" + qs : "");
}

function syncUrl() {
  const want = hashOf(currentTab);
  if (location.hash !== want) history.replaceState(null, "", want);
}

// Reads `#tab?…` into the tab's state; returns the tab.
function readUrl() {
  const [tab, qs] = location.hash.slice(1).split("?");
  const q = new URLSearchParams(qs || "");
  const v = viewState(tab);
  if (v) {
    for (const k of v.keys || []) v.filters[k] = q.get(k) || "";
  }
  if (v && v.grid) {
    const g = v.grid;
    g.search = q.get("search") || "";
    // A search from the address is the box's text too (Back, an edited
    // address, a link to a connector's tasks).
    g.draft = undefined;
    g.sort = q.get("sort") || g.defaultSort;
    g.order = q.get("order") === "desc" || q.get("order") === "asc" ? q.get("order") : g.defaultOrder;
    const limit = Number(q.get("limit"));
    g.limit = [25, 50, 100, 200].includes(limit) ? limit : 50;
    const page = Math.max(1, Math.floor(Number(q.get("page")) || 1));
    g.offset = (page - 1) * g.limit;
  }
  const task = Number(q.get("task"));
  openTask = Number.isInteger(task) && task > 0 ? task : null;
  return tabs[tab] ? tab : "overview";
}

async function show(tab) {
  if (!tabs[tab]) tab = "overview";
  currentTab = tab;
  // A connector's page is part of the Overview.
  const shown = tab === "connector" ? "overview" : tab;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === shown));
    b.tabIndex = b.dataset.tab === shown ? 0 : -1;
  }
  // A tab chosen by a click is a new history entry (Back returns to the
  // previous tab, as it was); one reached through the URL or Back only shows.
  if (location.hash.split("?")[0] !== "#" + tab) { openTask = null; history.pushState(null, "", hashOf(tab)); }
  view.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    await tabs[tab]();
  } catch (e) {
    paint(tab, el("p", { class: "error" }, e.message));
  }
}
for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
// The tab list from the keyboard: Left/Right move to the previous/next
// tab, Home/End to the first/last, and show it.
document.getElementById("tabs").addEventListener("keydown", (e) => {
  const all = [...document.querySelectorAll("#tabs button")];
  const at = all.indexOf(document.activeElement);
  if (at < 0) return;
  const to = { ArrowLeft: at - 1, ArrowRight: at + 1, Home: 0, End: all.length - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  const next = all[(to + all.length) % all.length];
  next.focus();
  show(next.dataset.tab);
});

// ---- overview: a card per connector, and a connector's page ----
//
// Its state, what waits and failed, what it did lately, and a sparkline of
// what it delivered per minute (the last quarter hour on the card, a day on
// its page, from GET /api/history). Nothing is rendered relative to the
// current second: a refresh that shows the same data keeps the nodes.

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  node.append(...children.flat());
  return node;
}

// Its state in words, and whether that is healthy.
function stateWords(c) {
  if (!c.enabled) return ["Disabled", "off"];
  if (c.starting) return ["Starting", "off"];
  if (c.error) return ["Not loaded: " + c.error, "bad"];
  if (c.hung_for_seconds != null) return ["Hung: a call has not returned", "bad"];
  if (c.fault) return ["Fault: " + c.fault, "bad"];
  if (c.running_on) return [`Running on ${c.running_on}`, "ok"];
  return c.loaded ? ["Running", "ok"] : ["Not loaded", "off"];
}

// An age in the coarse words a glance needs (the figure changes less often
// than every second, so a live refresh rarely repaints for it alone).
function ageWords(seconds) {
  if (!seconds) return "none waits";
  if (seconds < 60) return "under a minute";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} days`;
}

// Bars, one a minute, scaled to the largest; `label` says what they are.
function bars(values, label, kind, width, height) {
  const max = Math.max(1, ...values);
  const w = width / Math.max(1, values.length);
  const total = values.reduce((a, b) => a + b, 0);
  return svg("svg", { class: `bars ${kind}`, viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `${label}: ${total} in all, at most ${Math.max(0, ...values)} in a minute` },
    values.map((v, i) => v ? svg("rect", { x: (i * w).toFixed(2), y: (height - (v / max) * height).toFixed(2),
      width: Math.max(w - (w > 2 ? 1 : 0), 0.5).toFixed(2), height: ((v / max) * height).toFixed(2) }) : null).filter(Boolean));
}

function queueFacts(c) {
  const q = c.queue || {};
  return el("dl", { class: "facts" },
    el("dt", {}, "Waiting"), el("dd", { class: "waiting" }, `${q.outgoing || 0} outgoing, ${q.incoming || 0} incoming`),
    el("dt", {}, "Failed"), el("dd", { class: q.failed ? "failed-count bad" : "failed-count" }, String(q.failed || 0)),
    el("dt", {}, "Oldest waiting"), el("dd", { class: "oldest" }, ageWords(q.oldest_age_seconds)),
    el("dt", {}, "Last minute"), el("dd", { class: "rate" }, `${q.delivered_last_minute || 0} delivered`),
    el("dt", {}, "Last success"), el("dd", {}, q.last_success_at ? fmtTime(q.last_success_at) : "none yet on this daemon"),
    el("dt", {}, "Last error"), el("dd", { class: "last-error" }, q.last_error || "none on this daemon"));
}

async function renderOverview() {
  const [list, hist] = await Promise.all([api("GET", "/api/connectors?limit=1000"), api("GET", "/api/history?minutes=15")]);
  const series = Object.fromEntries(hist.connectors.map((h) => [h.connector, h]));
  const cards = list.map((c) => {
    const [words, health] = stateWords(c);
    const h = series[c.name] || { delivered: [] };
    const id = `card-${c.id}`;
    // A failed task makes the card red too, whatever the load state says.
    return el("article", { class: `card ${c.queue && c.queue.failed ? "bad" : health}`, "data-name": c.name, "aria-labelledby": id },
      el("h2", { id }, el("a", { href: `#connector?name=${encodeURIComponent(c.name)}` }, c.display_name || c.name),
        c.display_name && c.display_name !== c.name ? el("span", { class: "code muted" }, ` ${c.name}`) : null),
      el("p", { class: `state ${health}` }, words),
      queueFacts(c),
      el("div", { class: "spark" }, bars(h.delivered, "Delivered per minute, last 15 minutes", "delivered", 150, 30),
        el("span", { class: "muted spark-total" }, `${h.delivered.reduce((a, b) => a + b, 0)} delivered in 15 min`)));
  });
  paint("overview",
    el("h2", { class: "visually-hidden" }, "Overview"),
    cards.length ? el("div", { class: "cards" }, cards)
      : el("p", { class: "muted" }, "No connector is registered yet: add one on the Connectors tab."));
}

const connectorPage = { name: "" };

async function renderConnectorPage() {
  const name = connectorPage.name;
  let c;
  try { c = await api("GET", `/api/connectors/${encodeURIComponent(name)}`); } catch (e) {
    if (connectorPage.name !== name) return;
    paint("connector", el("p", { class: "error" }, e.status === 404 ? `There is no connector named “${name}”.` : e.message),
      el("p", {}, el("a", { href: "#overview" }, "Back to the overview")));
    return;
  }
  const h = (await api("GET", `/api/history?minutes=1440&connector=${encodeURIComponent(name)}`)).connectors[0];
  // Another connector's page was asked for meanwhile.
  if (connectorPage.name !== name) return;
  const [words, health] = stateWords(c);
  const sum = (v) => v.reduce((a, b) => a + b, 0);
  // A day of minutes drawn as 144 bars of ten: counts add up, the depth is
  // the largest of the ten.
  const tens = (v, join) => Array.from({ length: Math.ceil(v.length / 10) }, (_, i) => join(v.slice(i * 10, i * 10 + 10)));
  const chart = (values, label, kind, summary) => el("figure", { class: "chart" },
    el("figcaption", {}, el("strong", {}, label), " — ", el("span", { class: `summary ${kind}` }, summary)),
    bars(values, `${label}, last 24 hours, a bar per 10 minutes`, kind, 1440, 60),
    el("div", { class: "axis muted" }, el("span", {}, "24 h ago"), el("span", {}, "12 h ago"), el("span", {}, "now")));
  paint("connector",
    el("p", {}, el("a", { href: "#overview" }, "← Overview")),
    el("h2", { id: "connector-title" }, c.display_name || c.name,
      c.display_name && c.display_name !== c.name ? el("span", { class: "code muted" }, ` ${c.name}`) : null),
    el("p", { class: `state ${health}` }, words),
    el("div", { class: "toolbar" },
      el("a", { href: `#outgoing?connector=${encodeURIComponent(c.name)}` }, "Its outgoing tasks"),
      el("a", { href: `#incoming?connector=${encodeURIComponent(c.name)}` }, "Its incoming tasks"),
      el("button", { class: "edit", onclick: () => editConnector(c) }, "Edit")),
    queueFacts(c),
    el("h3", {}, "The last 24 hours"),
    chart(tens(h.delivered, sum), "Delivered", "delivered", plural(sum(h.delivered), "task")),
    chart(tens(h.failed, sum), "Failed", "failed", plural(sum(h.failed), "failed attempt")),
    chart(tens(h.depth, (v) => Math.max(0, ...v)), "Waiting", "depth", `at most ${Math.max(0, ...h.depth)} at once`));
}

// ---- connectors ----

// ⚠ for a failed load, a hung call or a fault (panic, timeout) of the
// running instance; ✔ for a healthy loaded one.
function connectorState(c) {
  const why = c.error ? "Load failure: " + c.error
    : c.hung_for_seconds != null ? `Hung: a call has not returned for ${Math.round(c.hung_for_seconds)} s`
    : c.fault ? "Fault: " + c.fault : null;
  if (why) return el("span", { class: "warn", title: why, "aria-label": why }, "⚠");
  return c.loaded ? "✔" : "";
}

// The Queue column: what waits, what failed, what went in the last minute;
// the last error as the tooltip.
function queueText(q) {
  if (!q) return "";
  const parts = [`${q.outgoing} out`, `${q.incoming} in`];
  if (q.failed) parts.push(`${q.failed} failed`);
  parts.push(`${q.delivered_last_minute}/min`);
  return parts.join(" · ");
}
function queueTitle(q) {
  if (!q) return undefined;
  // Nothing relative to now here: a refresh that shows the same data
  // renders the same page (and keeps its nodes).
  const last = q.last_success_at ? `Last success: ${fmtTime(q.last_success_at)}` : "No success yet on this daemon";
  return q.last_error ? `${last}\nLast error: ${q.last_error}` : last;
}

const connectorGrid = gridState("name", "asc");

async function renderConnectors() {
  const g = connectorGrid;
  const res = await fetch("/api/connectors?" + gridQuery(g, new URLSearchParams()), { credentials: "same-origin", headers: { "X-Bus-Csrf": "1" } });
  if (res.status === 401) { showLogin(); throw new Error("Log in to continue."); }
  const list = await res.json();
  if (!res.ok) throw new Error(list.error || res.statusText);
  const total = Number(res.headers.get("x-total-count") || list.length);
  const rows = list.map((c) => el("tr", { "data-name": c.name },
    el("td", {}, connectorState(c)),
    el("td", { class: "display" }, c.display_name),
    el("td", { class: "code" }, c.name),
    el("td", {}, c.assembly_name),
    el("td", {}, c.class_name),
    el("td", { class: "enabled" }, c.enabled ? "Yes" : "No"),
    el("td", { class: "isolation", title: isolationTitle(c) }, isolationText(c)),
    el("td", { class: "delivery" }, deliveryText(c)),
    el("td", { class: "queue", title: queueTitle(c.queue) }, queueText(c.queue)),
    el("td", { class: "actions" },
      el("button", { class: "edit", title: "Edit", onclick: () => editConnector(c) }, "Edit"),
      el("button", { class: "toggle", onclick: () => saveConnector(c.name, { enabled: !c.enabled }) }, c.enabled ? "Disable" : "Enable"),
      el("button", { class: "delete", title: "Delete", onclick: () => deleteConnector(c) }, "Delete"))));
  const r = renderConnectors;
  const cluster = await clusterPanel();
  paint("connectors",
    el("div", { class: "toolbar" }, el("button", { class: "primary", id: "new-connector", onclick: () => editConnector(null) }, "New connector"),
      ...searchBox(g, "connector-search", r),
      el("span", { class: "muted" }, "Adding, editing or deleting a connector reinitializes all connectors.")),
    table([sortable(g, "State", "state", r), sortable(g, "Display name", "display_name", r), sortable(g, "Code name", "name", r),
      sortable(g, "Assembly name", "assembly_name", r), sortable(g, "Class name", "class_name", r), sortable(g, "Enabled", "enabled", r), "Isolation", "Delivery", "Queue", "Actions"], rows),
    pager(g, total, "connectors", r),
    cluster);
}

// Several daemons on one PostgreSQL database: who they are, when each was
// last heard of, which connectors each runs. Nothing on SQLite (404).
async function clusterPanel() {
  const res = await fetch("/api/cluster", { credentials: "same-origin", headers: { "X-Bus-Csrf": "1" } });
  if (!res.ok) return el("span", {});
  const view = await res.json();
  const rows = view.daemons.map((d) => el("tr", { "data-daemon": d.id, class: d.alive ? "" : "muted" },
    el("td", { class: "daemon" }, d.id + (d.id === view.this_daemon ? " (this daemon)" : "")),
    el("td", {}, d.address || "—"),
    // Alive or gone, not "n s ago": nothing rendered is relative to now, so
    // a refresh that shows the same data keeps the page's nodes.
    el("td", {}, d.alive ? "alive" : "gone"),
    el("td", { class: "held" }, d.connectors.join(", ") || "—")));
  return el("section", { id: "cluster" },
    el("h3", {}, `Cluster: ${view.daemons.filter((d) => d.alive).length} daemon(s), leases of ${view.lease_ttl_ms} ms` +
      (view.leader ? "; this daemon does the maintenance" : "")),
    table(["Daemon", "Address", "Heartbeat", "Runs"], rows));
}

// Where the running instance runs, what the row asks for, and how often its
// process was restarted after a crash.
// The mode it runs in — or would run in, for a row not running — the same
// words for every row; whether that is bus.toml's default is the tooltip.
function isolationText(c) {
  if (c.running_on) return `on ${c.running_on}`;
  const mode = c.running_isolation || c.isolation_mode;
  return c.restarts ? `${mode} (${c.restarts} restart${c.restarts === 1 ? "" : "s"})` : mode;
}

// How the outgoing queue goes: the order, calls at once, batch, rate limit.
function deliveryText(c) {
  const parts = [c.ordering === "object" ? `per object, ${c.concurrency || 1} at once` : "in queue order"];
  if (c.batch_size) parts.push(`batches of ${c.batch_size}`);
  if (c.rate_limit) parts.push(`at most ${c.rate_limit}/s`);
  return parts.join(", ");
}

function isolationTitle(c) {
  const asked = c.isolation === "default" ? "the bus.toml default" : c.isolation;
  return `Registry: ${asked}` + (c.pid ? `; process ${c.pid}` : "");
}

async function saveConnector(name, patch) {
  try {
    const c = await api("PUT", "/api/connectors/" + encodeURIComponent(name), patch);
    toast(c.error ? `Saved; load failed: ${c.error}` : "Saved");
  } catch (e) { showError(e); }
  renderConnectors();
}

// Deleting a connector asks first, naming how many queued tasks would be
// discarded with it; tasks queued meanwhile make the server refuse, and
// the question is asked again with the new count.
async function deleteConnector(c) {
  const path = "/api/connectors/" + encodeURIComponent(c.name);
  const waiting = c.queue ? c.queue.outgoing + c.queue.incoming : 0;
  const question = waiting
    ? `Connector ${c.name} has ${plural(waiting, "queued task")}. Delete it and discard them? They will not be processed.`
    : `Delete connector ${c.name}?`;
  if (!confirm(question)) return;
  try {
    await api("DELETE", waiting ? path + "?discard_queue=true" : path);
    toast(waiting ? `Deleted ${c.name} and ${plural(waiting, "queued task")}` : `Deleted ${c.name}`);
  } catch (e) {
    if (e.status === 409) {
      const fresh = await api("GET", path).catch(() => null);
      if (fresh) { renderConnectors(); return deleteConnector(fresh); }
    }
    showError(e);
  }
  renderConnectors();
}

// An optional number field: empty is null (the default).
function optionalNumber(text) {
  return text === null || String(text).trim() === "" ? null : Number(text);
}

function editConnector(c) {
  const field = (label, name, value, multiline) => [
    el("label", { for: "f-" + name }, label),
    multiline ? el("textarea", { id: "f-" + name, name }, value || "") : el("input", { type: "text", id: "f-" + name, name, value: value || "" }),
  ];
  const number = (label, name, value, min, max, step) => [
    el("label", { for: "f-" + name }, label),
    el("input", { type: "number", id: "f-" + name, name, value: value == null ? "" : String(value), min, max, step }),
  ];
  const error = el("div", { class: "error" });
  // The server checks every field and says which one is wrong (in the
  // form's error line), as for every other client.
  const form = el("form", { class: "edit", novalidate: true },
    el("h2", {}, c ? `Edit connector ${c.name}` : "New connector"),
    field("Display name", "display_name", c && c.display_name),
    field("Code name", "name", c && c.name),
    field("Assembly name", "assembly_name", c && c.assembly_name),
    field("Class name", "class_name", c && c.class_name),
    field("Configuration", "config", c && c.config, true),
    el("label", { for: "f-isolation" }, "Isolation"),
    el("select", { id: "f-isolation", name: "isolation" },
      [["default", "Default (bus.toml)"], ["process", "Own process"], ["in-process", "Inside the daemon"]].map(([v, label]) =>
        el("option", { value: v, selected: (c ? c.isolation : "default") === v }, label))),
    el("label", { for: "f-ordering" }, "Order of outgoing tasks"),
    el("select", { id: "f-ordering", name: "ordering" },
      [["connector", "Queue order (an error stops the queue)"], ["object", "Per object (parallel; an error holds only its object)"]].map(([v, label]) =>
        el("option", { value: v, selected: (c ? c.ordering : "connector") === v }, label))),
    number("Calls at once (per-object order; empty: 1)", "concurrency", c && c.concurrency, 1, 256, 1),
    number("Tasks per request (empty: the bus.toml default)", "batch_size", c && c.batch_size, 1, 1000, 1),
    number("Calls per second at most (empty: no limit)", "rate_limit", c && c.rate_limit, 0.001, null, "any"),
    el("label", {}, el("input", { type: "checkbox", id: "f-enabled", name: "enabled", checked: c ? c.enabled : true }), " Enabled"),
    error,
    el("button", { class: "primary", type: "submit", id: "connector-ok" }, "OK"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { display_name: f.get("display_name"), name: f.get("name"), assembly_name: f.get("assembly_name"),
      class_name: f.get("class_name"), config: f.get("config"), enabled: form.elements.enabled.checked,
      isolation: f.get("isolation"), ordering: f.get("ordering"),
      concurrency: optionalNumber(f.get("concurrency")), batch_size: optionalNumber(f.get("batch_size")),
      rate_limit: optionalNumber(f.get("rate_limit")) };
    try {
      const saved = c ? await api("PUT", "/api/connectors/" + encodeURIComponent(c.name), body) : await api("POST", "/api/connectors", body);
      closeModal();
      toast(saved.error ? `Saved; load failed: ${saved.error}` : "Saved");
      // Edited from its own page: the page follows it (also when renamed).
      if (currentTab === "connector" && c && connectorPage.name === c.name) {
        connectorPage.name = saved.name;
        renderConnectorPage();
      } else renderConnectors();
    } catch (e) { error.textContent = e.message; }
  });
  openModal(form);
}

// ---- task queues ----

const queueState = {
  outgoing: { connector: "", grid: gridState("time", "asc") },
  incoming: { connector: "", grid: gridState("time", "asc") },
};

// What the Result column says: a failure (the link opens the synchronization
// log), and for incoming tasks whether it blocks the queue or was skipped.
function resultCell(direction, t) {
  if (!t.error && t.waiting_for) {
    return el("a", { class: "waiting", href: "#", title: "Shares an object with a failed task: it goes once that one is delivered",
      onclick: (e) => { e.preventDefault(); viewTask(t.waiting_for, true); } }, `Waiting for task ${t.waiting_for}`);
  }
  if (!t.error) return direction === "incoming" && t.process_type === "Error" ? "Blocked" : "";
  const kind = direction === "incoming" && t.process_type === "SkipOnError" ? "Failed (skipped)"
    : direction === "incoming" && t.process_type === "Error" ? "Failed (blocks the queue)" : "Failed";
  return el("a", { class: "failed", title: t.error, href: "#", onclick: (e) => { e.preventDefault(); viewTask(t.task_id, true); } }, kind);
}

async function renderTasks(direction) {
  const state = queueState[direction];
  const g = state.grid;
  const rerender = () => renderTasks(direction);
  const [connectors, s] = await Promise.all([api("GET", "/api/connectors"), settings()]);
  const processing = s.enabled && (direction === "outgoing" ? s.process_outgoing : s.process_incoming);
  const disabledWhy = processing ? null : `Processing of ${direction} tasks is disabled in Settings; tasks stay queued.`;
  const q = gridQuery(g, new URLSearchParams());
  if (state.connector) q.set("connector", state.connector);
  const page = await api("GET", `/api/tasks/${direction}?${q}`);

  const select = el("select", { id: "connector-filter", onchange: (e) => { state.connector = e.target.value; g.offset = 0; rerender(); } },
    el("option", { value: "", selected: !state.connector }, "(all)"),
    connectors.map((c) => el("option", { value: c.name, selected: state.connector === c.name }, c.display_name)));

  const incoming = direction === "incoming";
  const rows = page.items.map((t) => el("tr", { class: "task", "data-task-id": t.task_id, "data-connector": t.connector },
    el("td", {}, el("input", { type: "checkbox", class: "pick", value: t.task_id, "data-connector": t.connector, "aria-label": "Select task " + t.task_id })),
    el("td", { class: "actions" },
      el("button", { class: "view", title: "View the task's data", onclick: () => viewTask(t.task_id) }, "View"),
      el("button", { class: "sync", title: disabledWhy || "Synchronize this task now", disabled: !processing, onclick: () => syncOne(direction, t.task_id, t.connector) }, "Sync"),
      el("button", { class: "remove", title: "Delete without processing", "aria-label": "Delete task " + t.task_id, onclick: () => deleteOne(direction, t) }, "✖")),
    el("td", { class: "title" }, t.title),
    el("td", { class: "type" }, t.task_type_code),
    incoming ? el("td", { class: "process-type" }, t.process_type || "") : null,
    el("td", { class: "time" }, fmtTime(t.time)),
    el("td", { class: "connector" }, t.connector_display_name),
    el("td", { class: "result" }, resultCell(direction, t))));

  // The last bulk action's outcome stays shown through later refreshes.
  const status = el("span", { id: "bulk-status", class: state.lastStatus ? state.lastStatus.className : "muted" },
    state.lastStatus ? state.lastStatus.text : "");
  const progress = el("progress", { id: "bulk-progress", max: "100", value: "0", hidden: true });
  // The bulk choices live in the tab's state: a live refresh that repaints
  // the view between picking them and OK keeps them.
  const scope = el("select", { id: "bulk-scope", "aria-label": "Which tasks", onchange: (e) => { state.bulkScope = e.target.value; } },
    el("option", { value: "selected" }, "Selected tasks"), el("option", { value: "all" }, "All tasks"));
  scope.value = state.bulkScope || "selected";
  const action = el("select", { id: "bulk-action", "aria-label": "Action", onchange: (e) => { state.bulkAction = e.target.value; } },
    el("option", { value: "" }, "(select an action)"),
    el("option", { value: "synchronize", disabled: !processing }, "Synchronize"), el("option", { value: "delete" }, "Delete"));
  // Synchronize cannot be chosen while processing is off.
  if (state.bulkAction === "synchronize" && !processing) state.bulkAction = "";
  action.value = state.bulkAction || "";
  const ok = el("button", { id: "bulk-ok", onclick: () => bulk(direction, scope.value, action.value, progress, status) }, "OK");

  const headers = [el("input", { type: "checkbox", "aria-label": "Select all", onchange: (e) => { for (const c of view.querySelectorAll("input.pick")) c.checked = e.target.checked; } }),
    "Actions", sortable(g, "Task title", "title", rerender), sortable(g, "Task type", "type", rerender),
    incoming ? "Process type" : null, sortable(g, "Task time", "time", rerender),
    sortable(g, "Connector name", "connector", rerender), sortable(g, "Result", "result", rerender)].filter((h) => h !== null);
  paint(direction,
    el("div", { class: "toolbar" }, el("label", { for: "connector-filter" }, "Connector:"), select, ...searchBox(g, "task-search", rerender),
      disabledWhy ? el("span", { class: "muted", id: "processing-off" }, disabledWhy) : null),
    table(headers, rows.length ? rows : [el("tr", {}, el("td", { colspan: String(headers.length), class: "muted" }, "No tasks."))]),
    pager(g, page.total, "tasks", rerender),
    el("div", { class: "toolbar bulk" }, scope, action, ok, progress, status));
}

// Row actions act on the row's connector only.
async function syncOne(direction, id, connector) {
  try {
    const r = await api("POST", `/api/tasks/${id}/synchronize?connector=${encodeURIComponent(connector)}`);
    const failed = r.outcomes.filter((o) => o.result !== "Ok");
    toast(failed.length ? `Failed: ${failed[0].error || failed[0].result}` : "Synchronized");
  } catch (e) { showError(e); }
  renderTasks(direction);
}

async function deleteOne(direction, t) {
  if (!confirm(`Delete 1 task (${t.title}) for connector ${t.connector_display_name}? It will not be processed.`)) return;
  try { await api("DELETE", `/api/tasks/${t.task_id}?connector=${encodeURIComponent(t.connector)}`); toast("Deleted 1 task"); } catch (e) { showError(e); }
  renderTasks(direction);
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// How many rows the grid lists with its current filter (what "All tasks"
// acts on): the same query the grid makes, one row long.
async function listedCount(direction) {
  const state = queueState[direction];
  const q = new URLSearchParams({ offset: "0", limit: "1" });
  if (state.connector) q.set("connector", state.connector);
  if (state.grid.search) q.set("search", state.grid.search);
  return (await api("GET", `/api/tasks/${direction}?${q}`)).total;
}

// What a synchronize run came to, failures first.
function syncSummary(ok, failed, firstError) {
  const done = `${plural(ok, "task")} synchronized`;
  return failed ? `${failed} failed: ${firstError || "see the task's log"}; ${done}` : `Done: ${done}`;
}

// Bulk actions run in creation order on the server. "Selected tasks" acts
// on the ticked rows (each row is one task for one connector); "All tasks"
// on every row the grid lists with its connector filter and search. Deletes
// ask first, naming the count.
// A bulk action in progress: live refreshes wait for it.
let bulkRunning = false;
async function bulk(direction, scope, action, progress, status) {
  if (!action) { toast("Choose an action"); return; }
  const state = queueState[direction];
  const connector = state.connector || undefined;
  const search = state.grid.search || undefined;
  const picked = scope === "selected" ? [...view.querySelectorAll("input.pick:checked")] : null;
  if (picked && !picked.length) { toast("Select tasks first"); return; }
  // No live refresh repaints the view from here on.
  bulkRunning = true;
  let total;
  try { total = picked ? picked.length : await listedCount(direction); } catch (e) { bulkRunning = false; throw e; }
  if (!total) { bulkRunning = false; toast("No tasks are listed"); return; }
  if (action === "delete") {
    const which = picked ? "selected" : (connector || search ? "listed (the current filter)" : "queued");
    if (!confirm(`Delete ${plural(total, direction + " task")} ${which}? They will not be processed.`)) { bulkRunning = false; return; }
  }
  progress.hidden = false;
  progress.value = 0;
  let ok = 0, failed = 0, deleted = 0, firstError = null;
  const count = (r) => {
    if (r.outcomes) {
      ok += r.ok; failed += r.failed;
      const f = r.outcomes.find((o) => o.result !== "Ok" && o.error);
      firstError = firstError || (f && f.error);
    } else deleted += r.deleted;
  };
  let error = null;
  if (picked) {
    // One request per connector and chunk: a row's task goes for its own
    // connector only.
    const byConnector = new Map();
    for (const c of picked) {
      const list = byConnector.get(c.dataset.connector) || [];
      list.push(Number(c.value));
      byConnector.set(c.dataset.connector, list);
    }
    let done = 0;
    outer: for (const [rowConnector, ids] of byConnector) {
      for (let i = 0; i < ids.length; i += 20) {
        const chunk = ids.slice(i, i + 20);
        try { count(await api("POST", `/api/tasks/${direction}/${action}`, { ids: chunk, connector: rowConnector })); } catch (e) { error = e; break outer; }
        done += chunk.length;
        progress.value = (100 * done) / total;
        status.textContent = `${done} of ${total}`;
      }
    }
  } else {
    status.textContent = `0 of ${total}`;
    let finished = false;
    const poll = async () => {
      while (!finished) {
        await new Promise((r) => setTimeout(r, 300));
        if (finished) break;
        const left = await listedCount(direction);
        progress.value = (100 * Math.max(0, total - left)) / total;
        status.textContent = `${Math.max(0, total - left)} of ${total}`;
      }
    };
    poll();
    try { count(await api("POST", `/api/tasks/${direction}/${action}`, { all: true, connector, search })); } catch (e) { error = e; }
    finished = true;
  }
  progress.value = 100;
  status.textContent = error ? `Stopped: ${error.message}`
    : action === "delete" ? `Done: ${plural(deleted, "task")} deleted` : syncSummary(ok, failed, firstError);
  if (error || failed) status.classList.add("error-text"); else status.classList.remove("error-text");
  state.lastStatus = { text: status.textContent, className: status.className };
  bulkRunning = false;
  setTimeout(() => renderTasks(direction), 200);
}

function objectFacts(o) {
  if (!o) return [];
  if (o.kind === "document") {
    return [["NodeID", o.node_id], ["NodeGUID", o.node_guid], ["NodeAliasPath", o.node_alias_path], ["ClassName", o.class_name],
      ["SiteName", o.site_name], ["DocumentID", o.document_id], ["Culture", o.culture], ["DocumentName", o.name],
      ["Published", o.published], ["Archived", o.archived]];
  }
  return [["ObjectType", o.object_type], ["ID", o.id], ["GUID", o.guid], ["CodeName", o.code_name], ["DisplayName", o.display_name],
    ["SiteName", o.site_name], ["Parent", o.parent ? `${o.parent.object_type} ${o.parent.id}` : null], ["GroupID", o.group_id]];
}

// A value cell: long values are cut with a "show all" that reveals the rest.
const LONG_VALUE = 300;
function valueCell(v) {
  const text = typeof v === "object" ? JSON.stringify(v) : String(v);
  if (text.length <= LONG_VALUE) return el("td", { class: "value" }, text);
  const cell = el("td", { class: "value" }, text.slice(0, LONG_VALUE) + "… ");
  cell.append(el("button", { class: "show-all", onclick: () => cell.replaceChildren(text) }, `show all (${text.length} characters)`));
  return cell;
}

function fieldTable(o) {
  const rows = [...objectFacts(o), ...Object.entries((o && o.fields) || {})]
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => el("tr", {}, el("td", {}, k), valueCell(v)));
  return table(["Field name", "Value"], rows);
}

// The exact document the connector gets for this task (raw JSON).
async function showPayload(id, connector, target) {
  try {
    const p = await api("GET", `/api/tasks/${id}/payload?connector=${encodeURIComponent(connector)}`);
    target.replaceChildren(el("pre", { class: "raw-json" }, JSON.stringify(p, null, 2)));
  } catch (e) { target.replaceChildren(el("p", { class: "error" }, e.message)); }
}

// A synchronization log newest first, attempts in a row that failed the
// same way as one line with their count.
function logGroups(log) {
  const groups = [];
  for (const l of [...log].reverse()) {
    const last = groups[groups.length - 1];
    if (last && last.error === l.error) { last.count += 1; last.first = l.time; }
    else groups.push({ error: l.error, count: 1, first: l.time, last: l.time });
  }
  return groups;
}

async function viewTask(id, logFirst) {
  let t;
  try { t = await api("GET", `/api/tasks/${id}`); } catch (e) { showError(e); return; }
  const o = t.data && t.data.object;
  const tr = (t.data && t.data.translations) || {};
  const related = [
    ...(tr.objects || []).map((r) => el("tr", {}, el("td", {}, r.object_type), el("td", {}, r.id), el("td", {}, r.code_name),
      el("td", {}, r.site_name || ""), el("td", {}, r.parent_id ?? ""), el("td", {}, r.group_id ?? ""))),
    ...(tr.documents || []).map((r) => el("tr", {}, el("td", {}, r.class_name || "document"), el("td", {}, r.id), el("td", {}, `${r.node_guid} (${r.culture})`),
      el("td", {}, r.site_name), el("td", {}, ""), el("td", {}, ""))),
  ];
  const children = (o && o.children) || [];
  const bindings = (o && o.bindings) || [];
  const log = t.relations.map((r) => el("div", { class: "synclog" },
    el("h2", {}, `Synchronization log — ${r.connector}`),
    (() => {
      const raw = el("div", { class: "raw" });
      return [el("button", { class: "raw-payload", onclick: () => showPayload(t.task_id, r.connector, raw) }, `Raw JSON as ${r.connector} receives it`), raw];
    })(),
    r.log.length
      ? table(["Time", "Attempts", "Error"], logGroups(r.log).map((g) => el("tr", { class: "log-entry" },
        el("td", {}, g.count > 1 ? `${fmtTime(g.first)} – ${fmtTime(g.last)}` : fmtTime(g.last)),
        el("td", { class: "log-attempts" }, g.count), el("td", { class: "log-error" }, g.error))))
      : el("p", { class: "muted" }, "No failed attempts.")));
  const detail = [
    el("h2", {}, `Task detail (${t.title})`),
    el("dl", { class: "facts" },
      el("dt", {}, "Task direction"), el("dd", { id: "detail-direction" }, t.direction === "incoming" ? "Inbound" : "Outbound"),
      el("dt", {}, "Task type"), el("dd", { id: "detail-type" }, t.task_type),
      el("dt", {}, "Data type"), el("dd", {}, t.data_type),
      el("dt", {}, "Task time"), el("dd", {}, fmtTime(t.time))),
    el("h2", {}, (o && (o.object_type || o.class_name)) || "Data"),
    fieldTable(o),
    el("h2", {}, "Related data"),
    related.length ? table(["ClassName", "ID", "CodeName", "SiteName", "ParentID", "GroupID"], related) : el("p", { class: "muted" }, "None."),
    children.length ? [el("h2", {}, "Children"), ...children.map(fieldTable)] : null,
    bindings.length ? [el("h2", {}, "Bindings"), ...bindings.map(fieldTable)] : null,
  ];
  openModal(...(logFirst ? [...log, ...detail] : [...detail, ...log]));
  if (currentTab === "outgoing" || currentTab === "incoming") { openTask = id; syncUrl(); }
}

// ---- settings ----

async function renderSettings() {
  const s = await settings();
  const names = [["enabled", "Enable system integration bus"], ["log_incoming", "Enable logging of incoming tasks"],
    ["process_incoming", "Enable processing of incoming tasks"], ["log_outgoing", "Enable logging of outgoing tasks"],
    ["process_outgoing", "Enable processing of outgoing tasks"]];
  // The four sub-settings take effect only with the bus enabled: greyed while it is off.
  const form = el("form", { class: "settings" },
    names.map(([k, label]) => el("label", { class: k === "enabled" ? "" : "depends", "data-setting": k },
      el("input", { type: "checkbox", name: k, id: "s-" + k, checked: s[k] }), " " + label)),
    el("p", { class: "muted", id: "settings-note" }, "The four settings below the first take effect only while the integration bus is enabled."),
    el("button", { class: "primary", type: "submit", id: "save-settings" }, "Save"));
  const follow = () => {
    const on = form.elements.enabled.checked;
    for (const label of form.querySelectorAll("label.depends")) {
      label.classList.toggle("off", !on);
      label.querySelector("input").disabled = !on;
    }
  };
  form.elements.enabled.addEventListener("change", follow);
  follow();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(names.map(([k]) => [k, form.elements[k].checked]));
    try { await api("PUT", "/api/settings", body); toast("Settings saved"); } catch (e) { showError(e); }
  });
  paint("settings", form);
}

// ---- event log ----

const logState = { source: "", type: "", grid: gridState("time", "desc") };

async function renderEventLog() {
  const g = logState.grid;
  const q = gridQuery(g, new URLSearchParams());
  if (logState.source) q.set("source", logState.source);
  if (logState.type) q.set("type", logState.type);
  const page = await api("GET", "/api/eventlog?" + q);
  const source = el("input", { type: "text", id: "log-source", placeholder: "Source contains", "aria-label": "Source contains (any case)", value: logState.source });
  const type = el("select", { id: "log-type", "aria-label": "Event type" }, [["", "(all types)"], ["I", "Information"], ["W", "Warning"], ["E", "Error"]]
    .map(([v, l]) => el("option", { value: v, selected: logState.type === v }, l)));
  const apply = el("button", { id: "log-filter", onclick: () => { logState.source = source.value.trim(); logState.type = type.value; g.offset = 0; renderEventLog(); } }, "Filter");
  const rows = page.items.map((e) => el("tr", { class: "event", "data-id": e.id },
    el("td", { class: "etype" }, e.event_type), el("td", {}, fmtTime(e.time)), el("td", { class: "source" }, e.source),
    el("td", { class: "code" }, e.code), el("td", { class: "user" }, e.user_name || ""), el("td", { class: "ip" }, e.ip_address || ""),
    el("td", { class: "document" }, e.document_name || ""), el("td", { class: "description" }, e.description)));
  const r = renderEventLog;
  paint("eventlog",
    el("div", { class: "toolbar" }, source, type, apply, ...searchBox(g, "log-search", r)),
    table([sortable(g, "Type", "type", r), sortable(g, "Event time", "time", r), sortable(g, "Source", "source", r), sortable(g, "Event code", "code", r),
      sortable(g, "User name", "user", r), "IP address", "Document name", "Description"],
      rows.length ? rows : [el("tr", {}, el("td", { colspan: "8", class: "muted" }, "No events."))]),
    pager(g, page.total, "events", r));
}

// ---- scheduled tasks ----

async function renderScheduled() {
  const list = await api("GET", "/api/scheduled-tasks");
  const rows = list.map((t) => el("tr", { "data-name": t.name },
    el("td", { class: "actions" }, el("button", { class: "execute", title: "Execute now", onclick: async () => {
      try { const r = await api("POST", `/api/scheduled-tasks/${encodeURIComponent(t.name)}/execute`); toast(r.last_result || "Executed"); } catch (e) { showError(e); }
      renderScheduled();
    } }, "Execute")),
    el("td", {}, t.display_name), el("td", {}, fmtTime(t.last_run)), el("td", {}, t.enabled ? fmtTime(t.next_run) : "(disabled)"),
    el("td", {}, t.last_result || ""), el("td", { class: "executions" }, t.executions), el("td", { class: "interval" }, `${t.interval_seconds} s`),
    el("td", {}, el("button", { class: "edit", onclick: () => editSchedule(t) }, "Edit"))));
  paint("scheduled", table(["Actions", "Task name", "Last run", "Next run", "Last result", "Executions", "Interval", "Change"], rows));
}

// A scheduled task's interval and enabled flag.
function editSchedule(t) {
  const error = el("div", { class: "error" });
  const form = el("form", { class: "edit", id: "schedule-form", novalidate: true },
    el("h2", {}, `Scheduled task: ${t.display_name}`),
    formField("t", "interval_seconds", "Interval (seconds)", el("input", { type: "number", min: "1", value: String(t.interval_seconds) })),
    el("label", {}, el("input", { type: "checkbox", id: "t-enabled", name: "enabled", checked: t.enabled }), " Enabled"),
    error,
    el("div", { class: "modal-actions" }, el("button", { class: "primary", type: "submit", id: "schedule-save" }, "Save")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const seconds = Number(form.elements.interval_seconds.value);
    if (!Number.isInteger(seconds) || seconds < 1) { error.textContent = "The interval is a whole number of seconds, at least 1."; return; }
    try {
      await api("PUT", `/api/scheduled-tasks/${encodeURIComponent(t.name)}`, { interval_seconds: seconds, enabled: form.elements.enabled.checked });
      closeModal();
      toast(`Saved: ${t.display_name} every ${seconds} s`);
      renderScheduled();
    } catch (e) { error.textContent = e.message; }
  });
  openModal(form);
}

// ---- content: the objects and documents the bus keeps in sync ----
//
// Every change made here goes through the same API as any client's, so it
// logs outgoing tasks exactly like one.

// The objects are paged by ID (`after` the last of the page before):
// `cursor` is this page's, `back` the cursors of the pages before it.
const CONTENT_PAGE = 100;
const contentState = { kind: "cms.user", site: "", cursor: null, back: [] };

// A form field: a label and an input (or a textarea / select / checkbox).
function formField(prefix, name, label, input) {
  input.id = `${prefix}-${name}`;
  input.name = name;
  return [el("label", { for: input.id }, label), input];
}

// Preview: what a change would do — the connectors it would reach, how,
// and the document each would receive — from POST /api/dry-run, which
// writes nothing.
const HOW = {
  queued: "queued",
  queued_if_matched: "queued, if its is_match takes it",
  synchronous: "called at once, synchronously",
  synchronous_if_matched: "called at once, if its is_match takes it",
  not_called_processing_off: "not called: processing is off",
};

async function showPreview(change, target) {
  target.replaceChildren("Previewing…");
  try {
    const r = await api("POST", "/api/dry-run", change);
    const items = r.deliveries.map((d) => el("li", {},
      el("strong", {}, d.connector), ` — ${HOW[d.how] || d.how}`, d.process_type ? ` (${d.process_type})` : "",
      d.document ? el("details", {}, el("summary", {}, "The document it would receive"),
        el("pre", { class: "raw-json" }, JSON.stringify(d.document, null, 2))) : null));
    target.replaceChildren(
      el("p", {}, `Preview of “${r.title}”. Nothing was written.`),
      items.length ? el("ul", {}, items) : el("p", {}, "No connector would get this change."));
  } catch (e) {
    target.replaceChildren(el("span", { class: "error-text" }, `Preview failed: ${e.message}`));
  }
}

// A form's Preview button: the change its fields make now, previewed in
// `target`; a field that cannot be read is said in `error`.
function previewButton(id, change, target, error) {
  return el("button", { type: "button", id, onclick: () => {
    try { showPreview(change(), target); } catch (e) { error.textContent = e.message; }
  } }, "Preview");
}

// The fields of an object or document, a row each, made from the type's
// entry in the object-type registry: a foreign key is picked from the
// objects of its type (a document or node ID is typed as a number); any
// other field has a name, a kind (text, number, yes/no, JSON) and a value.
// A value that cannot be read is said next to its field, and nothing is
// sent until it is right.
const FIELD_KINDS = [["text", "Text"], ["number", "Number"], ["bool", "Yes/no"], ["json", "JSON"]];

function kindOf(v) {
  if (v === undefined) return "text";
  if (typeof v === "number") return "number";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "string") return "text";
  return "json";
}

async function pickableObjects(type) {
  try { return (await api("GET", `/api/objects/${encodeURIComponent(type)}?limit=1000`)).items; } catch (_) { return []; }
}

async function fieldsEditor(prefix, types, foreignKeys, initial) {
  const values = { ...(initial || {}) };
  const stored = { ...values };
  // A field the object had and the form no longer gives is sent as null,
  // which removes it (fields are merged); one stored as null is left as it is.
  const had = Object.keys(values).filter((k) => values[k] !== null);
  const rows = [];
  let counter = 0;
  const list = el("div", { class: "fields", id: `${prefix}-fields` });
  // A field's message, next to it; the input says it is invalid.
  function say(row, input, message) {
    row.querySelector(".field-error").textContent = message || "";
    for (const i of row.querySelectorAll("input, select")) i.removeAttribute("aria-invalid");
    if (message) input.setAttribute("aria-invalid", "true");
    return !message;
  }
  for (const [field, target] of Object.entries(foreignKeys)) {
    const id = `${prefix}-fk-${field}`;
    const current = values[field];
    delete values[field];
    let input;
    if (target === "document" || target === "document.node") {
      input = el("input", { type: "number", id, min: "1", step: "1", value: current == null ? "" : String(current) });
    } else {
      const objects = await pickableObjects(target);
      const known = objects.some((o) => o.id === current);
      const targetType = types.objects.find((t) => t.type === target);
      input = el("select", { id },
        el("option", { value: "" }, "(none)"),
        current != null && !known ? el("option", { value: String(current), selected: true }, `#${current}`) : null,
        objects.map((o) => el("option", { value: String(o.id), selected: o.id === current },
          o.display_name ? `${o.display_name} (${o.code_name})` : o.code_name || `#${o.id}`)));
      input.dataset.target = targetType ? targetType.display_name : target;
    }
    const what = target === "document" ? "a document ID" : target === "document.node" ? "a node ID" : (input.dataset.target || target);
    const row = el("div", { class: "field-row fk", "data-field": field },
      el("label", { for: id }, `${field} (${what})`), input, el("span", { class: "field-error", id: `${id}-error`, role: "alert" }));
    input.setAttribute("aria-describedby", `${id}-error`);
    rows.push({ row, read: () => {
      if (input.value === "") return [field, undefined];
      const n = Number(input.value);
      if (!Number.isInteger(n) || n < 1) { say(row, input, "Not an ID: a whole number of 1 or more."); return null; }
      say(row, input, "");
      return [field, n];
    } });
    list.append(row);
  }
  function addRow(name, value) {
    const n = counter++;
    const ids = { name: `${prefix}-f${n}-name`, kind: `${prefix}-f${n}-kind`, value: `${prefix}-f${n}-value`, error: `${prefix}-f${n}-error` };
    const kind = el("select", { id: ids.kind, class: "field-kind", "aria-label": "Kind of value" },
      FIELD_KINDS.map(([k, label]) => el("option", { value: k, selected: kindOf(value) === k }, label)));
    const nameInput = el("input", { type: "text", id: ids.name, class: "field-name", "aria-label": "Field name", placeholder: "Field name", value: name,
      "aria-describedby": ids.error });
    const text = value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
    const valueInput = el("input", { type: "text", id: ids.value, class: "field-value", "aria-label": "Value", placeholder: "Value", value: text,
      "aria-describedby": ids.error });
    const row = el("div", { class: "field-row" }, nameInput, kind, valueInput,
      el("button", { type: "button", class: "remove-field", "aria-label": "Remove this field", onclick: () => {
        row.remove();
        rows.splice(rows.findIndex((r) => r.row === row), 1);
      } }, "✖"),
      el("span", { class: "field-error", id: ids.error, role: "alert" }));
    rows.push({ row, read: () => {
      const key = nameInput.value.trim();
      const raw = valueInput.value;
      if (!key && !raw.trim()) { say(row, valueInput, ""); return [null, undefined]; }
      if (!key) { say(row, nameInput, "Give the field a name."); return null; }
      let v;
      if (kind.value === "text") v = raw;
      else if (kind.value === "number") {
        v = Number(raw.trim());
        if (!raw.trim() || !Number.isFinite(v)) { say(row, valueInput, `“${raw}” is not a number.`); return null; }
      } else if (kind.value === "bool") {
        const t = raw.trim().toLowerCase();
        if (!["yes", "no", "true", "false"].includes(t)) { say(row, valueInput, "Write yes or no."); return null; }
        v = t === "yes" || t === "true";
      } else {
        try { v = JSON.parse(raw); } catch (e) { say(row, valueInput, `Not JSON: ${e.message}`); return null; }
      }
      say(row, valueInput, "");
      return [key, v];
    } });
    list.append(row);
    return nameInput;
  }
  for (const [k, v] of Object.entries(values)) addRow(k, v);
  const add = el("button", { type: "button", id: `${prefix}-add-field`, onclick: () => addRow("", undefined).focus() }, "Add a field");
  return {
    node: el("fieldset", { class: "fields-editor" }, el("legend", {}, "Fields"), list, add),
    // The fields as the API takes them; throws when one cannot be read
    // (each says why next to it).
    read() {
      const out = {};
      let bad = null;
      for (const r of rows) {
        const got = r.read();
        if (got === null) { bad = bad || r.row; continue; }
        const [key, v] = got;
        if (key === null || v === undefined) continue;
        if (v === null && stored[key] === null) continue;
        if (Object.prototype.hasOwnProperty.call(out, key)) {
          const input = r.row.querySelector("input");
          say(r.row, input, `“${key}” is given twice.`);
          bad = bad || r.row;
          continue;
        }
        out[key] = v;
      }
      if (bad) {
        const first = bad.querySelector("[aria-invalid='true']");
        if (first) first.focus();
        throw new Error("A field is not right: see the message next to it.");
      }
      for (const key of had) if (!Object.prototype.hasOwnProperty.call(out, key)) out[key] = null;
      return out;
    },
  };
}

// The sites to pick from (code name, shown by display name).
async function siteOptions(selected, none) {
  const sites = await pickableObjects("cms.site");
  return [none ? el("option", { value: "" }, none) : null,
    ...sites.map((x) => el("option", { value: x.code_name, selected: x.code_name === selected }, x.display_name ? `${x.display_name} (${x.code_name})` : x.code_name))];
}

function changeToast(r) {
  const queued = (r.queued_for || []).length ? `; queued for ${r.queued_for.join(", ")}` : "";
  const sync = (r.sync || []).map((o) => `${o.connector}: ${o.result}`).join(", ");
  toast(`Saved${queued}${sync ? "; " + sync : ""}`);
}

async function renderContent() {
  const types = await api("GET", "/api/object-types");
  const kind = el("select", { id: "content-kind", "aria-label": "What to show", onchange: (e) => { contentState.kind = e.target.value; contentState.cursor = null; contentState.back = []; renderContent(); } },
    el("optgroup", { label: "Objects" }, types.objects.map((t) => el("option", { value: t.type, selected: contentState.kind === t.type }, `${t.display_name} (${t.type})`))),
    el("option", { value: "documents", selected: contentState.kind === "documents" }, "Documents"));
  if (contentState.kind === "documents") return renderDocuments(types, kind);
  const type = types.objects.find((t) => t.type === contentState.kind) || types.objects[0];
  const after = contentState.cursor ? `&after=${contentState.cursor}` : "";
  const page = await api("GET", `/api/objects/${encodeURIComponent(type.type)}?limit=${CONTENT_PAGE}${after}`);
  const path = (o) => `/api/objects/${encodeURIComponent(type.type)}/${o.id}`;
  const rows = page.items.map((o) => el("tr", { class: "content-row", "data-id": o.id, "data-code": o.code_name },
    el("td", {}, o.id), el("td", { class: "code" }, o.code_name), el("td", {}, o.display_name || ""), el("td", {}, o.site_name || ""),
    valueCell(o.fields || {}),
    el("td", { class: "actions" },
      el("button", { class: "edit", onclick: () => editObject(types, type, o) }, "Edit"),
      type.site_binding ? el("button", { class: "add-to-site", onclick: () => siteAction(type, o, "POST") }, "Add to site") : null,
      type.site_binding ? el("button", { class: "remove-from-site", onclick: () => siteAction(type, o, "DELETE") }, "Remove from site") : null,
      el("button", { class: "delete", onclick: async () => {
        if (!confirm(`Delete ${type.display_name} ${o.code_name}?`)) return;
        try { changeToast(await api("DELETE", path(o))); } catch (e) { showError(e); }
        renderContent();
      } }, "Delete"))));
  paint("content",
    el("div", { class: "toolbar" }, kind, el("button", { class: "primary", id: "new-object", onclick: () => editObject(types, type, null) }, `New ${type.display_name.toLowerCase()}`),
      el("span", { class: "muted" }, "Changes here log outgoing tasks like any other client's.")),
    table(["ID", "Code name", "Display name", "Site", "Fields", "Actions"], rows.length ? rows : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "None yet."))]),
    contentPager(page));
}

function contentPager(page) {
  const st = contentState;
  const first = st.back.length * CONTENT_PAGE + 1;
  const go = (cursor, back) => { st.cursor = cursor; st.back = back; renderContent(); };
  return el("div", { class: "pager" },
    el("button", { class: "first-page", disabled: !st.back.length, onclick: () => go(null, []) }, "First"),
    el("button", { class: "prev-page", disabled: !st.back.length, onclick: () => go(st.back[st.back.length - 1], st.back.slice(0, -1)) }, "Previous"),
    el("span", { class: "position muted" }, page.items.length ? `Rows ${first}–${first + page.items.length - 1}` : "No rows"),
    el("button", { class: "next-page", disabled: !page.next_after, onclick: () => go(page.next_after, [...st.back, st.cursor]) }, "Next"));
}

// Add to / remove from a site, the site picked from the sites there are.
async function siteAction(type, o, method) {
  let sites;
  try { sites = (await api("GET", "/api/objects/cms.site?limit=1000")).items; } catch (e) { showError(e); return; }
  const adding = method === "POST";
  const error = el("div", { class: "error" });
  const pick = el("select", { id: "site-pick" }, sites.map((x) => el("option", { value: x.code_name }, x.display_name ? `${x.display_name} (${x.code_name})` : x.code_name)));
  const form = el("form", { class: "edit", id: "site-form" },
    el("h2", {}, `${adding ? "Add" : "Remove"} ${type.display_name} ${o.code_name} ${adding ? "to" : "from"} a site`),
    sites.length ? [el("label", { for: "site-pick" }, "Site"), pick] : el("p", { class: "muted" }, "There is no site yet: create one first (Content → Site)."),
    error,
    el("div", { class: "modal-actions" }, el("button", { class: "primary", type: "submit", id: "site-ok", disabled: !sites.length }, adding ? "Add" : "Remove")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      changeToast(await api(method, `/api/objects/${encodeURIComponent(type.type)}/${o.id}/sites/${encodeURIComponent(pick.value)}`));
      closeModal();
      renderContent();
    } catch (e) { error.textContent = e.message; }
  });
  openModal(form);
}

async function editObject(types, type, o) {
  const error = el("div", { class: "error", role: "alert" });
  const preview = el("section", { id: "preview", class: "preview", "aria-live": "polite" });
  const fields = await fieldsEditor("c", types, type.foreign_keys || {}, o ? o.fields : {});
  const site = !o && type.site !== "global"
    ? formField("c", "site_name", "Site", el("select", {}, await siteOptions("", type.site === "site" ? null : "(none: a global one)")))
    : null;
  const form = el("form", { class: "edit", id: "content-form", novalidate: true },
    el("h2", {}, o ? `Edit ${type.display_name} ${o.code_name}` : `New ${type.display_name}`),
    formField("c", "code_name", type.binding ? "Code name (may be left empty: made from its keys)" : "Code name", el("input", { type: "text", value: o ? o.code_name : "" })),
    formField("c", "display_name", "Display name", el("input", { type: "text", value: o ? o.display_name || "" : "" })),
    site,
    fields.node,
    error,
    preview,
    el("div", { class: "modal-actions" },
      previewButton("content-preview", change, preview, error),
      el("button", { class: "primary", type: "submit", id: "content-save" }, "Save")));
  function body() {
    const b = { code_name: form.elements.code_name.value.trim() || undefined, display_name: form.elements.display_name.value.trim() || undefined, fields: fields.read() };
    if (!o && form.elements.site_name && form.elements.site_name.value) b.site_name = form.elements.site_name.value;
    return b;
  }
  function change() {
    return o ? { op: "update_object", object_type: type.type, id: o.id, patch: body() } : { op: "create_object", object_type: type.type, object: body() };
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    let body_;
    try { body_ = body(); } catch (e) { error.textContent = e.message; return; }
    try {
      const r = o ? await api("PUT", `/api/objects/${encodeURIComponent(type.type)}/${o.id}`, body_) : await api("POST", `/api/objects/${encodeURIComponent(type.type)}`, body_);
      closeModal();
      changeToast(r);
      renderContent();
    } catch (e) { error.textContent = e.message; }
  });
  openModal(form);
}

async function renderDocuments(types, kind) {
  const sites = (await api("GET", "/api/objects/cms.site?limit=200")).items;
  if (!contentState.site && sites.length) contentState.site = sites[0].code_name;
  const site = el("select", { id: "content-site", "aria-label": "Site", onchange: (e) => { contentState.site = e.target.value; renderContent(); } },
    sites.map((s) => el("option", { value: s.code_name, selected: contentState.site === s.code_name }, s.display_name || s.code_name)));
  const docs = contentState.site ? (await api("GET", `/api/documents?site=${encodeURIComponent(contentState.site)}&limit=1000`)).items : [];
  // The tree: by alias path, each level indented, its cultures together.
  docs.sort((a, b) => a.node_alias_path.localeCompare(b.node_alias_path) || a.culture.localeCompare(b.culture));
  const rows = docs.map((d) => {
    const depth = d.node_alias_path.split("/").length - 2;
    const state = d.archived ? "Archived" : d.published ? "Published" : "Not published";
    return el("tr", { class: "content-row document", "data-id": d.document_id, "data-path": d.node_alias_path, "data-culture": d.culture },
      el("td", { class: "tree" }, el("span", { class: "indent", "data-depth": String(depth) }, "— ".repeat(depth)), d.name),
      el("td", {}, d.node_alias_path), el("td", {}, d.culture), el("td", {}, d.class_name), el("td", { class: "state" }, state),
      el("td", { class: "actions" },
        el("button", { class: "edit", onclick: () => editDocument(types, d) }, "Edit"),
        el("button", { class: "publish", disabled: d.published && !d.archived, onclick: () => docAction(d, "publish") }, "Publish"),
        el("button", { class: "archive", disabled: d.archived, onclick: () => docAction(d, "archive") }, "Archive"),
        el("button", { class: "delete", onclick: async () => {
          if (!confirm(`Delete document ${d.node_alias_path} (${d.culture})?`)) return;
          try { changeToast(await api("DELETE", `/api/documents/${d.document_id}`)); } catch (e) { showError(e); }
          renderContent();
        } }, "Delete")));
  });
  paint("content",
    el("div", { class: "toolbar" }, kind, el("label", { for: "content-site" }, "Site:"), site,
      el("button", { class: "primary", id: "new-document", disabled: !sites.length, onclick: () => editDocument(types, null) }, "New document"),
      sites.length ? null : el("span", { class: "muted" }, "Create a site (object type cms.site) first.")),
    table(["Document", "Alias path", "Culture", "Class", "State", "Actions"], rows.length ? rows : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, "No documents on this site."))]));
}

async function docAction(d, action) {
  try { changeToast(await api("POST", `/api/documents/${d.document_id}/${action}`)); } catch (e) { showError(e); }
  renderContent();
}

async function editDocument(types, d) {
  const error = el("div", { class: "error", role: "alert" });
  const preview = el("section", { id: "preview", class: "preview", "aria-live": "polite" });
  const classOf = (name) => types.documents.find((c) => c.class_name === name) || { foreign_keys: {} };
  const classPick = el("select", {}, types.documents.map((c) => el("option", { value: c.class_name }, `${c.display_name} (${c.class_name})`)));
  const fieldsPlace = el("div", {});
  let fields;
  let asked = 0;
  // A new document's fields follow the class picked (its foreign keys); an
  // answer for a class picked before the last is dropped.
  async function fieldsFor(className, initial) {
    const mine = ++asked;
    // No save with the fields of the class picked before.
    const save = document.getElementById("document-save");
    if (save) save.disabled = true;
    const made = await fieldsEditor("d", types, classOf(className).foreign_keys || {}, initial);
    if (mine !== asked) return;
    fields = made;
    fieldsPlace.replaceChildren(fields.node);
    if (save) save.disabled = false;
  }
  await fieldsFor(d ? d.class_name : classPick.value, d ? d.fields : {});
  classPick.addEventListener("change", () => fieldsFor(classPick.value, {}));
  const form = el("form", { class: "edit", id: "document-form", novalidate: true },
    el("h2", {}, d ? `Edit document ${d.node_alias_path} (${d.culture})` : `New document on ${contentState.site}`),
    d ? null : formField("d", "alias_path", "Alias path (the parent must exist)", el("input", { type: "text", placeholder: "/Products/Apple iPad 2" })),
    d ? null : formField("d", "class_name", "Class", classPick),
    d ? null : formField("d", "culture", "Culture", el("input", { type: "text", value: "en-US" })),
    formField("d", "name", "Name", el("input", { type: "text", value: d ? d.name : "" })),
    fieldsPlace,
    d ? null : el("label", {}, el("input", { type: "checkbox", id: "d-published", name: "published" }), " Published"),
    error,
    preview,
    el("div", { class: "modal-actions" },
      previewButton("document-preview", change, preview, error),
      el("button", { class: "primary", type: "submit", id: "document-save" }, "Save")));
  function patch() {
    return { name: form.elements.name.value.trim() || undefined, fields: fields.read() };
  }
  function input() {
    const e = form.elements;
    return { site_name: contentState.site, alias_path: e.alias_path.value.trim(), class_name: e.class_name.value,
      culture: e.culture.value.trim(), name: e.name.value.trim(), fields: fields.read(), published: e.published.checked };
  }
  function change() {
    return d ? { op: "update_document", document_id: d.document_id, patch: patch() } : { op: "create_document", document: input() };
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    let body;
    try { body = d ? patch() : input(); } catch (e) { error.textContent = e.message; return; }
    try {
      const r = d ? await api("PUT", `/api/documents/${d.document_id}`, body) : await api("POST", "/api/documents", body);
      closeModal();
      changeToast(r);
      renderContent();
    } catch (err) { error.textContent = err.message; }
  });
  openModal(form);
}

// The URL's hash names the tab and its view: a changed hash or Back shows
// that view (and closes a popup left open), as does a reload.
async function showUrl() {
  // The popup of the view left goes, without writing that view back.
  const hash = location.hash;
  if (!modal.hidden) closeModal();
  if (location.hash !== hash) history.replaceState(null, "", hash);
  const tab = readUrl();
  const task = openTask;
  await show(tab);
  if (task !== null) viewTask(task);
}
// ---- live: what changed, from GET /api/events ----
//
// The shown tab is refreshed when a part it shows changed (not while a popup
// is open: a form being filled is not disturbed). A stream ends every 25 s
// and the browser connects again; only a connection not back within a few
// seconds shows the banner, which goes — and the view is refreshed — once it
// is. The stream is closed while the page is hidden in the back/forward
// cache, so open tabs do not use up the browser's connections per host.
const SHOWS = {
  overview: ["queues", "connectors", "history"], connector: ["queues", "connectors", "history"],
  connectors: ["queues", "connectors"], outgoing: ["queues", "settings"], incoming: ["queues", "settings"],
  eventlog: ["eventlog"], settings: ["settings"], scheduled: ["eventlog"], content: [],
};
const lostBanner = document.getElementById("connection-lost");
let live = null;
let lostTimer = null;
let refreshing = false;
let refreshAgain = false;
function refreshShown() {
  if (!modal.hidden || !currentTab) return;
  // A change announced during a refresh is shown by one more after it.
  if (refreshing) { refreshAgain = true; return; }
  // Not while someone types or picks in the view, has ticked rows, or a
  // bulk action runs.
  const active = document.activeElement;
  if (active && view.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return;
  if (view.querySelector("input.pick:checked") || bulkRunning) return;
  refreshing = true;
  tabs[currentTab]().catch(() => {}).finally(() => {
    refreshing = false;
    if (refreshAgain) { refreshAgain = false; refreshShown(); }
  });
}
function listen() {
  if (live) return;
  live = new EventSource("/api/events");
  live.addEventListener("hello", () => {
    clearTimeout(lostTimer);
    lostTimer = null;
    if (!lostBanner.hidden) { lostBanner.hidden = true; refreshShown(); }
  });
  live.addEventListener("change", (e) => {
    let what = [];
    try { what = JSON.parse(e.data); } catch (_) { what = []; }
    if ((SHOWS[currentTab] || []).some((w) => what.includes(w))) refreshShown();
  });
  live.onerror = () => {
    if (live && live.readyState === EventSource.CLOSED) { live = null; setTimeout(listen, 2000); }
    if (lostTimer === null) lostTimer = setTimeout(() => { lostBanner.hidden = false; }, 3000);
  };
}
window.addEventListener("pagehide", () => { if (live) { live.close(); live = null; } });
window.addEventListener("pageshow", listen);
listen();

window.addEventListener("popstate", showUrl);
window.addEventListener("hashchange", () => { if (location.hash !== hashOf(currentTab)) showUrl(); });
showUrl();
