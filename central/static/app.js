// hotspare central dashboard: hash-routed views over the JSON API, live through SSE.
// Everything shown comes from /api/...; every text from the agents is escaped.
"use strict";

const STATES = ["redundant", "degraded", "failed", "unknown", "offline", "none"];
const view = document.getElementById("view");
let current = null; // {name, onHosts(summaries), onTransition(t)}

const ENTITIES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
function esc(s) {
  const t = String(s ?? "");
  return /[&<>"']/.test(t) ? t.replace(/[&<>"']/g, (c) => ENTITIES[c]) : t; // most texts need none
}
function when(ts) {
  return ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–";
}
function num(x, digits = 3) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}
function hostKey(site, host) { return `${site}/${host}`; }
function token() { return sessionStorage.getItem("hotspare-token") || ""; }
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const r = await fetch(path, Object.assign({}, opts, { headers }));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}
function params() {
  const h = location.hash.replace(/^#/, "");
  const [path, query] = h.split("?");
  return { path: path || "/", q: new URLSearchParams(query || "") };
}
function setHash(path, q) {
  const s = q.toString();
  location.hash = path + (s ? "?" + s : "");
}
function cellClass(state) { return "st-" + (state || "none"); }

// --- fleet matrix -------------------------------------------------------------------------
// the request of the first page may be under way already (index.html: fleetQuery, early)
async function firstOr(url) {
  const started = early[url];
  delete early[url];
  if (started) {
    const r = await started.catch(() => null);
    if (r && r.ok) return r.json();
  }
  performance.mark("fleet:request"); // marks for the benchmark and the browser's profiler
  return api(url);
}
async function fleetView(q) {
  const qs = fleetQuery(q);
  const limit = Number(qs.get("limit"));
  const data = await firstOr("/api/fleet?" + qs);
  performance.mark("fleet:data");
  const sites = data.sites.map((s) => `<option ${s === q.get("site") ? "selected" : ""}>${esc(s)}</option>`).join("");
  const states = STATES.map((s) => `<option ${s === q.get("state") ? "selected" : ""}>${s}</option>`).join("");
  const head = data.groups.map((g) => `<th>${esc(g)}</th>`).join("");
  const cells = new Map(); // shared by the rows: a page holds few distinct group cells
  const rows = data.hosts.map((h) => rowHtml(h, data.groups, cells)).join("");
  view.innerHTML = `
    <h1>Fleet</h1>
    <div id="summary">${summaryHtml(data.summary, q.get("site"))}</div>
    <form class="filters" id="filters">
      <label>site <select name="site"><option value="">all</option>${sites}</select></label>
      <label>state <select name="state"><option value="">all</option>${states}</select></label>
      <label>host <input name="q" value="${esc(q.get("q") || "")}" placeholder="name contains"></label>
      <label>per page <select name="limit">${[50, 100, 500, 1000].map((n) => `<option ${n === limit ? "selected" : ""}>${n}</option>`).join("")}</select></label>
      <label>sort <select name="sort"><option value="name">name</option><option value="state" ${q.get("sort") === "state" ? "selected" : ""}>worst first</option></select></label>
      <button>Filter</button>
      <span class="counts" id="counts">${countsHtml(data.counts)}</span>
    </form>
    <div class="pager">${pager(data)}</div>
    <table class="matrix" id="matrix"><thead><tr><th>site</th><th>host</th><th>host state</th>${head}</tr></thead>
    <tbody>${rows || `<tr><td colspan="3" class="muted">no hosts match</td></tr>`}</tbody></table>`;
  performance.mark("fleet:shown");
  requestAnimationFrame(() => setTimeout(() => performance.mark("fleet:painted"))); // after the frame
  document.getElementById("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target), nq = new URLSearchParams();
    for (const [k, v] of f.entries()) if (v) nq.set(k, v);
    setHash("/", nq);
  });
  for (const b of view.querySelectorAll("[data-offset]")) b.addEventListener("click", () => {
    q.set("offset", b.dataset.offset); setHash("/", q);
  });
  const columns = new Set(data.groups);
  const byKey = new Map();
  for (const tr of document.getElementById("matrix").tBodies[0].rows) if (tr.dataset.host) byKey.set(tr.dataset.host, tr);
  // without a state, name or group filter the counts are the summary's: it comes live
  const filtered = Boolean(q.get("state") || q.get("q") || q.get("group"));
  let countsTimer = null;
  const refreshCounts = () => {
    // the counts cover every matching host, not just this page: ask the server again
    if (countsTimer) return;
    countsTimer = setTimeout(async () => {
      countsTimer = null;
      const c = await api("/api/fleet?" + new URLSearchParams(Object.assign(Object.fromEntries(qs), { limit: 1, offset: 0 })));
      const el = document.getElementById("counts");
      if (el) el.innerHTML = countsHtml(c.counts);
    }, 1000);
  };
  return {
    name: "fleet",
    onSummary(s) {
      const site = q.get("site");
      const mine = site ? s.sites[site] : s.fleet;
      if (!mine) return;
      document.getElementById("summary").innerHTML = summaryHtml(mine, site);
      if (!filtered) document.getElementById("counts").innerHTML = countsHtml(mine.states);
    },
    onHosts(summaries) {
      if (filtered) refreshCounts();
      const wanted = new Set((q.get("state") || "").split(",").filter(Boolean));
      for (const h of summaries) {
        const tr = byKey.get(hostKey(h.site, h.host));
        if (!tr) {
          // a host that now matches the state filter: fetch the page again to show it
          if (wanted.size && wanted.has(h.state || "none") && (!q.get("site") || q.get("site") === h.site)) { scheduleRender(); return; }
          continue;
        }
        if (Object.keys(h.groups).some((g) => !columns.has(g))) { scheduleRender(); return; }
        patchRow(tr, h);
      }
    },
  };
}
function countsHtml(counts) {
  return Object.entries(counts).map(([s, n]) => `<span class="chip ${cellClass(s === "none" ? null : s)}" data-count="${esc(s)}">${esc(s)} ${n}</span>`).join("");
}
// the summary of every host (of the site): hosts and each group per state, counted by the
// server as messages arrive; a host state's count links to the hosts in that state
function summaryHtml(s, site) {
  const always = ["redundant", "degraded", "failed", "offline"];
  const shown = STATES.filter((st) => always.includes(st) || s.states[st] || Object.values(s.groups).some((g) => g[st]));
  const link = (st) => `#/?${new URLSearchParams(Object.assign(site ? { site } : {}, { state: st, sort: "state" }))}`;
  const cell = (counts, group, st) => {
    const n = counts[st] || 0;
    return `<td class="n ${n ? cellClass(st) : "zero"}" data-group="${esc(group)}" data-state="${st}">${n}</td>`;
  };
  const hostRow = `<tr><th>hosts (${s.hosts})</th>${shown.map((st) => {
    const n = s.states[st] || 0;
    return `<td class="n ${n ? cellClass(st) : "zero"}" data-group="" data-state="${st}">${n ? `<a href="${link(st)}">${n}</a>` : 0}</td>`;
  }).join("")}</tr>`;
  const groupRows = Object.entries(s.groups).map(([g, c]) => `<tr><th>${esc(g)}</th>${shown.map((st) => cell(c, g, st)).join("")}</tr>`).join("");
  return `<table class="summary"><thead><tr><th>${site ? esc(site) : "whole fleet"}</th>${shown.map((st) => `<th>${st}</th>`).join("")}</tr></thead>
    <tbody>${hostRow}${groupRows}</tbody></table>`;
}
function cellHtml(h, g) {
  const s = h.groups[g];
  const shown = h.state === "offline" && s ? "offline" : s;
  return [shown || "", `${g}: ${s || "not present"}`, s || ""];
}
// a group cell's HTML follows from its group, its state and whether the host is offline: it
// is built once per page for each such triple, not once per host (a 1 000-row page holds a few
// dozen distinct cells among 8 000)
function groupCellHtml(cells, h, g) {
  const s = h.groups[g];
  const key = (h.state === "offline" && s ? "o" : "-") + (s || "");
  let byState = cells.get(g);
  if (!byState) cells.set(g, (byState = new Map()));
  let td = byState.get(key);
  if (td === undefined) {
    const [shown, title, text] = cellHtml(h, g);
    td = `<td class="cell ${cellClass(shown)}" data-group="${esc(g)}" data-state="${esc(shown)}" title="${esc(title)}">${esc(text)}</td>`;
    byState.set(key, td);
  }
  return td;
}
function rowHtml(h, groups, cells = new Map()) {
  const cause = h.offline_cause ? ` title="${esc(h.offline_cause)}"` : "";
  let tr = `<tr data-host="${esc(hostKey(h.site, h.host))}"><td>${esc(h.site)}</td>`
    + `<td><a href="#/host/${encodeURIComponent(h.site)}/${encodeURIComponent(h.host)}">${esc(h.host)}</a></td>`
    + `<td class="cell host ${cellClass(h.state)}" data-state="${esc(h.state || "")}"${cause}>${esc(h.state || "no data")}</td>`;
  for (const g of groups) tr += groupCellHtml(cells, h, g);
  return tr + "</tr>";
}
// a live update touches only the cells whose state or text changed
function patchRow(tr, h) {
  for (const td of tr.cells) {
    if (td.classList.contains("host")) {
      const st = h.state || "";
      if (td.dataset.state !== st) {
        td.dataset.state = st; td.className = `cell host ${cellClass(h.state)}`; td.textContent = h.state || "no data";
      }
      if (h.offline_cause) td.title = h.offline_cause; else td.removeAttribute("title");
    } else if (td.dataset.group !== undefined) {
      const [shown, title, text] = cellHtml(h, td.dataset.group);
      if (td.dataset.state !== shown || td.title !== title) {
        td.dataset.state = shown; td.className = `cell ${cellClass(shown)}`; td.title = title; td.textContent = text;
      }
    }
  }
}
function pager(data) {
  const last = Math.min(data.offset + data.limit, data.total);
  const prev = data.offset > 0 ? `<button type="button" data-offset="${Math.max(0, data.offset - data.limit)}">◀ prev</button>` : "";
  const next = last < data.total ? `<button type="button" data-offset="${data.offset + data.limit}">next ▶</button>` : "";
  return `${prev}<span>${data.total ? data.offset + 1 : 0}–${last} of ${data.total}</span>${next}`;
}

