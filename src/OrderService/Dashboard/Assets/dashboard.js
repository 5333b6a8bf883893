// The TwoPhase dashboard: polls /v1/dashboard (same origin, nothing else) once a second and redraws.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function rows(tbody, items, cells, emptyText) {
  tbody.replaceChildren();
  if (!items.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: "9", class: "empty" }, emptyText));
    tbody.append(tr);
    return;
  }
  for (const item of items) {
    const tr = el("tr");
    for (const [text, cls] of cells(item)) tr.append(el("td", cls ? { class: cls } : {}, String(text)));
    tbody.append(tr);
  }
}

const short = (id) => id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-6) : id;
const ms = (v) => v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toString();
const age = (s) => s < 1 ? Math.round(s * 1000) + " ms" : s < 120 ? s.toFixed(1) + " s" : Math.round(s / 60) + " min";

function drawThroughput(f) {
  const svg = $("throughput-chart");
  svg.replaceChildren();
  const n = f.seconds.length, w = 900 / n, h = 150;
  const max = Math.max(1, ...f.committed.map((c, i) => c + f.aborted[i]));
  for (let i = 0; i < n; i++) {
    const c = f.committed[i], a = f.aborted[i];
    if (!c && !a) continue;
    const hc = (c / max) * h, ha = (a / max) * h;
    svg.append(el("svg:rect", { x: i * w, y: 160 - hc, width: Math.max(w - 0.5, 0.5), height: hc, fill: "var(--ok)" }));
    svg.append(el("svg:rect", { x: i * w, y: 160 - hc - ha, width: Math.max(w - 0.5, 0.5), height: ha, fill: "var(--bad)" }));
  }
  const label = el("svg:text", { x: 4, y: 12, fill: "var(--muted)", "font-size": 11 }, `max ${max}/s`);
  svg.append(label);
}

function drawTimeline(t) {
  const tx = t.transaction, steps = t.steps || {};
  const names = tx.participants;
  const t0 = Date.parse(tx.createdAt);
  const times = [tx.decidedAt, tx.completedAt].filter(Boolean).map(Date.parse);
  for (const s of Object.values(steps)) if (s) times.push(Date.parse(s.at), Date.parse(s.updatedAt));
  const t1 = Math.max(t0 + 1, ...times);
  const width = 600, left = 80, lane = 18, height = (names.length + 1) * lane + 16;
  const x = (ms) => left + ((ms - t0) / (t1 - t0)) * (width - left - 10);
  const svg = el("svg:svg", { class: "timeline", "data-tx": tx.transactionId, viewBox: `0 0 ${width} ${height}`, height });
  const row = (i, name) => {
    const y = i * lane + 12;
    svg.append(el("svg:text", { x: 0, y: y + 4 }, name));
    svg.append(el("svg:line", { class: "lane", x1: left, x2: width - 10, y1: y, y2: y }));
    return y;
  };
  // Coordinator: the prepare phase runs until the decision, then acknowledgements until completed.
  let y = row(0, "coordinator");
  const decided = tx.decidedAt ? Date.parse(tx.decidedAt) : null;
  svg.append(el("svg:rect", { x: x(t0), y: y - 4, width: Math.max(2, (decided ? x(decided) : x(t1)) - x(t0)), height: 8, fill: "var(--warn)" }, ""));
  svg.lastChild.append(el("svg:title", {}, "prepare"));
  if (decided) {
    const color = tx.state === "committed" ? "var(--ok)" : "var(--bad)";
    svg.append(el("svg:circle", { cx: x(decided), cy: y, r: 5, fill: color }));
    svg.lastChild.append(el("svg:title", {}, `decided ${tx.state} at +${decided - t0} ms`));
  }
  if (tx.completedAt) {
    const done = Date.parse(tx.completedAt);
    svg.append(el("svg:rect", { x: x(done) - 4, y: y - 4, width: 8, height: 8, fill: "var(--accent)" }));
    svg.lastChild.append(el("svg:title", {}, `all acknowledged at +${done - t0} ms`));
  }
  names.forEach((name, i) => {
    const yy = row(i + 1, name);
    const s = steps[name];
    if (!s) return;
    const at = Date.parse(s.at), upd = Date.parse(s.updatedAt);
    // Before the decision the coordinator has no votes recorded yet; the participant's ledger row says how it voted.
    const vote = (tx.votes[name] || {}).vote || (s.state === "refused" ? "no" : "yes");
    svg.append(el("svg:line", { x1: x(at), x2: x(Math.max(at, upd)), y1: yy, y2: yy, stroke: "var(--accent)", "stroke-width": 3 }));
    svg.append(el("svg:circle", { cx: x(at), cy: yy, r: 4, fill: vote === "yes" ? "var(--ok)" : "var(--bad)" }));
    svg.lastChild.append(el("svg:title", {}, `voted ${vote} at +${at - t0} ms`));
    if (s.state === "committed" || s.state === "aborted") {
      svg.append(el("svg:rect", { x: x(upd) - 3, y: yy - 3, width: 6, height: 6, fill: s.state === "committed" ? "var(--ok)" : "var(--bad)" }));
      svg.lastChild.append(el("svg:title", {}, `${s.state === "committed" ? "commit" : "abort"} applied at +${upd - t0} ms`));
    }
  });
  svg.append(el("svg:text", { x: width - 10, y: height - 2, "text-anchor": "end" }, `${t1 - t0} ms`));
  return svg;
}

