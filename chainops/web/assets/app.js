// chainops explorer: draws every view from the JSON endpoints and polls
// /api/chain to update in place. No markup from data: text nodes only.
"use strict";

const POLL_MS = 2000;
const FIRST_CARDS = 60;
let drawCount = 0;
const SQL_WORDS = new Set(("select from where insert into update delete create " +
  "alter drop table index unique primary key foreign references not null default " +
  "constraint add column view function returns return language begin end as on " +
  "and or in is set values trigger for each row execute procedure if exists " +
  "concurrently grant revoke to with check sequence type schema extension " +
  "materialized replace cascade restrict using join left right inner outer " +
  "group by order having limit offset case when then else int integer bigint " +
  "text varchar boolean timestamptz timestamp serial jsonb numeric").split(" "));

let chain = null;
let current = null; // the open view: { name, draw(doc) }

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") el.setAttribute("class", v); else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) {
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }
  return el;
}

async function getJSON(url, preloaded = false) {
  // The first /api/chain is the one index.html preloads while this script loads.
  const reply = await fetch(url, preloaded ? {} : { cache: "no-store" });
  const doc = await reply.json();
  if (!reply.ok) throw new Error(doc.error || reply.statusText);
  return doc;
}

function short(hash) { return hash ? hash.slice(0, 12) : "-"; }

function hashView(hash) {
  if (!hash) return h("span", { class: "hash" }, "-");
  const button = h("button", {
    class: "copy", type: "button", title: "copy the full hash",
    onclick: async () => {
      try { await navigator.clipboard.writeText(hash); button.textContent = "copied"; }
      catch (e) { button.textContent = "select"; }
    },
  }, "copy");
  return h("span", {}, h("span", { class: "hash", title: hash }, short(hash)), button);
}

function relative(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - Date.parse(iso)) / 1000;
  const steps = [[60, "second"], [60, "minute"], [24, "hour"], [30, "day"],
    [12, "month"], [Infinity, "year"]];
  let value = Math.max(0, seconds);
  for (const [size, unit] of steps) {
    if (value < size) {
      const n = Math.floor(value);
      return n === 0 && unit === "second" ? "just now" : `${n} ${unit}${n === 1 ? "" : "s"} ago`;
    }
    value /= size;
  }
  return iso;
}

function when(iso) {
  return h("time", { datetime: iso, title: iso }, relative(iso));
}

// --- header and banner -----------------------------------------------------------

function drawHeader(doc) {
  const meta = document.getElementById("meta");
  const lock = doc.lock;
  let lockText = "no chain.lock";
  let lockClass = "lock";
  if (lock && lock.present) {
    lockText = lock.ok ? `chain.lock ok (${lock.files} files)` : "chain.lock differs";
    lockClass = lock.ok ? "lock ok" : "lock bad";
  }
  meta.replaceChildren(
    h("span", { id: "database" }, doc.database), " · ",
    `${doc.height} blocks · head `, hashView(doc.head), " · ",
    h("span", { class: lockClass, id: "lock", title: lock ? lock.problems.join("\n") : "" }, lockText),
    " · read-only, updates live");
  const banner = document.getElementById("banner");
  if (doc.error) {
    banner.replaceChildren(h("div", { class: "banner" }, `✗ ${doc.error}`));
  } else if (doc.problems.length) {
    const n = doc.problems.length;
    banner.replaceChildren(h("div", { class: "banner" },
      `✗ Verification failed: ${n} problem${n === 1 ? "" : "s"}; nothing is applied until they are fixed`,
      h("ul", {}, doc.problems.map((p) => h("li", {}, p.message)))));
  } else {
    banner.replaceChildren();
  }
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("current", a.dataset.view === (current && current.name));
  }
}

// --- the chain view ---------------------------------------------------------------

const FILTERS = ["q", "state", "author", "since", "until", "order"];

function readFilters() {
  const params = new URLSearchParams(location.search);
  const out = {};
  for (const k of FILTERS) out[k] = params.get(k) || "";
  return out;
}