// --- host page ----------------------------------------------------------------------------
async function hostView(site, host) {
  const h = await api(`/api/hosts/${encodeURIComponent(site)}/${encodeURIComponent(host)}`);
  const groups = h.groups.map((g) => {
    const members = [...g.member_details, ...g.spare_details.map((c) => Object.assign({ spare: true }, c))].map((c) =>
      `<tr><td>${esc(c.id)}${c.spare ? " <span class=muted>(spare)</span>" : ""}</td><td class="${cellClass(c.state)}">${esc(c.state || "no data")}</td>
       <td>${c.value === null || c.value === undefined ? "" : esc(c.value) + " " + esc(c.unit || "")}</td><td>${esc(c.detail || "")}</td>
       <td>${esc(c.source || "")}</td><td>${when(c.since)}</td></tr>`).join("");
    return `<h2 data-group="${esc(g.id)}">${esc(g.id)} <span class="chip ${cellClass(g.state)}" data-state="${esc(g.state)}">${esc(g.state)}</span>
      <span class="muted">${esc(g.kind)} · ${g.healthy}/${g.total} serving, ${g.required} required, margin ${g.margin}${g.stated ? " · device states " + esc(g.stated) : ""}</span></h2>
      <p>${esc(g.reason)}</p>
      <table><thead><tr><th>member</th><th>state</th><th>reading</th><th>detail</th><th>source</th><th>since</th></tr></thead><tbody>${members}</tbody></table>`;
  }).join("");
  const timeline = [
    ...h.transitions.map((t) => ({ ts: t.ts, what: `${t.scope} ${t.id}`, from: t.from, to: t.to, text: t.reason || t.cause, src: "central" })),
    ...h.events.map((e) => ({ ts: e.ts, what: e.type === "transition" ? `${e.scope} ${e.id}` : e.type, from: e.from, to: e.to, text: e.reason ?? e.message, src: "agent" })),
  ].sort((a, b) => b.ts - a.ts).slice(0, 200).map((e) =>
    `<tr><td>${when(e.ts)}</td><td>${esc(e.src)}</td><td>${esc(e.what)}</td><td>${e.from || e.to ? `<span class="chip ${cellClass(e.from)}">${esc(e.from || "new")}</span> → <span class="chip ${cellClass(e.to)}">${esc(e.to || "gone")}</span>` : ""}</td><td>${esc(e.text)}</td></tr>`).join("");
  const collectors = h.collectors.map((c) => `${esc(c.name)}: ${c.ok ? "ok" : `<span class="error">${esc(c.error)}</span>`}`).join(" · ");
  view.innerHTML = `
    <h1>${esc(h.site)} / ${esc(h.host)} <span id="host-state" class="chip ${cellClass(h.state)}" data-state="${esc(h.state || "")}">${esc(h.state || "no data")}</span></h1>
    <table class="kv"><tbody>
      <tr><td>agent</td><td>${h.online === false ? `offline since ${when(h.offline_since)} (${esc(h.offline_cause)})` : h.online ? "online" : "no status yet"}${h.version ? " · version " + esc(h.version) : ""}</td></tr>
      <tr><td>role</td><td>${esc(h.role || "–")}</td></tr>
      <tr><td>last heard</td><td>${when(h.last_heard)}</td></tr>
      <tr><td>collectors</td><td>${collectors || "–"}</td></tr>
      <tr><td>availability</td><td><a href="#/availability?site=${encodeURIComponent(h.site)}&host=${encodeURIComponent(h.host)}">uptime and exposure</a></td></tr>
    </tbody></table>
    ${groups || "<p class=muted>no groups reported</p>"}
    <h2>Commands</h2>
    <form class="inline" id="cf">
      <label>command<select name="verb"><option>promote</option><option>demote</option><option>failback</option></select></label>
      <label>policy<input name="policy" placeholder="any fitting"></label>
      <label>API token<input name="token" type="password" value="${esc(token())}"></label>
      <button>Send signed command</button></form>
    <div id="cmsg">${commandOutcomes.get(hostKey(site, host)) || ""}</div>
    <h2>Timeline</h2>
    <table class="timeline"><thead><tr><th>time</th><th>from</th><th>what</th><th>change</th><th>reason</th></tr></thead><tbody>${timeline}</tbody></table>`;
  document.getElementById("cf").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target).entries());
    if (!confirm(`Send ${f.verb} to ${site}/${host}?`)) return;
    sessionStorage.setItem("hotspare-token", f.token);
    const key = hostKey(site, host);
    const show = (html) => { commandOutcomes.set(key, html); document.getElementById("cmsg").innerHTML = html; };
    show(`<p class="muted">${esc(f.verb)} sent, waiting for the agent…</p>`);
    try {
      const path = `/api/hosts/${encodeURIComponent(site)}/${encodeURIComponent(host)}/commands`;
      show(commandOutcome(await api(path, { method: "POST", body: JSON.stringify({ verb: f.verb, policy: f.policy }), headers: { "Content-Type": "application/json" } })));
    } catch (err) { show(`<p class="error">${esc(f.verb)}: ${esc(err.message)}</p>`); }
  });
  return {
    name: "host",
    onHosts(summaries) { if (summaries.some((s) => s.site === site && s.host === host)) scheduleRender(); },
  };
}

