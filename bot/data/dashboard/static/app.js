// bot-stream dashboard: draws what the server's WebSocket (/ws) sends.
//
// Messages: hello (symbols, timeframes), history (per symbol and timeframe),
// update (completed bars, bars being built, signals; throttled by the server)
// and status (health report, metrics, trades per minute, and the engine's
// figures and paper account when one runs). The page keeps every timeframe's
// candles and shows one timeframe at a time, for every symbol or the one
// chosen; window.dashboard exposes what it draws (and each chart card carries
// the counts as data attributes).
"use strict";

const LWC = window.LightweightCharts;
const COLORS = {
  up: "#26a69a", down: "#ef5350", unknown: "#4b5263", text: "#d1d4dc", grid: "#1e222d",
  line: "#2a2e39", panel: "#131722", buy: "#26a69a", sell: "#ef5350", vwap: "#f0b429",
};
const MAX_CANDLES = 5000;
const MIN_BAR_SPACING = 4;  // px: fewer bars than fit at this spacing are all shown, fitted
const RIGHT_OFFSET = 2;     // bars of space right of the newest
const FLAG_NAMES = [[1, "EMPTY"], [2, "PARTIAL"], [4, "GAP"], [8, "BACKFILLED"]];
const ALL = "all";
const NARROW = window.matchMedia("(max-width: 700px)");

const state = {
  symbols: [],
  timeframes: [],
  timeframe: null,
  symbol: ALL,         // the symbol shown, or ALL
  series: new Map(),   // "SYMBOL|TF" -> {candles: [...], completed: Set(time), markers: [...]}
  charts: new Map(),   // symbol -> {chart, candles, vwap, total, sided, buy, markers, card, ...}
  messages: 0,
  connected: false,
};

const key = (symbol, tf) => `${symbol}|${tf}`;

function seriesData(symbol, tf) {
  const k = key(symbol, tf);
  if (!state.series.has(k)) state.series.set(k, { candles: [], completed: new Set(), markers: [] });
  return state.series.get(k);
}

function shownSymbols() {
  return state.symbol === ALL ? state.symbols : [state.symbol];
}

// --- public view of what is drawn (read by tests and by anyone curious) ----------
window.dashboard = {
  state,
  candleCount(symbol, tf) { return seriesData(symbol, tf).candles.length; },
  completedCount(symbol, tf) { return seriesData(symbol, tf).completed.size; },
  markerCount(symbol, tf) { return seriesData(symbol, tf).markers.length; },
  candles(symbol, tf) { return seriesData(symbol, tf).candles.slice(); },
  drawnCandles(symbol) {
    const c = state.charts.get(symbol);
    return c ? c.candles.data().length : 0;
  },
  drawnVwap(symbol) {
    const c = state.charts.get(symbol);
    return c ? c.vwap.data().filter((p) => p.value !== undefined).length : 0;
  },
  drawnMarkers(symbol) {
    const c = state.charts.get(symbol);
    return c ? c.markers.markers().map((m) => ({ ...m })) : [];
  },
  shownSymbols,
  setTimeframe,
  setSymbol,
};

// --- data ---------------------------------------------------------------------------
// Insert or replace a candle by time; returns true when it is the newest one.
function upsert(list, candle) {
  const last = list[list.length - 1];
  if (!last || candle.time > last.time) {
    list.push(candle);
    if (list.length > MAX_CANDLES) list.shift();
    return true;
  }
  if (candle.time === last.time) {
    list[list.length - 1] = candle;
    return true;
  }
  const i = list.findIndex((c) => c.time === candle.time);
  if (i >= 0) list[i] = candle;
  return false;
}