function writeFilters(filters) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (filters[k]) params.set(k, filters[k]);
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? `?${query}` : ""));
}

function matches(item, f) {
  const q = f.q.toLowerCase();
  if (q) {
    const hay = [item.path, String(item.number), item.block_hash || "",
      item.applied_by || "", item.error || "", item.reason || ""].join(" ").toLowerCase();
    if (!hay.includes(q)) return false;
  }
  if (f.state && item.state !== f.state && !(f.state === "drift" && item.mode === "drift")) {
    return false;
  }
  if (f.author && item.applied_by !== f.author) return false;
  const day = (item.applied_at || "").slice(0, 10);
  if (f.since && (!day || day < f.since)) return false;
  if (f.until && (!day || day > f.until)) return false;
  return true;
}

function blockCard(b) {
  const drift = b.mode === "drift";
  const cls = `block ${b.state}${drift ? " drift" : ""}`;
  return h("div", { class: cls, id: `block-${b.height}`, "data-height": b.height },
    h("span", { class: "state" }, drift ? `${b.state} (drift)` : b.state),
    h("div", { class: "title" },
      h("a", { href: `/block/${b.height}` }, `#${b.number} ${b.path}`)),
    h("div", { class: "detail" }, `block ${b.height} · hash `, hashView(b.block_hash),
      " · links to ", b.height === 1 ? "genesis" : h("a", { href: `/block/${b.height - 1}` },
        `block ${b.height - 1}`),
      drift ? ` · ${b.differences} recorded difference${b.differences === 1 ? "" : "s"}` : ""),
    h("div", { class: "detail" }, "applied ", when(b.applied_at),
      ` by ${b.applied_by} in ${b.duration_ms} ms (${b.mode})`));
}

function pendingCard(p) {
  return h("div", { class: `block ${p.state}`, "data-path": p.path },
    h("span", { class: "state" }, p.state),
    h("div", { class: "title" }, `#${p.number} ${p.path}`),
    p.error ? h("div", { class: "error" }, p.error) : null,
    p.statements_done ? h("div", { class: "detail progress" },
      `statements 1-${p.statements_done} of ${p.statements_total ?? "?"} are in place`) : null,
    h("div", { class: "reason" }, `Why it waits: ${p.reason || ""}`),
    (p.lint || []).map((f) => h("div", { class: `lint ${f.severity}` },
      `lint ${f.severity} ${f.rule} at line ${f.line}:${f.column}: ${f.message}; fix: ${f.fix}`)));
}

function attemptRow(a) {
  const where = a.line ? `line ${a.line}:${a.column || 1}` : "";
  return h("tr", { class: "attempt" },
    h("td", {}, when(a.started_at)), h("td", {}, `#${a.number} ${a.path}`),
    h("td", {}, where), h("td", { class: "error" }, a.error || ""),
    h("td", {}, a.detail || ""));
}