// the last command's outcome per host, kept across the live re-renders of the host page
const commandOutcomes = new Map();
function commandOutcome(o) {
  const c = o.command;
  const head = `<p data-decision="${esc(c.decision)}">${esc(o.verb)}: <b>${esc(c.decision)}</b> (${esc(c.reason === "accepted" ? c.message : c.reason + ": " + c.message)})</p>`;
  const steps = o.promotion.map((e) => `<li data-decision="${esc(e.decision)}">policy ${esc(e.id)}: <b>${esc(e.decision)}</b> ${esc(e.message || e.reason || "")}</li>`).join("");
  return head + (steps ? `<ul>${steps}</ul>` : "") + (o.error ? `<p class="error">${esc(o.error)}</p>` : "");
}

// --- availability -------------------------------------------------------------------------
async function availabilityView(q) {
  const window = q.get("window") || "30d";
  const windows = ["1h", "24h", "7d", "30d", "month"].map((w) => `<option ${w === window ? "selected" : ""}>${w}</option>`).join("");
  const head = `<form class="filters" id="avf"><label>site <input name="site" value="${esc(q.get("site") || "")}"></label>
    <label>host <input name="host" value="${esc(q.get("host") || "")}"></label>
    <label>window <select name="window">${windows}</select></label>
    <label>target % <input name="target" size="6" value="${esc(q.get("target") || "")}"></label><button>Show</button></form>`;
  const qs = new URLSearchParams({ window });
  for (const k of ["site", "host", "target", "offset"]) if (q.get(k)) qs.set(k, q.get(k));
  const a = await api("/api/availability?" + qs);
  let body;
  if (q.get("host")) {
    const rows = [["host", a], ...Object.entries(a.groups)];
    body = `<h1>Availability of ${esc(a.site)} / ${esc(a.host)}</h1>
      <p class="muted">${when(a.start)} – ${when(a.end)} · target ${a.target_pct} % · down = failed or offline, exposure = degraded · maintenance excluded</p>
      ${chart(rows, a.start, a.end)}${figures(rows)}`;
  } else {
    body = `<h1>Availability</h1><p class="muted">${when(a.start)} – ${when(a.end)} · target ${a.target_pct} %</p>
      <div class="pager">${pager(a)}</div>
      ${figures(a.hosts.map((h) => [h.site + "/" + h.host, h]), true)}`;
  }
  view.innerHTML = head + body;
  document.getElementById("avf").addEventListener("submit", (e) => {
    e.preventDefault();
    const nq = new URLSearchParams();
    for (const [k, v] of new FormData(e.target).entries()) if (v) nq.set(k, v);
    setHash("/availability", nq);
  });
  for (const b of view.querySelectorAll("[data-offset]")) b.addEventListener("click", () => {
    q.set("offset", b.dataset.offset); setHash("/availability", q);
  });
  return { name: "availability" };
}
function figures(rows, links = false) {
  const tr = rows.map(([name, r]) => {
    const label = links ? `<a href="#/availability?site=${encodeURIComponent(r.site)}&host=${encodeURIComponent(r.host)}">${esc(name)}</a>` : esc(name);
    const left = r.budget_left_minutes;
    return `<tr><td>${label}</td><td>${num(r.uptime_pct)} %</td><td>${num(r.outage_minutes, 1)}</td><td>${r.outages}</td>
      <td>${num(r.exposure_minutes, 1)}</td><td>${num(r.exposure_pct, 2)} %</td><td>${num(r.budget_minutes, 1)}</td>
      <td class="${left < 0 ? "error" : ""}">${num(left, 1)}</td><td>${num(r.maintenance_s / 60, 1)}</td><td>${num(r.no_data_s / 60, 1)}</td></tr>`;
  }).join("");
  return `<table class="figures"><thead><tr><th></th><th>uptime</th><th>outage min</th><th>outages</th><th>exposure min</th>
    <th>exposure</th><th>budget min</th><th>budget left min</th><th>maintenance min</th><th>no data min</th></tr></thead><tbody>${tr}</tbody></table>`;
}
function chart(rows, start, end) {
  // one bar per host/group: coloured by state over the window, maintenance hatched
  const W = 900, L = 160, H = 22, span = end - start || 1;
  const colour = { redundant: "#2e7d32", degraded: "#d32f2f", failed: "#6a1b4d", unknown: "#9e9e9e", offline: "#37474f" };
  let y = 4, out = "";
  for (const [name, r] of rows) {
    out += `<text x="4" y="${y + 15}">${esc(name.length > 24 ? name.slice(0, 23) + "…" : name)}</text>`;
    for (const s of r.segments) {
      const x = L + ((s.start - start) / span) * (W - L - 4), w = Math.max(0.5, ((s.end - s.start) / span) * (W - L - 4));
      const fill = s.state ? colour[s.state] || "#bdbdbd" : "#eeeeee";
      out += `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${H - 6}" fill="${fill}"><title>${esc(s.state || "no data")} ${when(s.start)} – ${when(s.end)}${s.maintenance ? " (maintenance)" : ""}</title></rect>`;
      if (s.maintenance) out += `<rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${H - 6}" fill="url(#maint)"/>`;
    }
    y += H;
  }
  out += `<text x="${L}" y="${y + 12}">${when(start)}</text><text x="${W - 140}" y="${y + 12}">${when(end)}</text>`;
  return `<svg class="chart" id="chart" width="${W}" height="${y + 18}" viewBox="0 0 ${W} ${y + 18}">
    <defs><pattern id="maint" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
    <rect width="3" height="6" fill="#90caf9" opacity="0.8"/></pattern></defs>${out}</svg>`;
}