function applyCandle(candle, completed) {
  const data = seriesData(candle.symbol, candle.timeframe);
  const before = data.candles.length;
  const newest = upsert(data.candles, candle);
  if (completed) data.completed.add(candle.time);
  if (candle.timeframe !== state.timeframe) return;
  const chart = state.charts.get(candle.symbol);
  if (!chart) return;
  if (newest) {
    const following = isFollowing(chart, before);
    ensurePrecision(chart, candle.close);
    const p = points(candle);
    chart.candles.update(p.candle);
    chart.vwap.update(p.vwap);
    chart.total.update(p.total);
    chart.sided.update(p.sided);
    chart.buy.update(p.buy);
    if (following && data.candles.length > before) fitView(chart, data.candles.length);
  } else {
    redraw(candle.symbol);
  }
  updateHead(candle.symbol);
  updateBarCount();
}

function points(c) {
  return {
    candle: { time: c.time, open: c.open, high: c.high, low: c.low, close: c.close },
    vwap: c.vwap === null || c.vwap === undefined ? { time: c.time } : { time: c.time, value: c.vwap },
    total: { time: c.time, value: c.volume },
    sided: { time: c.time, value: c.buy_volume + c.sell_volume },
    buy: { time: c.time, value: c.buy_volume },
  };
}

function addSignal(signal) {
  const data = seriesData(signal.symbol, signal.timeframe);
  data.markers.push(signal);
  data.markers.sort((a, b) => a.time - b.time);
  if (signal.timeframe === state.timeframe && state.charts.has(signal.symbol)) drawMarkers(signal.symbol);
}

function flagNames(flags) {
  return FLAG_NAMES.filter(([bit]) => flags & bit).map(([, name]) => name);
}

// --- charts -------------------------------------------------------------------------
function createCard(symbol) {
  const card = document.createElement("article");
  card.className = "card";
  card.dataset.symbol = symbol;
  card.innerHTML = `
    <div class="card-head">
      <h3></h3><span class="price">—</span><span class="change"></span>
      <span class="position" hidden></span>
      <div class="imbalance" title="taker buy share of the bar being built">
        <span class="buy-share">buy —</span><div class="meter"><div></div></div>
      </div>
    </div>
    <div class="legend" aria-live="off"></div>
    <div class="chart"><div class="tooltip" hidden></div></div>`;
  card.querySelector("h3").textContent = symbol;
  document.getElementById("charts").appendChild(card);

  const chart = LWC.createChart(card.querySelector(".chart"), {
    autoSize: true,
    layout: {
      background: { type: "solid", color: COLORS.panel },
      textColor: COLORS.text,
      fontSize: 11,
      panes: { separatorColor: COLORS.line },
    },
    grid: { vertLines: { color: COLORS.grid }, horzLines: { color: COLORS.grid } },
    rightPriceScale: { borderColor: COLORS.line },
    timeScale: {
      borderColor: COLORS.line, timeVisible: true, secondsVisible: true,
      barSpacing: 9, rightOffset: RIGHT_OFFSET,
    },
    crosshair: { mode: 0 },
  });
  const candles = chart.addSeries(LWC.CandlestickSeries, {
    upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
    wickUpColor: COLORS.up, wickDownColor: COLORS.down,
  });
  const vwap = chart.addSeries(LWC.LineSeries, {
    color: COLORS.vwap, lineWidth: 1, priceLineVisible: false, lastValueVisible: false,
    crosshairMarkerVisible: false, title: "VWAP",
  });
  // Volume pane: three histograms drawn over each other read as one stacked bar:
  // taker buy (green) at the bottom, taker sell (red) above it, unknown side (grey) on top.
  const volume = { priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false };
  const total = chart.addSeries(LWC.HistogramSeries, { ...volume, color: COLORS.unknown }, 1);
  const sided = chart.addSeries(LWC.HistogramSeries, { ...volume, color: COLORS.sell }, 1);
  const buy = chart.addSeries(LWC.HistogramSeries, { ...volume, color: COLORS.buy }, 1);
  const panes = chart.panes();
  panes[0].setStretchFactor(3);
  panes[1].setStretchFactor(1);
  const markers = LWC.createSeriesMarkers(candles, []);
  const entry = { chart, candles, vwap, total, sided, buy, markers, card, precision: null };
  state.charts.set(symbol, entry);
  chart.subscribeCrosshairMove((param) => onCrosshair(symbol, param));
}