function chainView() {
  const f = readFilters();
  const toolbar = h("div", { class: "toolbar" });
  const results = h("div", { id: "results" });
  const search = h("input", { type: "search", id: "search", placeholder: "search file, hash, author, error",
    value: f.q, "aria-label": "search" });
  const state = h("select", { id: "state", "aria-label": "state" },
    ["", "applied", "pending", "failed", "running", "changed", "missing", "drift"].map(
      (s) => h("option", { value: s, selected: s === f.state }, s || "any state")));
  const author = h("select", { id: "author", "aria-label": "author" });
  const since = h("input", { type: "date", id: "since", value: f.since, "aria-label": "from" });
  const until = h("input", { type: "date", id: "until", value: f.until, "aria-label": "to" });
  const order = h("input", { type: "checkbox", id: "order", checked: f.order === "new" });
  const update = () => {
    writeFilters({ q: search.value, state: state.value, author: author.value,
      since: since.value, until: until.value, order: order.checked ? "new" : "" });
    drawResults(chain);
  };
  for (const el of [state, author, since, until, order]) el.addEventListener("change", update);
  search.addEventListener("input", update);
  toolbar.append(search, state, author, h("label", {}, "from ", since),
    h("label", {}, "to ", until), h("label", {}, order, " newest first"),
    h("a", { href: "#head", id: "jump" }, "jump to head"));

  function drawResults(doc) {
    const authors = [...new Set(doc.blocks.map((b) => b.applied_by))].sort();
    const chosen = readFilters().author;
    author.replaceChildren(h("option", { value: "" }, "any author"),
      authors.map((a) => h("option", { value: a, selected: a === chosen }, a)));
    const filters = readFilters();
    const blocks = doc.blocks.filter((b) => matches(b, filters));
    const pending = doc.pending.filter((p) => matches(p, filters));
    const newest = filters.order === "new";
    const parts = [h("p", { class: "count", id: "count" },
      `${blocks.length} of ${doc.blocks.length} blocks, ${pending.length} of ${doc.pending.length} pending shown`)];
    if (!doc.blocks.length && !doc.error) {
      parts.push(h("p", { class: "empty" }, "No blocks yet: nothing has been applied."));
    }
    const pendingPart = pending.length
      ? [h("h2", {}, "After the head"), pending.map(pendingCard)] : [];
    const head = h("a", { id: "head" });
    const ordered = newest ? blocks.slice().reverse() : blocks;
    const arrow = newest ? "↓" : "↑";
    const list = h("div", { id: "blocks" });
    const cards = (some, first) => some.map((b, i) =>
      (first && i === 0 ? blockCard(b) : [h("div", { class: "link" }, arrow), blockCard(b)]));
    // A long chain's first draw paints the first cards at once and the rest frame
    // by frame; a redraw draws all at once, so the scroll position stays valid.
    const now = drawCount === 0 ? FIRST_CARDS : ordered.length;
    list.append(...cards(ordered.slice(0, now), true).flat());
    const rest = ordered.slice(now);
    if (newest) {
      parts.push(head, pendingPart, h("h2", {}, "Blocks, newest first"), list);
    } else {
      parts.push(h("h2", {}, "Blocks"), list, head, pendingPart);
    }
    const failed = doc.attempts.filter((a) => matches({ ...a, state: "failed" }, filters));
    parts.push(h("h2", {}, `Failed attempts (${failed.length})`));
    parts.push(failed.length
      ? h("table", { id: "attempts" }, h("tr", {}, ["when", "migration", "where", "error", "detail"].map((t) => h("th", {}, t))),
        failed.map(attemptRow))
      : h("p", { class: "empty" }, "None recorded."));
    parts.push(h("h2", {}, `History (${doc.history.length} rows)`));
    parts.push(h("table", { id: "history" },
      h("tr", {}, ["when", "migration", "outcome", "ms", "by"].map((t) => h("th", {}, t))),
      doc.history.slice().reverse().slice(0, 200).map((r) => h("tr", {},
        h("td", {}, when(r.started_at)), h("td", {}, `#${r.number} ${r.path}`),
        h("td", {}, r.outcome), h("td", { class: "num" }, r.duration_ms ?? ""),
        h("td", {}, r.applied_by)))));
    const y = window.scrollY;
    results.replaceChildren(...parts.flat(3));
    window.scrollTo(0, y);
    const drawn = ++drawCount;
    (function more() {
      if (!rest.length || drawn !== drawCount) return;
      list.append(...cards(rest.splice(0, 250), false).flat());
      requestAnimationFrame(more);
    })();
  }

  document.getElementById("main").replaceChildren(toolbar, results);
  return { name: "chain", draw: drawResults };
}

// --- the block view ---------------------------------------------------------------