function drawRecent(recent) {
  const box = $("recent");
  box.replaceChildren();
  if (!recent.length) { box.append(el("div", { class: "empty" }, "no transactions yet")); return; }
  for (const t of recent) {
    const tx = t.transaction;
    const item = el("div", { class: "tx", "data-tx": tx.transactionId });
    const head = el("div", { class: "head" });
    head.append(el("span", { class: "id" }, tx.transactionId));
    const line = el("div");
    line.append(el("span", { class: `state ${tx.state}` }, tx.state), " ", el("span", { class: "muted" }, new Date(tx.createdAt).toLocaleTimeString()));
    head.append(line);
    const votes = el("div");
    for (const name of tx.participants) {
      const v = (tx.votes[name] || {}).vote || "pending";
      const chip = el("span", { class: `vote ${v}`, title: (tx.votes[name] || {}).reason || "" }, `${name}: ${v}`);
      votes.append(chip);
    }
    head.append(votes);
    if (tx.reason) head.append(el("div", { class: "muted" }, tx.reason));
    head.append(el("div", { class: "muted" }, `acknowledged: ${tx.acknowledged.join(", ") || "none yet"}`));
    item.append(head, t.steps ? drawTimeline(t) : el("div", { class: "muted" }, "timeline shown for the newest transactions"));
    box.append(item);
  }
}

function render(d) {
  const f = d.figures;
  $("committed-total").textContent = f.committedTotal;
  $("aborted-total").textContent = f.abortedTotal;
  const last = f.committed.slice(-11, -1).reduce((a, b) => a + b, 0) + f.aborted.slice(-11, -1).reduce((a, b) => a + b, 0);
  $("throughput").textContent = (last / 10).toFixed(1);
  $("in-flight").textContent = d.inFlight;
  $("unfinished-count").textContent = d.unfinishedCount;
  const total = f.latency.find((l) => l.series === "total");
  $("p99").textContent = total && total.p99 !== null ? ms(total.p99) + " ms" : "–";
  drawThroughput(f);
  rows($("latency").tBodies[0], f.latency, (l) => [[l.series], [l.count], [ms(l.p50)], [ms(l.p90)], [ms(l.p99)], [ms(l.max)]], "nothing measured yet");
  const reasons = $("abort-reasons");
  reasons.replaceChildren();
  const entries = Object.entries(f.abortReasons);
  if (!entries.length) reasons.append(el("li", { class: "empty" }, "no aborts"));
  for (const [reason, count] of entries) reasons.append(el("li", {}, `${reason}: ${count}`));
  rows($("unfinished").tBodies[0], d.unfinished, (t) => [[short(t.transactionId), "id"], [t.state], [age(t.ageSeconds)], [`${t.acknowledged.length}/${t.participants.length}` + (t.conflicts.length ? ` (${t.conflicts.length} refused)` : "")], [t.attempts]], "none: every transaction is completed");
  $("conflicted-count").textContent = d.conflictedCount;
  $("conflicted-count").className = d.conflictedCount > 0 ? "value bad" : "value";
  rows($("conflicted").tBodies[0], d.conflicted, (t) => [[short(t.transactionId), "id"], [t.state], [t.conflicts.join(", "), "bad"], [`${t.acknowledged.length}/${t.participants.length}`], [age(t.ageSeconds)]], "none");
  const prepared = d.participants.flatMap((p) => p.reachable ? p.prepared.map((r) => ({ p: p.name, ...r })) : [{ p: p.name, transactionId: `unreachable (${p.error})`, ageSeconds: 0, checks: "" }]);
  rows($("prepared").tBodies[0], prepared, (r) => [[r.p], [short(r.transactionId), "id"], [r.ageSeconds ? age(r.ageSeconds) : ""], [r.checks]], "none held");
  drawRecent(d.recent);
  rows($("products").tBodies[0], d.products || [], (p) => [[p.sku, "id"], [p.onHand], [p.reserved], [p.sold]], "storage unreachable");
  const couriers = d.couriers || [];
  const counts = couriers.reduce((acc, c) => (acc[c.status] = (acc[c.status] || 0) + 1, acc), {});
  $("courier-summary").textContent = Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(" · ");
  rows($("couriers").tBodies[0], couriers.slice(0, 15), (c) => [[c.name || c.id], [c.status], [c.transactionId ? short(c.transactionId) : "", "id"]], "delivery unreachable");
  $("status").textContent = `updated ${new Date(d.now).toLocaleTimeString()}`;
}

async function poll() {
  try {
    const response = await fetch("/v1/dashboard", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (e) {
    $("status").textContent = `cannot read /v1/dashboard: ${e.message}`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