// True when the newest candle is in view (the chart was not scrolled into its past).
function isFollowing(chart, count) {
  const range = chart.chart.timeScale().getVisibleLogicalRange();
  return !range || count === 0 || range.to >= count - 1.5;
}

// Every candle in view when they fit at MIN_BAR_SPACING; else the newest that do.
function fitView(chart, count) {
  const scale = chart.chart.timeScale();
  const fitting = Math.floor(scale.width() / MIN_BAR_SPACING);
  if (count <= fitting || fitting <= 0) {
    scale.fitContent();
  } else {
    scale.setVisibleLogicalRange({ from: count - fitting, to: count - 1 + RIGHT_OFFSET });
  }
}

function ensurePrecision(chart, price) {
  if (chart.precision !== null || !(price > 0)) return;
  const precision = Math.min(8, Math.max(2, 5 - Math.floor(Math.log10(price))));
  chart.precision = precision;
  const format = { type: "price", precision, minMove: Math.pow(10, -precision) };
  chart.candles.applyOptions({ priceFormat: format });
  chart.vwap.applyOptions({ priceFormat: format });
}

function redraw(symbol) {
  const chart = state.charts.get(symbol);
  const data = seriesData(symbol, state.timeframe);
  const pts = data.candles.map(points);
  if (pts.length) ensurePrecision(chart, data.candles[data.candles.length - 1].close);
  chart.candles.setData(pts.map((p) => p.candle));
  chart.vwap.setData(pts.map((p) => p.vwap));
  chart.total.setData(pts.map((p) => p.total));
  chart.sided.setData(pts.map((p) => p.sided));
  chart.buy.setData(pts.map((p) => p.buy));
  chart.chart.applyOptions({ timeScale: { secondsVisible: state.timeframe.endsWith("s") } });
  fitView(chart, pts.length);
  drawMarkers(symbol);
  updateHead(symbol);
  updateBarCount();
}

// Arrows only: the details of a signal show on hover (see onCrosshair), so labels never overlap.
function drawMarkers(symbol) {
  const chart = state.charts.get(symbol);
  const data = seriesData(symbol, state.timeframe);
  chart.markers.setMarkers(data.markers.map((m) => ({
    time: m.time,
    position: m.direction === "buy" ? "belowBar" : "aboveBar",
    color: m.direction === "buy" ? COLORS.up : COLORS.down,
    shape: m.direction === "buy" ? "arrowUp" : "arrowDown",
    size: 1,
  })));
  chart.card.dataset.markers = String(data.markers.length);
}

function fmt(value, precision) {
  return value === undefined || value === null ? "—" : value.toFixed(precision ?? 2);
}

function volumeText(value) {
  return value >= 1000 ? value.toLocaleString(undefined, { maximumFractionDigits: 0 })
    : value.toPrecision(4);
}

function timeText(seconds) {
  const iso = new Date(seconds * 1000).toISOString();
  return state.timeframe.endsWith("s") ? iso.slice(5, 19).replace("T", " ") : iso.slice(5, 16).replace("T", " ");
}

// The OHLC legend: the candle under the crosshair, or the newest one.
function showLegend(symbol, bar) {
  const chart = state.charts.get(symbol);
  const legend = chart.card.querySelector(".legend");
  if (!bar) { legend.textContent = ""; return; }
  const p = chart.precision ?? 2;
  const flags = flagNames(bar.flags);
  legend.replaceChildren();
  const parts = [
    ["time", `${state.timeframe} ${timeText(bar.time)} UTC`], ["O", fmt(bar.open, p)],
    ["H", fmt(bar.high, p)], ["L", fmt(bar.low, p)], ["C", fmt(bar.close, p)],
    ["VWAP", fmt(bar.vwap, p)], ["V", volumeText(bar.volume)], ["n", String(bar.trade_count)],
  ];
  for (const [label, value] of parts) {
    const span = document.createElement("span");
    span.className = label === "VWAP" ? "vwap" : "";
    span.textContent = label === "time" ? value : `${label} ${value}`;
    legend.appendChild(span);
  }
  if (flags.length) {
    const span = document.createElement("span");
    span.className = "flags";
    span.textContent = flags.join(" ");
    legend.appendChild(span);
  }
  chart.card.dataset.legendTime = String(bar.time);
}