function highlight(sql, errorLine) {
  const pre = h("pre", { class: "sql", id: "sql" });
  const token = /(--[^\n]*)|('(?:[^']|'')*')|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\n)|([^A-Za-z0-9_'\n-]+|-)/g;
  let line = h("span", { class: errorLine === 1 ? "line-error" : "" });
  let n = 1;
  pre.append(line);
  for (const m of sql.matchAll(token)) {
    if (m[5]) {
      n += 1;
      line.append("\n");
      line = h("span", { class: errorLine === n ? "line-error" : "" });
      pre.append(line);
    } else if (m[1]) line.append(h("span", { class: "com" }, m[1]));
    else if (m[2]) line.append(h("span", { class: "str" }, m[2]));
    else if (m[3]) line.append(h("span", { class: "num" }, m[3]));
    else if (m[4] && SQL_WORDS.has(m[4].toLowerCase())) line.append(h("span", { class: "kw" }, m[4]));
    else line.append(m[0]);
  }
  return pre;
}

function diffKind(line) {
  if (/ dropped$/.test(line)) return "dropped";
  if (/ added(: .*)?$/.test(line) && !/ changed /.test(line)) return "added";
  return "changed";
}

function diffLine(line, i) {
  // A unified diff: two header lines, then hunks of +, - and context lines.
  if (i < 2 || line.startsWith("@@")) return h("li", { class: "context" }, line);
  const kind = { "+": "added", "-": "dropped" }[line[0]] || "context";
  return h("li", { class: kind }, line.slice(1));
}

function diffList(lines, id) {
  if (!lines || !lines.length) return h("p", { class: "empty", id }, "No schema changes.");
  return h("ul", { class: "diff", id }, lines.map((l) => h("li", { class: diffKind(l) }, l)));
}

function blockView(height) {
  const main = document.getElementById("main");
  async function draw() {
    let doc;
    try { doc = await getJSON(`/api/block/${height}`); }
    catch (err) { main.replaceChildren(h("p", { class: "error" }, String(err.message))); return; }
    const b = doc.block;
    const rows = Object.entries(b).map(([k, v]) => h("tr", {}, h("th", {}, k),
      h("td", {}, /_hash$|^sealed_schema$/.test(k) && v ? hashView(v) : (v ?? "—"))));
    const failed = doc.attempts.find((a) => a.outcome === "failed" && a.line);
    const parts = [
      h("div", { class: "neighbours" },
        doc.previous ? h("a", { href: `/block/${doc.previous.height}`, id: "previous" }, `← block ${doc.previous.height}: ${doc.previous.path}`) : h("span", {}, "← genesis"),
        doc.next ? h("a", { href: `/block/${doc.next.height}`, id: "next" }, `block ${doc.next.height}: ${doc.next.path} →`) : h("span", {}, "the head")),
      h("h2", {}, `Block ${b.height}: #${b.number} ${b.path}`),
      h("table", { class: "fields" }, rows),
    ];
    if (b.mode === "drift") {
      parts.push(h("h2", {}, "Recorded differences"), diffList(doc.drift, "drift"));
    }
    parts.push(h("h2", {}, "Schema change of its run"),
      h("p", { class: "note" }, doc.schema_change.note),
      diffList(doc.schema_change.changes, "schema-change"));
    parts.push(h("h2", {}, `Attempts (${doc.attempts.length})`),
      h("table", { id: "block-attempts" }, h("tr", {}, ["when", "outcome", "ms", "where", "error", "detail"].map((t) => h("th", {}, t))),
        doc.attempts.map((a) => h("tr", {}, h("td", {}, when(a.started_at)), h("td", {}, a.outcome),
          h("td", { class: "num" }, a.duration_ms ?? ""), h("td", {}, a.line ? `line ${a.line}:${a.column || 1}` : ""),
          h("td", { class: "error" }, a.error || ""), h("td", {}, a.detail || "")))));
    parts.push(h("h2", {}, "SQL"), h("p", { class: `note file-${doc.file.state}`, id: "file-note" }, doc.file.note));
    if (doc.file.diff) {
      parts.push(h("h3", {}, "Applied → on disk"), h("ul", { class: "diff unified", id: "file-diff" },
        doc.file.diff.map(diffLine)));
    }
    if (doc.file.sql !== null) parts.push(highlight(doc.file.sql, failed ? failed.line : 0));
    const y = window.scrollY;
    main.replaceChildren(...parts);
    window.scrollTo(0, y);
  }
  return { name: "block", draw };
}