// --- maintenance --------------------------------------------------------------------------
async function maintenanceView() {
  const data = await api("/api/maintenance?all=1");
  const rows = data.maintenance.map((m) => `<tr><td>${m.id}</td><td>${esc(m.site || "*")}</td><td>${esc(m.host || "*")}</td>
    <td>${esc(m.group || "*")}</td><td>${when(m.start)}</td><td>${when(m.end)}</td><td>${esc(m.reason)}</td><td>${esc(m.source)}</td>
    <td>${m.source === "api" ? `<button data-delete="${m.id}">delete</button>` : ""}</td></tr>`).join("");
  view.innerHTML = `<h1>Maintenance windows</h1>
    <table><thead><tr><th>id</th><th>site</th><th>host</th><th>group</th><th>start</th><th>end</th><th>reason</th><th>source</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="9" class="muted">none</td></tr>`}</tbody></table>
    <h2>Declare a window</h2>
    <form class="inline" id="mf">
      <label>site<input name="site"></label><label>host<input name="host"></label><label>group<input name="group"></label>
      <label>start (UTC)<input name="start" type="datetime-local" required></label><label>end (UTC)<input name="end" type="datetime-local" required></label>
      <label>reason<input name="reason"></label><label>API token<input name="token" type="password" value="${esc(token())}"></label>
      <button>Add</button></form><p id="mmsg"></p>`;
  document.getElementById("mf").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target).entries());
    sessionStorage.setItem("hotspare-token", f.token);
    const body = { site: f.site, host: f.host, group: f.group, reason: f.reason, start: f.start + ":00Z", end: f.end + ":00Z" };
    try {
      await api("/api/maintenance", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      render();
    } catch (err) { document.getElementById("mmsg").innerHTML = `<span class="error">${esc(err.message)}</span>`; }
  });
  for (const b of view.querySelectorAll("[data-delete]")) b.addEventListener("click", async () => {
    try { await api(`/api/maintenance/${b.dataset.delete}`, { method: "DELETE" }); render(); }
    catch (err) { document.getElementById("mmsg").innerHTML = `<span class="error">${esc(err.message)}</span>`; }
  });
  return { name: "maintenance" };
}

// --- alerts and silences -----------------------------------------------------------------
const SEV_CLASS = { critical: "st-failed", warning: "st-degraded", info: "st-unknown" };
function matchersText(m) {
  const parts = Object.entries(m || {}).map(([k, v]) => `${k}=${[].concat(v).join("|")}`);
  return parts.length ? parts.join(", ") : "everything";
}
function alertsHtml(alerts) {
  const rows = alerts.map((a) => {
    const l = a.labels;
    const held = a.silencedBy.length ? `silenced (${a.silencedBy.map(esc).join(", ")})` : a.hostOffline ? "held: host offline" : "";
    return `<tr data-alert="${esc(a.key)}"><td><span class="chip ${SEV_CLASS[l.severity] || ""}">${esc(l.severity)}</span></td>
      <td><a href="#/host/${encodeURIComponent(l.site)}/${encodeURIComponent(l.host)}">${esc(l.host)}</a> <span class="muted">${esc(l.site)}</span></td>
      <td>${esc(l.group || "host")}</td><td>${esc(l.kind)}</td><td>${esc(l.state)}${a.flapping ? " (flapping)" : ""}</td>
      <td>${esc(a.detail)}</td><td>${esc(a.startsAt)}</td><td class="muted">${held}</td></tr>`;
  }).join("");
  return `<table id="alerts"><thead><tr><th>severity</th><th>host</th><th>group</th><th>kind</th><th>state</th><th>detail</th><th>since</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="8" class="muted">no active alerts</td></tr>`}</tbody></table>`;
}
function silencesHtml(silences) {
  const rows = silences.map((s) => `<tr data-silence="${esc(s.id)}"><td>${esc(s.kind)}</td><td>${esc(matchersText(s.matchers))}</td>
    <td>${esc(s.startsAt)}</td><td>${esc(s.endsAt)}</td><td>${s.active ? "active" : "pending"}</td><td>${esc(s.createdBy)}</td><td>${esc(s.comment)}</td>
    <td>${s.kind === "silence" ? `<button data-expire="${esc(s.id)}">expire</button>` : `<a href="#/maintenance">maintenance</a>`}</td></tr>`).join("");
  return `<table id="silences"><thead><tr><th>kind</th><th>matches</th><th>start</th><th>end</th><th></th><th>by</th><th>comment</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="8" class="muted">none</td></tr>`}</tbody></table>`;
}
async function alertsView() {
  const [a, s] = await Promise.all([api("/api/alerts?sent=20"), api("/api/silences")]);
  if (!a.enabled) {
    view.innerHTML = `<h1>Alerts</h1><p class="muted">Alert routing is off: the configuration has no [alerts] section (docs/alerts.md).</p>`;
    return { name: "alerts" };
  }
  const sent = a.sent.map((n) => `<tr><td>${when(n.ts)}</td><td>${esc(n.host)}</td><td>${esc(n.id)}</td><td>${esc(n.status)}</td><td>${esc(n.receiver)}</td><td>${esc(n.detail)}</td></tr>`).join("");
  const receivers = Object.entries(a.stats.receivers || {}).map(([name, r]) => `<tr><td>${esc(name)}</td><td>${r.sent}</td><td>${r.retries}</td><td>${r.failed}</td><td>${r.dropped}</td><td>${r.queued}</td><td class="error">${esc(r.last_error || "")}</td></tr>`).join("");
  view.innerHTML = `<h1>Alerts</h1>
    <div id="alerts-live">${alertsHtml(a.alerts)}</div>
    <h2>Silences and maintenance windows</h2>
    <div id="silences-live">${silencesHtml(s.silences)}</div>
    <h2>Add a silence</h2>
    <form class="inline" id="sf">
      <label>site<input name="site" placeholder="glob"></label><label>host<input name="host" placeholder="glob"></label>
      <label>group<input name="group" placeholder="glob"></label><label>kind<input name="kind" placeholder="glob"></label>
      <label>severity<input name="severity" placeholder="glob"></label>
      <label>hours<input name="hours" type="number" min="0.1" step="0.1" value="2" required></label>
      <label>comment<input name="comment"></label><label>API token<input name="token" type="password" value="${esc(token())}"></label>
      <button>Silence</button></form><p id="smsg"></p>
    <h2>Receivers</h2>
    <table><thead><tr><th>receiver</th><th>sent</th><th>retries</th><th>failed</th><th>dropped</th><th>queued</th><th>last error</th></tr></thead><tbody>${receivers}</tbody></table>
    <h2>Sent recently</h2>
    <table class="timeline"><thead><tr><th>when</th><th>host</th><th>alert</th><th>status</th><th>receiver</th><th>detail</th></tr></thead>
    <tbody>${sent || `<tr><td colspan="6" class="muted">nothing yet</td></tr>`}</tbody></table>`;
  const msg = (text) => { document.getElementById("smsg").innerHTML = `<span class="error">${esc(text)}</span>`; };
  document.getElementById("sf").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target).entries());
    sessionStorage.setItem("hotspare-token", f.token);
    const matchers = {};
    for (const k of ["site", "host", "group", "kind", "severity"]) if (f[k]) matchers[k] = f[k];
    const body = { matchers, end: Date.now() / 1000 + Number(f.hours) * 3600, comment: f.comment, created_by: "dashboard" };
    try {
      await api("/api/silences", { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
      render();
    } catch (err) { msg(err.message); }
  });
  const bindExpire = () => {
    for (const b of view.querySelectorAll("[data-expire]")) b.addEventListener("click", async () => {
      try { await api(`/api/silences/${encodeURIComponent(b.dataset.expire)}`, { method: "DELETE" }); render(); }
      catch (err) { msg(err.message); }
    });
  };
  bindExpire();
  return {
    name: "alerts",
    onAlerts(data) {
      document.getElementById("alerts-live").innerHTML = alertsHtml(data.alerts);
      document.getElementById("silences-live").innerHTML = silencesHtml(data.silences);
      bindExpire();
    },
  };
}

// --- routing and live updates -------------------------------------------------------------
let renderTimer = null;
function scheduleRender() {
  if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = null; render(); }, 300);
}
async function render() {
  const { path, q } = params();
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", path.startsWith("/" + (a.dataset.nav === "fleet" ? "" : a.dataset.nav)) && (a.dataset.nav !== "fleet" || path === "/"));
  try {
    const m = path.match(/^\/host\/([^/]+)\/([^/]+)$/);
    if (m) current = await hostView(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    else if (path === "/availability") current = await availabilityView(q);
    else if (path === "/maintenance") current = await maintenanceView();
    else if (path === "/alerts") current = await alertsView();
    else current = await fleetView(q);
  } catch (err) {
    view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    current = null;
  }
}
// the service's own MQTT connection: while it is down, nothing on the page moves
function showBroker(b) {
  const el = document.getElementById("broker");
  el.hidden = !b || b.connected;
  if (el.hidden) return;
  const since = b.since ? ` since ${when(b.since)}` : "";
  const why = b.last_error ? ` (${b.last_error.why})` : "";
  el.textContent = `Not connected to the MQTT broker ${b.url}${since}${why}. What is shown is as of then;`
    + " no host is marked offline for silence meanwhile.";
}
function connect() {
  const live = document.getElementById("live");
  const es = new EventSource("/api/stream");
  es.addEventListener("hello", (e) => { live.className = "live on"; showBroker(JSON.parse(e.data).broker); });
  es.addEventListener("broker", (e) => showBroker(JSON.parse(e.data)));
  es.addEventListener("hosts", (e) => { if (current && current.onHosts) current.onHosts(JSON.parse(e.data)); });
  es.addEventListener("summary", (e) => { if (current && current.onSummary) current.onSummary(JSON.parse(e.data)); });
  es.addEventListener("maintenance", () => { if (current && current.name === "maintenance") scheduleRender(); });
  es.addEventListener("alerts", (e) => { if (current && current.onAlerts) current.onAlerts(JSON.parse(e.data)); });
  es.onerror = () => { live.className = "live off"; };
}
window.addEventListener("hashchange", render);
render();
connect();