function onCrosshair(symbol, param) {
  const chart = state.charts.get(symbol);
  const data = seriesData(symbol, state.timeframe);
  const tooltip = chart.card.querySelector(".tooltip");
  if (param.time === undefined || !param.point) {
    chart.hovered = null;
    tooltip.hidden = true;
    showLegend(symbol, data.candles[data.candles.length - 1]);
    return;
  }
  chart.hovered = param.time;
  showLegend(symbol, data.candles.find((c) => c.time === param.time));
  const signals = data.markers.filter((m) => m.time === param.time);
  if (!signals.length) { tooltip.hidden = true; return; }
  tooltip.replaceChildren(...signals.map((s) => {
    const line = document.createElement("div");
    line.className = s.direction === "buy" ? "up" : "down";
    line.textContent = `${s.direction === "buy" ? "▲ BUY" : "▼ SELL"}  confidence ` +
      `${(s.confidence * 100).toFixed(0)}%  ·  P(up) ${s.probability_up.toFixed(2)}  ·  ` +
      `${s.model}  ·  bar close ${fmt(s.price, chart.precision ?? 2)}`;
    return line;
  }));
  tooltip.hidden = false;
  const box = chart.card.querySelector(".chart").getBoundingClientRect();
  const width = tooltip.offsetWidth;
  tooltip.style.left = `${Math.max(4, Math.min(param.point.x + 12, box.width - width - 4))}px`;
  tooltip.style.top = `${Math.max(4, param.point.y - 40)}px`;
}

function updateHead(symbol) {
  const chart = state.charts.get(symbol);
  const data = seriesData(symbol, state.timeframe);
  const card = chart.card;
  card.dataset.timeframe = state.timeframe;
  card.dataset.candles = String(data.candles.length);
  card.dataset.completed = String(data.completed.size);
  const bar = data.candles[data.candles.length - 1];
  if (!bar) return;
  const p = chart.precision ?? 2;
  card.querySelector(".price").textContent = fmt(bar.close, p);
  const change = bar.open ? (bar.close - bar.open) / bar.open * 100 : 0;
  const el = card.querySelector(".change");
  el.textContent = `${change >= 0 ? "+" : ""}${change.toFixed(3)}%`;
  el.className = `change ${change >= 0 ? "up" : "down"}`;
  if (!chart.hovered) showLegend(symbol, bar);
  const sided = bar.buy_volume + bar.sell_volume;
  const share = sided > 0 ? bar.buy_volume / sided : 0.5;
  card.querySelector(".buy-share").textContent = sided > 0 ? `buy ${(share * 100).toFixed(0)}%` : "buy —";
  card.querySelector(".meter div").style.width = `${share * 100}%`;
}

// The header's bar count: the candles drawn on the charts shown, for the timeframe shown.
function updateBarCount() {
  const drawn = shownSymbols().reduce((n, s) => n + window.dashboard.drawnCandles(s), 0);
  document.getElementById("bar-count").textContent = drawn.toLocaleString();
  document.getElementById("bar-count-label").textContent = `bars ${state.timeframe ?? ""}`;
}

function setTimeframe(tf) {
  state.timeframe = tf;
  document.querySelectorAll("#timeframes button").forEach((b) => {
    b.classList.toggle("active", b.dataset.timeframe === tf);
  });
  for (const symbol of state.symbols) redraw(symbol);
}