// --- the schema view --------------------------------------------------------------

function schemaView() {
  const main = document.getElementById("main");
  async function draw(doc) {
    const params = new URLSearchParams(location.search);
    const at = params.get("at") || "";
    const from = params.get("from") || "";
    const query = new URLSearchParams();
    if (at) query.set("at", at);
    if (from) query.set("from", from);
    let schema;
    try { schema = await getJSON(`/api/schema?${query}`); }
    catch (err) { main.replaceChildren(h("p", { class: "error" }, String(err.message))); return; }
    const heights = Array.from({ length: schema.height + 1 }, (_, i) => i);
    const label = (i) => (i === 0 ? "0: empty" : `${i}: ${(doc.blocks[i - 1] || {}).path || ""}`);
    const atSel = h("select", { id: "at", "aria-label": "schema at block" },
      heights.map((i) => h("option", { value: i, selected: i === schema.at }, label(i))));
    const fromSel = h("select", { id: "from", "aria-label": "compare with block" },
      h("option", { value: "" }, "no comparison"),
      heights.map((i) => h("option", { value: i, selected: i === schema.since }, label(i))));
    const go = () => {
      const p = new URLSearchParams();
      p.set("at", atSel.value);
      if (fromSel.value) p.set("from", fromSel.value);
      history.replaceState(null, "", `/schema?${p}`);
      draw(chain);
    };
    atSel.addEventListener("change", go);
    fromSel.addEventListener("change", go);
    const parts = [h("div", { class: "toolbar" }, h("label", {}, "schema at block ", atSel),
      h("label", {}, "changes since block ", fromSel))];
    if (schema.since !== null) {
      parts.push(h("h2", {}, `Changes from block ${schema.since} to block ${schema.at}`),
        diffList(schema.changes, "schema-diff"));
    }
    parts.push(h("h2", {}, `Schema at block ${schema.at}`),
      h("p", { class: "note" }, schema.snapshot_height
        ? `as stored with block ${schema.snapshot_height}, the newest snapshot at or below it`
        : "no snapshot at or below this block: the empty schema"));
    const objects = h("div", { class: "objects", id: "objects" });
    const columns = new Map();
    for (const [name, attrs] of Object.entries(schema.objects.column || {})) {
      const list = columns.get(attrs.table) || [];
      list.push(`${name.slice(attrs.table.length + 1)} ${attrs.type || ""}`.trim());
      columns.set(attrs.table, list);
    }
    for (const kind of schema.kinds) {
      const named = schema.objects[kind] || {};
      const names = Object.keys(named).sort();
      if (!names.length || kind === "column") continue;
      objects.append(h("h3", {}, `${kind} (${names.length})`),
        h("ul", {}, names.map((name) => h("li", {}, name,
          columns.has(name) ? ` (${columns.get(name).join(", ")})` : ""))));
    }
    parts.push(objects);
    const y = window.scrollY;
    main.replaceChildren(...parts);
    window.scrollTo(0, y);
  }
  return { name: "schema", draw };
}

// --- analytics --------------------------------------------------------------------

function barChart(id, values, labels, classes, title) {
  const width = 900, height = 220, pad = 30;
  const max = Math.max(1, ...values);
  const step = Math.min(60, (width - pad * 2) / Math.max(1, values.length));
  const bars = values.map((v, i) => {
    const bh = (v / max) * (height - pad * 2);
    return svg("rect", { class: `bar ${classes[i] || ""}`, x: pad + i * step,
      y: height - pad - bh, width: Math.max(1, step - 1), height: bh },
    svg("title", {}, `${labels[i]}: ${v}`));
  });
  return svg("svg", { class: "chart", id, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title },
  svg("line", { class: "axis", x1: pad, y1: height - pad, x2: width - pad, y2: height - pad }),
  svg("text", { x: 2, y: pad - 8 }, `${max}`), svg("text", { x: 2, y: height - pad }, "0"),
  svg("text", { x: pad, y: height - 8 }, labels[0] || ""),
  svg("text", { x: width - pad, y: height - 8, "text-anchor": "end" },
    labels.length > 1 ? labels[labels.length - 1] : ""),
  bars);
}

