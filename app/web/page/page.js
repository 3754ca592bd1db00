// orderstats live page: streams /api/stream (falls back to polling /api/live), polls
// /api/cluster, and switches to another worker's page when its own worker stops answering.
// No framework, no build step; charts are the vendored uPlot (/static/vendor/).
"use strict";
(() => {
  const body = document.body;
  const cfg = {
    windowS: Number(body.dataset.windowSizeS) || 60,
    retentionS: Number(body.dataset.retentionS) || 86400,
    selfUrl: body.dataset.workerUrl || location.origin,  // as the other workers know this one
    top: 100,                 // table rows: the busiest stores by lifetime orders
    probeEveryMs: 1000,       // /health of this page's worker
    probeFailuresToSwitch: 2, // consecutive network failures before switching workers
    clusterEveryMs: 2000,
    pollEveryMs: 1000,
    sparkEveryMs: 30000,      // a visible row's last-hour windows are re-read this often
    lineEveryMs: 30000,
    warnAfterS: 15,           // freshness: data not moving for this long -> warning
    staleAfterS: 60,
  };
  const params = new URLSearchParams(location.search);
  if (Number(params.get("top")) > 0) cfg.top = Math.min(1000, Number(params.get("top")));
  const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, all: cfg.retentionS };

  const state = {
    top: null, store: null, cluster: null,
    selected: params.get("store") || "",
    sort: { key: params.get("sort") || "tot_orders", dir: params.get("dir") === "asc" ? 1 : -1 },
    filter: params.get("q") || "",
    range: RANGES[params.get("range")] ? params.get("range") : "1h",
    transport: params.get("transport") === "poll" || !window.EventSource ? "poll" : "stream",
    currencies: {},            // code -> minor-unit exponent (null: no minor unit)
    revCurrency: "",
    freshKey: null, movedAt: 0, watermarkMs: 0,
    stats: { top: 0, store: 0, polls: 0, streamErrors: 0 },
  };
  window.orderstats = { state, cfg };  // for the browser tests and curious people

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    e.append(...children.filter((c) => c !== null && c !== undefined));
    return e;
  }

  // ---- numbers ----------------------------------------------------------------------
  const intFmt = new Intl.NumberFormat(undefined);
  const compactFmt = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  const fmtInt = (n) => (n === null || n === undefined ? "–" : intFmt.format(n));
  const moneyFmts = new Map();

  function learnCurrencies(map) { Object.assign(state.currencies, map || {}); }
  function exponentOf(code) { const e = state.currencies[code]; return e === undefined ? null : e; }

  // Exact: the integer of minor units becomes a decimal string ("1234" JPY -> "1234", USD ->
  // "12.34"), which Intl.NumberFormat formats without going through binary floating point.
  function fmtMoney(minor, code) {
    if (minor === null || minor === undefined) return "–";
    const exp = exponentOf(code);
    if (exp === null) return `${fmtInt(minor)} ${code}`;  // no minor unit known (XXX): as counted
    const digits = String(Math.abs(minor)).padStart(exp + 1, "0");
    const text = (minor < 0 ? "-" : "") + (exp ? `${digits.slice(0, -exp)}.${digits.slice(-exp)}` : digits);
    let f = moneyFmts.get(code);
    if (!f) {
      try {
        f = new Intl.NumberFormat(undefined, { style: "currency", currency: code,
          minimumFractionDigits: exp, maximumFractionDigits: exp });
      } catch (e) {
        f = { format: (t) => `${t} ${code}` };
      }
      moneyFmts.set(code, f);
    }
    return f.format(text);
  }
  const major = (minor, code) => minor / 10 ** (exponentOf(code) || 0);

  // A figure's revenue: one currency (or none), or each currency when there are several.
  function fmtRevenue(fig) {
    const entries = Object.entries(fig.revenue_by_currency || {});
    if (!entries.length) return "0";
    return entries.map(([code, v]) => fmtMoney(v, code)).join(" + ");
  }

  function ago(seconds) {
    if (seconds === null || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return `${s} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  // Pace of the current window (orders so far, scaled to the whole window) against the
  // previous window's orders; null while too little of the window has passed to tell.
  function trend(cur, prev) {
    if (!cur || !prev) return null;
    const elapsed = (Date.now() - Date.parse(cur.start)) / 1000;
    if (!(elapsed >= cfg.windowS * 0.1)) return null;
    const pace = cur.orders * cfg.windowS / Math.min(elapsed, cfg.windowS);
    if (!prev.orders) return cur.orders ? Infinity : null;
    return pace / prev.orders - 1;
  }
  function trendCell(td, t) {
    td.dataset.value = t === null ? "" : String(t);
    if (t === null) { td.textContent = "–"; td.className = "flat"; return; }
    if (t === Infinity) { td.textContent = "▲ new"; td.className = "up"; return; }
    const pct = Math.round(t * 100);
    if (Math.abs(pct) < 5) { td.textContent = `≈ ${pct > 0 ? "+" : ""}${pct}%`; td.className = "flat"; return; }
    td.textContent = `${pct > 0 ? "▲ +" : "▼ "}${pct}%`;
    td.className = pct > 0 ? "up" : "down";
  }

  // ---- fetching ---------------------------------------------------------------------
  async function getJSON(path, timeoutMs = 5000) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const resp = await fetch(path, { signal: ctl.signal, cache: "no-store" });
      const data = await resp.json().catch(() => null);
      // The worker wants its read token (README, "Security"): the cookie is missing or stale.
      if (resp.status === 401) notice("auth", "error", "This worker needs its read token: reload the page to sign in.");
      return { status: resp.status, data };
    } finally {
      clearTimeout(timer);
    }
  }
  const enc = encodeURIComponent;
  const isoS = (s) => new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

  // ---- notices and connection line ------------------------------------------------
  const notices = new Map();  // key -> [level, text]
  function notice(key, level, text) {
    if (text) notices.set(key, [level, text]); else notices.delete(key);
    const n = $("notice");
    if (!notices.size) { n.hidden = true; n.textContent = ""; return; }
    const all = [...notices.values()];
    const worst = all.some(([l]) => l === "error") ? "error" : all.some(([l]) => l === "warn") ? "warn" : "info";
    n.dataset.level = worst;
    n.replaceChildren(...all.map(([, t]) => el("div", { text: t })));
    n.hidden = false;
  }
  function setConn(mode, text) { const c = $("connection"); c.dataset.state = mode; c.textContent = text; }

  const switchedFrom = params.get("switched_from");
  if (switchedFrom) {
    notice("switched", "warn", `The worker at ${switchedFrom} stopped answering, so this page ` +
      `switched to the worker at ${location.origin} (${new Date().toLocaleTimeString()}).`);
  }

  // ---- freshness ----------------------------------------------------------------------
  function onAsOf(asOf) {
    if (!asOf) return;
    const key = `${asOf.watermark}|${JSON.stringify(asOf.offsets)}`;
    const wm = asOf.watermark ? Date.parse(asOf.watermark) : 0;
    if (state.freshKey === null) {
      // First sight: assume the data last moved when its newest order was created.
      state.movedAt = wm ? Math.max(Math.min(wm, Date.now()), Date.now() - 86400e3) : Date.now();
    } else if (key !== state.freshKey) {
      state.movedAt = Date.now();
    }
    state.freshKey = key;
    state.watermarkMs = wm;
    renderFreshness();
  }
  function renderFreshness() {
    const b = $("freshness");
    if (state.freshKey === null) return;
    const still = (Date.now() - state.movedAt) / 1000;
    const age = state.watermarkMs ? (Date.now() - state.watermarkMs) / 1000 : null;
    const level = still >= cfg.staleAfterS ? "stale" : still >= cfg.warnAfterS ? "warn" : "ok";
    b.dataset.state = level;
    b.dataset.stillS = String(Math.round(still));
    const newest = `newest order ${age === null ? "–" : ago(age)} old`;
    b.textContent = level === "ok" ? `fresh: ${newest}`
      : `${level === "stale" ? "STALE" : "not moving"}: no new data for ${ago(still)} (${newest})`;
  }
  setInterval(renderFreshness, 1000);

  // ---- charts -------------------------------------------------------------------------
  const widthOf = (e, fallback = 400) => Math.max(200, (e.clientWidth || fallback) - 4);

  function barChart(container, color, valueFmt) {
    const names = [];
    const opts = {
      width: widthOf(container), height: 230,
      legend: { show: false },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(names.length, 1) - 0.5] },
        y: { range: (u, min, max) => [0, Math.max(1, max) * 1.08] },
      },
      axes: [
        { splits: () => names.map((_, i) => i), values: (u, splits) => splits.map((i) => names[i] ?? ""),
          grid: { show: false }, size: 36 },
        { values: (u, splits) => splits.map(valueFmt), size: 60 },
      ],
      series: [{}, { label: "", fill: color, stroke: color, width: 0,
        paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } }],
    };
    const plot = new uPlot(opts, [[], []], container);
    return {
      plot,
      set(labels, values) {
        names.splice(0, names.length, ...labels);
        container.dataset.bars = String(values.length);
        const empty = document.getElementById(`${container.id}-empty`);
        if (empty) empty.hidden = values.length > 0;
        container.title = labels.map((l, i) => `${l}: ${valueFmt(values[i])}`).join("\n");
        plot.setData([labels.map((_, i) => i), values]);
      },
    };
  }

  let bars = null;
  function renderBars() {
    const top = state.top;
    if (!top || typeof uPlot === "undefined") return;
    if (!bars) {
      bars = {
        orders: barChart($("bar-orders"), "#2f6fdb", (v) => compactFmt.format(v)),
        revenue: barChart($("bar-revenue"), "#1a7f37",
          (v) => (state.revCurrency && exponentOf(state.revCurrency) !== null
            ? new Intl.NumberFormat(undefined, { style: "currency", currency: state.revCurrency,
              notation: "compact", maximumFractionDigits: 1 }).format(v)
            : compactFmt.format(v))),
      };
    }
    const o = top.top_current.orders;
    bars.orders.set(o.map((s) => s.store_id), o.map((s) => s.orders));
    const codes = Object.keys(top.top_current.revenue);
    const sel = $("rev-currency");
    if (!codes.includes(state.revCurrency)) {
      // the currency most stores sell in, then alphabetical
      state.revCurrency = codes.sort((a, b) => top.top_current.revenue[b].length
        - top.top_current.revenue[a].length || a.localeCompare(b))[0] || "";
    }
    sel.hidden = codes.length < 2;
    if (sel.options.length !== codes.length || [...sel.options].some((op, i) => op.value !== codes[i])) {
      sel.replaceChildren(...codes.map((c) => el("option", { value: c, text: c })));
    }
    sel.value = state.revCurrency;
    const r = top.top_current.revenue[state.revCurrency] || [];
    bars.revenue.set(r.map((s) => s.store_id), r.map((s) => major(s.revenue, state.revCurrency)));
  }
  $("rev-currency").addEventListener("change", (e) => { state.revCurrency = e.target.value; renderBars(); });

  // Windows are sparse (no orders, no entry): fill the gaps with zeros, one point a window.
  function windowSeries(windows, fromS, toS, code) {
    const size = cfg.windowS;
    const first = Math.ceil(fromS / size) * size;
    const byStart = new Map(windows.map((w) => [Date.parse(w.start) / 1000, w]));
    const xs = [], orders = [], revenue = [];
    const n = Math.floor((toS - first) / size) + 1;
    if (n > 20000) {  // a very long retention: plot the windows there are
      for (const [x, w] of [...byStart].sort((a, b) => a[0] - b[0])) {
        xs.push(x); orders.push(w.orders); revenue.push(major(w.revenue_by_currency[code] || 0, code));
      }
      return [xs, orders, revenue];
    }
    for (let x = first; x <= toS; x += size) {
      const w = byStart.get(x);
      xs.push(x); orders.push(w ? w.orders : 0);
      revenue.push(w ? major(w.revenue_by_currency[code] || 0, code) : 0);
    }
    return [xs, orders, revenue];
  }

  // ---- the chosen store: figures and line chart ----------------------------------------
  const line = { plot: null, data: null, fromS: 0, toS: 0, code: "", storeId: "", loadedAt: 0, zoomed: false, seq: 0 };

  function storeCurrency(msg) {
    const codes = Object.keys((msg && msg.totals && msg.totals.revenue_by_currency) || {}).sort();
    return codes[0] || "";
  }

  function makeLine(container) {
    const opts = {
      width: widthOf(container, 800), height: 300,
      cursor: { drag: { x: true, y: false, setScale: true } },
      scales: { x: { time: true }, orders: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] },
        revenue: { range: (u, min, max) => [0, Math.max(1, max) * 1.1] } },
      series: [
        {},
        { label: "orders", scale: "orders", stroke: "#2f6fdb", width: 1.5, points: { show: false },
          value: (u, v) => (v === null ? "–" : fmtInt(v)) },
        { label: "revenue", scale: "revenue", stroke: "#1a7f37", width: 1.5, points: { show: false },
          value: (u, v) => (v === null || !line.code ? "–"
            : fmtMoney(Math.round(v * 10 ** (exponentOf(line.code) || 0)), line.code)) },
      ],
      axes: [
        {},
        { scale: "orders", stroke: "#2f6fdb", values: (u, s) => s.map((v) => compactFmt.format(v)), size: 55 },
        { scale: "revenue", side: 1, stroke: "#1a7f37", grid: { show: false }, size: 60,
          values: (u, s) => s.map((v) => compactFmt.format(v)) },
      ],
      hooks: {
        setSelect: [() => { line.zoomed = true; }],
      },
    };
    const plot = new uPlot(opts, [[], [], []], container);
    plot.over.addEventListener("dblclick", () => { line.zoomed = false; });
    return plot;
  }

  async function loadLine() {
    const id = state.selected;
    if (!id || typeof uPlot === "undefined") return;
    const seq = ++line.seq;
    const nowS = Math.floor(Date.now() / 1000);
    const toS = nowS - (nowS % cfg.windowS) + cfg.windowS;
    const fromS = toS - Math.min(RANGES[state.range], cfg.retentionS);
    let res;
    try {
      res = await getJSON(`/api/stores/${enc(id)}/windows?from=${isoS(fromS)}&to=${isoS(toS)}`, 10000);
    } catch (e) {
      return;  // the worker probe notices a dead worker
    }
    if (seq !== line.seq || id !== state.selected) return;
    const container = $("line");
    if (res.status !== 200) {
      container.dataset.points = "0";
      if (res.status === 404) $("range-label").textContent = "no orders of this store seen";
      return;
    }
    line.code = storeCurrency(state.store && state.store.store_id === id ? state.store : null) ||
      Object.keys(res.data.windows.reduce((acc, w) => Object.assign(acc, w.revenue_by_currency), {})).sort()[0] || "";
    line.fromS = fromS; line.toS = toS - cfg.windowS; line.storeId = id; line.loadedAt = Date.now();
    line.data = windowSeries(res.data.windows, fromS, toS - cfg.windowS, line.code);
    if (!line.plot) line.plot = makeLine(container);
    line.plot.series[2].label = line.code ? `revenue (${line.code})` : "revenue";
    const legendLabel = line.plot.root.querySelectorAll(".u-legend .u-series .u-label")[2];
    if (legendLabel) legendLabel.textContent = line.plot.series[2].label;
    line.plot.setData(line.data, !line.zoomed);
    container.dataset.points = String(line.data[0].length);
    container.dataset.store = id;
    $("range-label").textContent =
      `${new Date(fromS * 1000).toLocaleString()} – now, ${res.data.windows.length} windows with orders`;
  }

  // The stream's current window, written into the line chart's last point.
  function liveLinePoint(msg) {
    if (!line.plot || !line.data || line.storeId !== msg.store_id) return;
    const x = Date.parse(msg.current.start) / 1000;
    const [xs, os, rs] = line.data;
    if (x > xs[xs.length - 1]) {
      for (let nx = xs[xs.length - 1] + cfg.windowS; nx <= x; nx += cfg.windowS) {
        xs.push(nx); os.push(0); rs.push(0);
        if (xs.length > 2 && xs[0] < nx - Math.min(RANGES[state.range], cfg.retentionS)) { xs.shift(); os.shift(); rs.shift(); }
      }
    }
    const i = xs.lastIndexOf(x);
    if (i < 0) return;
    os[i] = msg.current.orders;
    rs[i] = major(msg.current.revenue_by_currency[line.code] || 0, line.code);
    line.plot.setData(line.data, !line.zoomed);
  }

  function figure(label, value, attrs) {
    return el("div", { class: "figure", ...(attrs || {}) }, el("b", { text: value }), el("span", { text: label }));
  }
  // "This hour" and "today" (the rollup windows, in the shop's time zone) beside the minute.
  function rollupLabel(name) {
    return name === "1h" ? "this hour" : name === "1d" ? "today" : "this " + name;
  }
  function rollupFigures(byWindow) {
    return Object.keys(byWindow).flatMap((name) => {
      const w = byWindow[name];
      return [
        figure("orders, " + rollupLabel(name), fmtInt(w.orders), { "data-key": "orders_" + name, "data-value": w.orders }),
        figure("revenue, " + rollupLabel(name), fmtRevenue(w), { "data-key": "revenue_" + name, "data-value": String(w.revenue) }),
      ];
    });
  }
  function renderDetail() {
    $("detail-id").textContent = state.selected || "none selected";
    const f = $("detail-figures");
    const msg = state.store;
    if (!state.selected) { f.replaceChildren(el("span", { class: "muted", text: "click a row or search a store" })); return; }
    if (!msg || msg.store_id !== state.selected) { f.replaceChildren(el("span", { class: "muted", text: "loading" })); return; }
    if (msg.error) { f.replaceChildren(el("span", { class: "bad", text: msg.error.message })); return; }
    const t = trend(msg.current, msg.previous);
    const tr = el("b"); trendCell(tr, t);
    f.replaceChildren(
      figure("orders, current window", fmtInt(msg.current.orders), { "data-key": "cur_orders", "data-value": msg.current.orders }),
      figure("revenue, current window", fmtRevenue(msg.current), { "data-key": "cur_revenue", "data-value": String(msg.current.revenue) }),
      figure("items, current window", fmtInt(msg.current.items), { "data-key": "cur_items", "data-value": msg.current.items }),
      figure("orders, previous window", fmtInt(msg.previous.orders)),
      el("div", { class: "figure" }, tr, el("span", { text: "pace vs previous window" })),
      ...rollupFigures(msg.current_by_window || {}),
      figure("orders, lifetime", fmtInt(msg.totals.orders), { "data-key": "tot_orders", "data-value": msg.totals.orders }),
      figure("revenue, lifetime", fmtRevenue(msg.totals), { "data-key": "tot_revenue", "data-value": String(msg.totals.revenue) }),
      figure("late orders", fmtInt(msg.totals.late)),
    );
  }

  function onStore(msg) {
    state.stats.store++;
    if (!msg || msg.store_id !== state.selected) return;
    if (msg.error && msg.error.code !== "store_not_found" && state.store && !state.store.error
        && state.store.store_id === msg.store_id) {
      return;  // rebalancing: keep the last numbers; the top message says so
    }
    learnCurrencies(msg.currencies);
    state.store = msg;
    renderDetail();
    if (!msg.error) liveLinePoint(msg);
  }

  function select(id) {
    id = (id || "").trim();
    if (!id || id === state.selected) return;
    state.selected = id;
    state.store = null;
    line.zoomed = false;
    saveUrl();
    renderDetail();
    markSelected();
    loadLine();
    restartTransport();
  }

  // ---- the table ----------------------------------------------------------------------
  const rows = new Map();   // store_id -> row {tr, cells, spark}
  const visible = new Set();
  const observer = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const e of entries) {
      const id = e.target.dataset.store;
      if (e.isIntersecting) visible.add(id); else visible.delete(id);
    }
    refreshSparks();
  }) : null;

  const SORTS = {
    store: (s) => s.store_id,
    cur_orders: (s) => s.current.orders,
    cur_revenue: (s) => s.current.revenue ?? 0,
    cur_items: (s) => s.current.items,
    trend: (s) => { const t = trend(s.current, s.previous); return t === null ? -Infinity : t; },
    tot_orders: (s) => s.totals.orders,
    tot_revenue: (s) => s.totals.revenue ?? 0,
    tot_items: (s) => s.totals.items,
    late: (s) => s.totals.late,
  };
  const CELLS = ["cur_orders", "cur_revenue", "cur_items", "trend", "spark", "tot_orders", "tot_revenue", "tot_items", "late"];

  function makeRow(id) {
    const cells = {};
    const tr = el("tr", { "data-store": id });
    tr.append(el("td", { class: "text", text: id }));
    for (const k of CELLS) { cells[k] = el("td", { "data-key": k, class: k === "spark" ? "spark" : null }); tr.append(cells[k]); }
    tr.addEventListener("click", () => select(id));
    const row = { tr, cells, spark: { plot: null, data: null, fetchedAt: 0, busy: false } };
    rows.set(id, row);
    if (observer) observer.observe(tr); else visible.add(id);
    return row;
  }

  function setCell(td, text, value) {
    if (td.textContent !== text) td.textContent = text;
    const v = String(value);
    if (td.dataset.value !== v) td.dataset.value = v;
  }
  function updateRow(row, s) {
    const c = row.cells;
    setCell(c.cur_orders, fmtInt(s.current.orders), s.current.orders);
    setCell(c.cur_revenue, fmtRevenue(s.current), s.current.revenue);
    setCell(c.cur_items, fmtInt(s.current.items), s.current.items);
    trendCell(c.trend, trend(s.current, s.previous));
    setCell(c.tot_orders, fmtInt(s.totals.orders), s.totals.orders);
    setCell(c.tot_revenue, fmtRevenue(s.totals), s.totals.revenue);
    setCell(c.tot_items, fmtInt(s.totals.items), s.totals.items);
    setCell(c.late, fmtInt(s.totals.late), s.totals.late);
    c.cur_revenue.dataset.currencies = JSON.stringify(s.current.revenue_by_currency);
    c.tot_revenue.dataset.currencies = JSON.stringify(s.totals.revenue_by_currency);
    row.current = s.current;
    sparkLive(row);
  }

  function renderTable() {
    const top = state.top;
    if (!top) return;
    const q = state.filter.trim().toLowerCase();
    const list = top.stores.filter((s) => !q || s.store_id.toLowerCase().includes(q));
    const key = SORTS[state.sort.key] ? state.sort.key : "tot_orders";
    const fn = SORTS[key], dir = state.sort.dir;
    list.sort((a, b) => {
      const va = fn(a), vb = fn(b);
      const c = typeof va === "string" ? va.localeCompare(vb) : va - vb;
      return c * dir || a.store_id.localeCompare(b.store_id);
    });
    const tbody = $("rows");
    const keep = new Set();
    list.forEach((s, i) => {
      const row = rows.get(s.store_id) || makeRow(s.store_id);
      keep.add(s.store_id);
      updateRow(row, s);
      if (tbody.children[i] !== row.tr) tbody.insertBefore(row.tr, tbody.children[i] || null);
    });
    for (const [id, row] of rows) {
      if (keep.has(id)) continue;
      if (observer) observer.unobserve(row.tr);
      if (row.spark.plot) row.spark.plot.destroy();
      row.tr.remove();
      rows.delete(id);
      visible.delete(id);
    }
    for (const th of document.querySelectorAll("#stores th[data-sort]")) {
      if (th.dataset.sort === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    const shown = top.stores.length < top.count ? ` (the ${top.stores.length} busiest by lifetime orders; Enter opens any store)` : "";
    $("table-meta").textContent = `${list.length} of ${top.count} stores${shown}`;
    markSelected();
  }
  function markSelected() {
    for (const [id, row] of rows) row.tr.classList.toggle("selected", id === state.selected);
  }

  for (const th of document.querySelectorAll("#stores th[data-sort]")) {
    th.addEventListener("click", () => {
      const k = th.dataset.sort;
      state.sort = state.sort.key === k ? { key: k, dir: -state.sort.dir } : { key: k, dir: k === "store" ? 1 : -1 };
      saveUrl();
      renderTable();
    });
  }
  const search = $("search");
  search.value = state.filter;
  search.addEventListener("input", () => { state.filter = search.value; saveUrl(); renderTable(); });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") select(search.value); });

  // ---- sparklines: the last hour of the rows on screen only -----------------------------
  let sparkBusy = 0;
  function sparkLive(row) {
    const sp = row.spark;
    if (!sp.plot || !sp.data || !row.current) return;
    const x = Date.parse(row.current.start) / 1000;
    const [xs, ys] = sp.data;
    while (xs.length && x > xs[xs.length - 1]) { xs.push(xs[xs.length - 1] + cfg.windowS); ys.push(0); xs.shift(); ys.shift(); }
    const i = xs.lastIndexOf(x);
    if (i >= 0 && ys[i] !== row.current.orders) { ys[i] = row.current.orders; sp.plot.setData(sp.data); }
  }
  async function loadSpark(id) {
    const row = rows.get(id);
    if (!row || row.spark.busy) return;
    row.spark.busy = true; sparkBusy++;
    try {
      const nowS = Math.floor(Date.now() / 1000);
      const toS = nowS - (nowS % cfg.windowS);
      const fromS = toS - Math.max(3600, cfg.windowS * 2) + cfg.windowS;
      const res = await getJSON(`/api/stores/${enc(id)}/windows?from=${isoS(fromS)}&to=${isoS(toS + cfg.windowS)}`);
      if (res.status !== 200 || !rows.has(id)) { row.spark.failedAt = Date.now(); return; }
      const [xs, ys] = windowSeries(res.data.windows, fromS, toS, "");
      row.spark.data = [xs, ys];
      row.spark.fetchedAt = Date.now();
      if (!row.spark.plot) {
        row.spark.plot = new uPlot({
          width: 120, height: 26, pxAlign: false, legend: { show: false },
          cursor: { show: false }, select: { show: false },
          scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
          axes: [{ show: false }, { show: false }],
          series: [{}, { stroke: "#2f6fdb", fill: "rgba(47,111,219,.15)", width: 1, points: { show: false } }],
        }, row.spark.data, row.cells.spark);
        row.cells.spark.title = "orders per window, last hour";
      } else {
        row.spark.plot.setData(row.spark.data);
      }
      row.cells.spark.dataset.points = String(xs.length);
      sparkLive(row);
    } catch (e) {
      row.spark.failedAt = Date.now();  // the worker probe notices a dead worker
    } finally {
      row.spark.busy = false; sparkBusy--;
      refreshSparks();  // the next visible row, if any is due (at most 3 requests at once)
    }
  }
  function refreshSparks() {
    if (typeof uPlot === "undefined") return;
    const now = Date.now();
    for (const id of visible) {
      if (sparkBusy >= 3) break;
      const row = rows.get(id);
      if (row && !row.spark.busy && now - row.spark.fetchedAt > cfg.sparkEveryMs
          && !(row.spark.failedAt > now - cfg.sparkEveryMs)) loadSpark(id);
    }
  }
  setInterval(refreshSparks, 1000);

  // ---- messages -------------------------------------------------------------------------
  function onTop(msg) {
    state.stats.top++;
    if (!msg) return;
    if (msg.error) {
      notice("top", "warn", `This worker cannot answer right now (${msg.error.message}); the numbers below are the last ones seen.`);
      return;
    }
    learnCurrencies(msg.currencies);
    state.top = msg;
    const missing = msg.complete ? "" :
      `Partial numbers: partitions ${msg.missing_partitions.join(", ")} are not answering` +
      (msg.unreachable_workers.length ? ` (workers ${msg.unreachable_workers.join(", ")} unreachable)` : "") + ".";
    notice("top", "warn", missing);
    for (const e of document.querySelectorAll(".win-label")) {
      e.textContent = `${new Date(msg.window.start).toLocaleTimeString()}–${new Date(msg.window.end).toLocaleTimeString()}`;
    }
    onAsOf(msg.as_of);
    renderTable();
    renderBars();
    if (!state.selected && msg.stores.length) select(msg.stores[0].store_id);
  }

  // ---- transport: stream, else polling -------------------------------------------------
  let es = null, pollTimer = null, streamFailures = 0;
  const liveQuery = () => `top=${cfg.top}` + (state.selected ? `&store=${enc(state.selected)}` : "");

  function startStream() {
    stopTransport();
    es = new EventSource(`/api/stream?${liveQuery()}`);
    es.addEventListener("top", (e) => onTop(JSON.parse(e.data)));
    es.addEventListener("store", (e) => onStore(JSON.parse(e.data)));
    es.onopen = () => { streamFailures = 0; setConn("stream", `live: streaming from ${location.host}`); };
    es.onerror = () => {
      state.stats.streamErrors++;
      streamFailures++;
      setConn("down", `stream interrupted (${location.host}); reconnecting`);
      // The worker answers but the stream keeps failing (a proxy that buffers?): poll.
      if (streamFailures >= 3 && probe.failures === 0) {
        state.transport = "poll";
        startPolling("the stream keeps failing");
      } else if (es && es.readyState === EventSource.CLOSED) {
        // refused (not an event stream): the browser gives up; try again shortly
        const failed = es;
        setTimeout(() => { if (es === failed && state.transport === "stream") startStream(); }, 2000);
      }
    };
  }
  function startPolling(why) {
    stopTransport();
    setConn("poll", `live: polling ${location.host} every second${why ? ` (${why})` : ""}`);
    const tick = async () => {
      try {
        const res = await getJSON(`/api/live?${liveQuery()}`);
        state.stats.polls++;
        if (res.status === 200 && res.data) { onTop(res.data.top); if (res.data.store) onStore(res.data.store); }
      } catch (e) { /* the probe decides */ }
      pollTimer = setTimeout(tick, cfg.pollEveryMs);
    };
    tick();
  }
  function stopTransport() {
    if (es) { es.close(); es = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }
  function restartTransport() { if (state.transport === "poll") startPolling(); else startStream(); }

  // ---- cluster panel --------------------------------------------------------------------
  async function loadCluster() {
    try {
      const res = await getJSON("/api/cluster", 8000);
      if (res.status === 200 && res.data) { state.cluster = res.data; state.clusterAt = Date.now(); renderCluster(); }
    } catch (e) { /* the probe decides */ }
    setTimeout(loadCluster, cfg.clusterEveryMs);
  }
  function renderCluster() {
    const c = state.cluster;
    const ev = c.events || {};
    const owned = Object.values(c.partitions).filter((p) => p.active).length;
    const total = Object.keys(c.partitions).length;
    $("cluster-summary").replaceChildren(
      figure("workers", String(c.workers.length)),
      figure("partitions owned", `${owned} / ${total}`, { class: owned < total ? "figure bad" : "figure" }),
      figure("total lag (events)", fmtInt(c.total_lag), { "data-key": "total_lag" }),
      figure("invalid (dead-lettered)", fmtInt(ev.invalid ?? 0), { "data-key": "invalid" }),
      figure("late", fmtInt(ev.late ?? 0), { "data-key": "late" }),
      figure("duplicates", fmtInt(ev.duplicate ?? 0), { "data-key": "duplicate" }),
      figure("repartitioned", fmtInt(c.repartitioned), { "data-key": "repartitioned" }),
    );
    $("cluster-age").textContent = "event counts since each worker started";
    $("workers").tBodies[0].replaceChildren(...c.workers.map((w) => {
      const self = w.url === cfg.selfUrl;
      const stateText = w.error ? "not answering" : w.recovering ? "recovering" : w.ready ? "ready" : "not ready";
      return el("tr", { "data-url": w.url },
        el("td", { class: self ? "text self" : "text", text: w.url + (self ? " (this page)" : "") }),
        el("td", { class: w.error ? "bad" : w.recovering || !w.ready ? "down" : "okay", text: stateText, title: w.error || null }),
        el("td", { class: "text", text: w.error ? "–" : w.active.join(" ") }),
        el("td", { class: "text", text: w.error ? "–" : w.standby.join(" ") }));
    }));
    $("partitions").tBodies[0].replaceChildren(...Object.entries(c.partitions).map(([p, e]) => {
      const wm = e.watermark ? Date.parse(e.watermark) : null;
      return el("tr", { "data-partition": p },
        el("td", { text: p }),
        el("td", { class: e.active ? "text" : "text bad", text: e.active || "unowned" }),
        el("td", { class: "text", text: e.standby.join(" ") || "–" }),
        el("td", { text: e.lag === undefined || e.lag === null ? "–" : fmtInt(e.lag) }),
        el("td", { text: e.last_offset === undefined ? "–" : fmtInt(e.last_offset) }),
        el("td", { class: "text", text: wm ? `${e.watermark} (${ago((Date.now() - wm) / 1000)} ago)` : "–" }));
    }));
  }

  // ---- this page's worker, and switching to another when it dies -------------------------
  const probe = { failures: 0, switching: false };
  function peers() {
    const ws = (state.cluster && state.cluster.workers) || [];
    const ok = ws.filter((w) => !w.error && w.url !== cfg.selfUrl && w.url !== location.origin);
    return [...ok.filter((w) => w.ready), ...ok.filter((w) => !w.ready)].map((w) => w.url);
  }
  async function runProbe() {
    let alive = false;
    try {
      const res = await getJSON("/health", 2500);
      alive = res.status === 200;
    } catch (e) {
      alive = false;
    }
    if (alive) {
      if (probe.failures) restartTransport();
      probe.failures = 0;
      notice("down", null, null);
    } else {
      probe.failures++;
      setConn("down", `this page's worker (${location.host}) is not answering`);
      if (probe.failures >= cfg.probeFailuresToSwitch) switchWorker();
    }
    setTimeout(runProbe, cfg.probeEveryMs);
  }
  function switchWorker() {
    if (probe.switching) return;
    const targets = peers();
    if (!targets.length) {
      notice("down", "error", `The worker at ${location.origin} is not answering and no other worker is known; retrying.`);
      return;
    }
    probe.switching = true;
    stopTransport();
    const p = new URLSearchParams();
    for (const k of ["store", "sort", "dir", "q", "range", "transport", "top"]) if (params.get(k)) p.set(k, params.get(k));
    if (state.selected) p.set("store", state.selected);
    p.set("switched_from", location.origin);
    notice("down", "error", `The worker at ${location.origin} stopped answering; switching to ${targets[0]}.`);
    // The other worker serves the same page: load it there (same origin as its API: no CORS).
    location.assign(`${targets[0]}/?${p}`);
  }

  function saveUrl() {
    const p = new URLSearchParams(location.search);
    const set = (k, v) => (v ? p.set(k, v) : p.delete(k));
    set("store", state.selected);
    set("sort", state.sort.key === "tot_orders" && state.sort.dir < 0 ? "" : state.sort.key);
    set("dir", state.sort.dir > 0 ? "asc" : "");
    set("q", state.filter);
    set("range", state.range === "1h" ? "" : state.range);
    history.replaceState(null, "", `${location.pathname}${p.size ? `?${p}` : ""}`);
  }

  for (const b of document.querySelectorAll("#range button")) {
    b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
    b.addEventListener("click", () => {
      state.range = b.dataset.range;
      for (const o of document.querySelectorAll("#range button")) o.setAttribute("aria-pressed", String(o === b));
      line.zoomed = false;
      saveUrl();
      loadLine();
    });
  }
  setInterval(() => { if (state.selected && Date.now() - line.loadedAt > cfg.lineEveryMs) loadLine(); }, 2000);

  window.addEventListener("resize", () => {
    if (bars) for (const b of Object.values(bars)) b.plot.setSize({ width: widthOf(b.plot.root.parentElement), height: 230 });
    if (line.plot) line.plot.setSize({ width: widthOf($("line"), 800), height: 300 });
  });

  renderDetail();
  if (state.selected) loadLine();
  restartTransport();
  loadCluster();
  runProbe();
})();