function setSymbol(symbol) {
  state.symbol = symbol === ALL || state.symbols.includes(symbol) ? symbol : ALL;
  document.querySelectorAll("#symbol-switch button").forEach((b) => {
    b.classList.toggle("active", b.dataset.symbol === state.symbol);
  });
  for (const [s, chart] of state.charts) {
    chart.card.hidden = !shownSymbols().includes(s);
  }
  document.getElementById("charts").classList.toggle("single", state.symbol !== ALL);
  for (const s of shownSymbols()) {
    // Drawn again once visible, so the chart takes its new size before it is fitted.
    requestAnimationFrame(() => fitView(state.charts.get(s), seriesData(s, state.timeframe).candles.length));
  }
  updateBarCount();
}

// --- status -------------------------------------------------------------------------
function latency(summary) {
  if (!summary || summary.p50_ms === null) return "—";
  return `${summary.p50_ms.toFixed(1)} / ${summary.p99_ms.toFixed(1)} ms`;
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

function signed(value, digits) {
  return `${value >= 0 ? "+" : ""}${value.toFixed(digits ?? 2)}`;
}

function showStatus(msg) {
  const { health, metrics } = msg;
  const pill = document.getElementById("health");
  pill.textContent = health.status;
  pill.className = `pill ${health.status}`;
  pill.title = health.reasons.join("\n");
  const rates = metrics.rates_10s || {};
  document.getElementById("tick-rate").textContent = rates.ticks === undefined ? "—" : rates.ticks.toFixed(1);
  document.getElementById("bar-count").title =
    `${metrics.counters.bars.toLocaleString()} bars completed live since the stream started`;
  document.getElementById("latency-exchange").textContent = latency(metrics.latency.exchange_to_receive);
  document.getElementById("latency-bar").textContent = latency(metrics.latency.receive_to_bar_dispatch);
  document.getElementById("reconnects").textContent = String(metrics.counters.reconnects);
  document.getElementById("uptime").textContent = duration(metrics.uptime_s);

  const conns = document.querySelector("#connections tbody");
  conns.replaceChildren();
  for (const [name, c] of Object.entries(metrics.connections)) {
    const row = conns.insertRow();
    cell(row, name);
    cell(row, c.state, c.state === "connected" ? "state-connected"
      : (c.state === "failed" || c.state === "stopped") ? "state-failed" : "state-other");
    cell(row, c.frames.toLocaleString());
    cell(row, String(c.reconnects));
    cell(row, String(c.rollovers));
  }
  const perMinute = msg.trades_per_minute || {};
  const syms = document.querySelector("#symbols tbody");
  syms.replaceChildren();
  for (const s of health.symbols) {
    const row = syms.insertRow();
    cell(row, s.symbol);
    cell(row, s.venue);
    cell(row, s.last_tick_age_s === null ? "—" : `${s.last_tick_age_s.toFixed(1)} s ago`);
    const rate = perMinute[s.symbol];
    cell(row, rate === undefined ? "—" : Math.round(rate).toLocaleString());
    cell(row, s.stale ? "stale" : "fresh", s.stale ? "state-stale" : "state-fresh");
  }
  showEngine(msg.engine, msg.account);
}

function showEngine(engine, account) {
  const section = document.getElementById("engine");
  section.hidden = !engine && !account;
  for (const [symbol, chart] of state.charts) {
    const badge = chart.card.querySelector(".position");
    const pos = account && account.positions[symbol];
    badge.hidden = !pos;
    if (pos) {
      const p = chart.precision ?? 2;
      badge.textContent = `${signed(pos.quantity, 4)} @ ${fmt(pos.average_price, p)}  ` +
        `PnL ${signed(pos.unrealised_pnl)}`;
      badge.className = `position ${pos.unrealised_pnl >= 0 ? "up" : "down"}`;
    }
  }
  if (section.hidden) return;
  const figures = [];
  if (engine) {
    figures.push(["predictor", engine.predictor], ["timeframe", engine.timeframe],
      ["predictions", String(engine.predictions)],
      ["signals", `${engine.signals} (${engine.buy_signals} buy, ${engine.sell_signals} sell)`]);
  }
  if (account) {
    figures.push(["equity", account.equity.toFixed(2)],
      ["realised PnL", signed(account.realised_pnl)], ["unrealised PnL", signed(account.unrealised_pnl)],
      ["fees", account.fees_paid.toFixed(2)], ["trades", String(account.trades)]);
  }
  const dl = document.getElementById("engine-figures");
  dl.replaceChildren();
  for (const [name, value] of figures) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    dd.dataset.figure = name;
    if (name.endsWith("PnL")) dd.className = value.startsWith("-") ? "down" : "up";
    div.append(dt, dd);
    dl.appendChild(div);
  }
  const body = document.querySelector("#positions tbody");
  body.replaceChildren();
  for (const [symbol, pos] of Object.entries(account ? account.positions : {})) {
    const row = body.insertRow();
    const p = state.charts.get(symbol)?.precision ?? 2;
    cell(row, symbol);
    cell(row, signed(pos.quantity, 4));
    cell(row, fmt(pos.average_price, p));
    cell(row, fmt(pos.mark, p));
    cell(row, signed(pos.unrealised_pnl), pos.unrealised_pnl >= 0 ? "up" : "down");
  }
  if (!body.rows.length) {
    const row = body.insertRow();
    cell(row, "no open position");
    row.cells[0].colSpan = 5;
  }
}