function analyticsView() {
  const main = document.getElementById("main");
  function draw(doc) {
    const n = Number(new URLSearchParams(location.search).get("n")) || 10;
    const blocks = doc.blocks.filter((b) => b.mode !== "drift");
    const slowest = blocks.slice().sort((a, b) => b.duration_ms - a.duration_ms).slice(0, n);
    const cutoff = slowest.length ? slowest[slowest.length - 1].duration_ms : Infinity;
    const failures = new Map();
    for (const r of doc.history) {
      if (r.outcome !== "failed") continue;
      const day = r.started_at.slice(0, 10);
      failures.set(day, (failures.get(day) || 0) + 1);
    }
    const days = [...failures.keys()].sort();
    const total = blocks.reduce((s, b) => s + b.duration_ms, 0);
    const y = window.scrollY;
    main.replaceChildren(
      h("h2", {}, "Duration per migration over the chain"),
      h("p", { class: "count" }, `${blocks.length} migrations, ${total} ms in all; the slowest ${n} in orange`),
      barChart("durations", blocks.map((b) => b.duration_ms), blocks.map((b) => `block ${b.height} ${b.path}`),
        blocks.map((b) => (b.duration_ms >= cutoff && slowest.includes(b) ? "slow" : "")), "duration per block"),
      h("h2", {}, `Slowest ${n}`),
      h("table", { id: "slowest" }, h("tr", {}, ["block", "migration", "ms", "applied"].map((t) => h("th", {}, t))),
        slowest.map((b) => h("tr", {}, h("td", { class: "num" }, b.height),
          h("td", {}, h("a", { href: `/block/${b.height}` }, `#${b.number} ${b.path}`)),
          h("td", { class: "num" }, b.duration_ms), h("td", {}, when(b.applied_at))))),
      h("h2", {}, "Failures over time"),
      days.length ? barChart("failures", days.map((d) => failures.get(d)), days, days.map(() => "fail"), "failed attempts per day")
        : h("p", { class: "empty", id: "failures" }, "No failed attempts recorded."),
      h("p", { class: "note" }, "Time waited for the lock is not recorded in the ledger."));
    window.scrollTo(0, y);
  }
  return { name: "analytics", draw };
}

// --- routing and live updates ---------------------------------------------------------

async function poll() {
  let doc;
  // Later polls name the version they have: an unchanged chain answers in a line.
  const url = chain ? `/api/chain?unchanged=${encodeURIComponent(chain.version)}` : "/api/chain";
  try { doc = await getJSON(url, !chain); } catch (err) { return; }
  if (doc.unchanged) return;
  const changed = !chain || doc.version !== chain.version;
  chain = doc;
  document.body.dataset.version = doc.version;
  drawHeader(doc);
  if (changed && current) await current.draw(doc);
  if (!document.body.dataset.ready) {
    // The first frame after the first draw: what bench/explorer.py times.
    requestAnimationFrame(() => setTimeout(() => performance.mark("chainops-painted")));
  }
  document.body.dataset.ready = "true";
}

function start() {
  const path = location.pathname;
  const block = path.match(/^\/block\/(\d+)$/);
  if (block) current = blockView(Number(block[1]));
  else if (path === "/schema") current = schemaView();
  else if (path === "/analytics") current = analyticsView();
  else current = chainView();
  poll();
  setInterval(() => { if (!document.hidden) poll(); }, POLL_MS);
  setInterval(() => {
    for (const t of document.querySelectorAll("time")) t.textContent = relative(t.getAttribute("datetime"));
  }, 30000);
}

document.addEventListener("DOMContentLoaded", start);