// --- messages -----------------------------------------------------------------------
function switchButton(nav, label, data, onClick) {
  const b = document.createElement("button");
  b.textContent = label;
  Object.assign(b.dataset, data);
  b.addEventListener("click", onClick);
  nav.appendChild(b);
}

function onHello(msg) {
  state.symbols = msg.symbols;
  state.timeframes = msg.timeframes;
  state.series.clear();
  for (const c of state.charts.values()) c.chart.remove();
  state.charts.clear();
  document.getElementById("charts").replaceChildren();
  const nav = document.getElementById("timeframes");
  nav.replaceChildren();
  for (const tf of msg.timeframes) {
    switchButton(nav, tf, { timeframe: tf }, () => setTimeframe(tf));
  }
  const symbolsNav = document.getElementById("symbol-switch");
  symbolsNav.replaceChildren();
  if (msg.symbols.length > 1) {
    switchButton(symbolsNav, "all", { symbol: ALL }, () => setSymbol(ALL));
  }
  for (const symbol of msg.symbols) {
    switchButton(symbolsNav, symbol, { symbol }, () => setSymbol(symbol));
    createCard(symbol);
  }
  const keep = state.timeframe && msg.timeframes.includes(state.timeframe);
  setTimeframe(keep ? state.timeframe : msg.default_timeframe);
  // A phone shows one chart at a time; a wider screen every symbol.
  const first = NARROW.matches && msg.symbols.length > 1 ? msg.symbols[0] : ALL;
  setSymbol(msg.symbols.includes(state.symbol) ? state.symbol : first);
}

function onHistory(msg) {
  const data = seriesData(msg.symbol, msg.timeframe);
  data.candles = [];
  data.completed = new Set();
  for (const bar of msg.bars) {
    upsert(data.candles, bar);
    data.completed.add(bar.time);
  }
  if (msg.current) upsert(data.candles, msg.current);
  data.markers = msg.signals.slice().sort((a, b) => a.time - b.time);
  if (msg.timeframe === state.timeframe) redraw(msg.symbol);
}

function onUpdate(msg) {
  for (const bar of msg.bars) applyCandle(bar, true);
  for (const bar of msg.current) applyCandle(bar, false);
  for (const signal of msg.signals) addSignal(signal);
}

const handlers = {
  hello: onHello,
  history: onHistory,
  update: onUpdate,
  status: showStatus,
};

function setLink(text) {
  const pill = document.getElementById("link");
  pill.textContent = text;
  pill.className = `pill ${text}`;
  state.connected = text === "live";
}

function connect(delay) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.onopen = () => { setLink("live"); delay = 500; };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    state.messages += 1;
    const handler = handlers[msg.type];
    if (handler) handler(msg);
  };
  ws.onclose = () => {
    setLink("reconnecting");
    setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
  };
}

connect(500);
