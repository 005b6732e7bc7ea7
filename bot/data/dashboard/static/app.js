// bot-stream dashboard: draws what the server's WebSocket (/ws) sends.
//
// Messages: hello (symbols, timeframes), history (per symbol and timeframe),
// update (completed bars, bars being built, signals; throttled by the server)
// and status (health report and metrics). The page keeps every timeframe's
// candles and shows one timeframe at a time; window.dashboard exposes the
// counts it draws (and each chart card carries them as data attributes).
"use strict";

const LWC = window.LightweightCharts;
const COLORS = {
  up: "#26a69a", down: "#ef5350", unknown: "#4b5263", text: "#d1d4dc", grid: "#1e222d",
  line: "#2a2e39", panel: "#131722", buy: "#26a69a", sell: "#ef5350",
};
const MAX_CANDLES = 5000;

const state = {
  symbols: [],
  timeframes: [],
  timeframe: null,
  series: new Map(),   // "SYMBOL|TF" -> {candles: [...], completed: Set(time), markers: [...]}
  charts: new Map(),   // symbol -> {chart, candles, total, sided, buy, markers, card, precision}
  messages: 0,
  connected: false,
};

const key = (symbol, tf) => `${symbol}|${tf}`;

function seriesData(symbol, tf) {
  const k = key(symbol, tf);
  if (!state.series.has(k)) state.series.set(k, { candles: [], completed: new Set(), markers: [] });
  return state.series.get(k);
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
  setTimeframe,
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
  const newest = upsert(data.candles, candle);
  if (completed) data.completed.add(candle.time);
  if (candle.timeframe !== state.timeframe) return;
  const chart = state.charts.get(candle.symbol);
  if (!chart) return;
  if (newest) {
    ensurePrecision(chart, candle.close);
    const p = points(candle);
    chart.candles.update(p.candle);
    chart.total.update(p.total);
    chart.sided.update(p.sided);
    chart.buy.update(p.buy);
  } else {
    redraw(candle.symbol);
  }
  updateHead(candle.symbol);
}

function points(c) {
  return {
    candle: { time: c.time, open: c.open, high: c.high, low: c.low, close: c.close },
    total: { time: c.time, value: c.volume },
    sided: { time: c.time, value: c.buy_volume + c.sell_volume },
    buy: { time: c.time, value: c.buy_volume },
  };
}

function addSignal(signal) {
  const data = seriesData(signal.symbol, signal.timeframe);
  data.markers.push(signal);
  data.markers.sort((a, b) => a.time - b.time);
  if (signal.timeframe === state.timeframe) drawMarkers(signal.symbol);
}

// --- charts -------------------------------------------------------------------------
function createCard(symbol) {
  const card = document.createElement("article");
  card.className = "card";
  card.dataset.symbol = symbol;
  card.innerHTML = `
    <div class="card-head">
      <h3></h3><span class="price">—</span><span class="change"></span>
      <span class="ohlc"></span>
      <div class="imbalance" title="taker buy share of the bar being built">
        <span class="buy-share">buy —</span><div class="meter"><div></div></div>
      </div>
    </div>
    <div class="chart"></div>`;
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
      barSpacing: 9, rightOffset: 4,
    },
    crosshair: { mode: 0 },
  });
  const candles = chart.addSeries(LWC.CandlestickSeries, {
    upColor: COLORS.up, downColor: COLORS.down, borderVisible: false,
    wickUpColor: COLORS.up, wickDownColor: COLORS.down,
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
  state.charts.set(symbol, { chart, candles, total, sided, buy, markers, card, precision: null });
}

function ensurePrecision(chart, price) {
  if (chart.precision !== null || !(price > 0)) return;
  const precision = Math.min(8, Math.max(2, 5 - Math.floor(Math.log10(price))));
  chart.precision = precision;
  chart.candles.applyOptions({
    priceFormat: { type: "price", precision, minMove: Math.pow(10, -precision) },
  });
}

function redraw(symbol) {
  const chart = state.charts.get(symbol);
  const data = seriesData(symbol, state.timeframe);
  const pts = data.candles.map(points);
  if (pts.length) ensurePrecision(chart, data.candles[data.candles.length - 1].close);
  chart.candles.setData(pts.map((p) => p.candle));
  chart.total.setData(pts.map((p) => p.total));
  chart.sided.setData(pts.map((p) => p.sided));
  chart.buy.setData(pts.map((p) => p.buy));
  chart.chart.applyOptions({ timeScale: { secondsVisible: state.timeframe.endsWith("s") } });
  drawMarkers(symbol);
  updateHead(symbol);
}

function drawMarkers(symbol) {
  const chart = state.charts.get(symbol);
  const data = seriesData(symbol, state.timeframe);
  chart.markers.setMarkers(data.markers.map((m) => ({
    time: m.time,
    position: m.direction === "buy" ? "belowBar" : "aboveBar",
    color: m.direction === "buy" ? COLORS.up : COLORS.down,
    shape: m.direction === "buy" ? "arrowUp" : "arrowDown",
    text: `${m.direction.toUpperCase()} ${(m.confidence * 100).toFixed(0)}%`,
  })));
  chart.card.dataset.markers = String(data.markers.length);
}

function fmt(value, precision) {
  return value === undefined || value === null ? "—" : value.toFixed(precision ?? 2);
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
  card.querySelector(".ohlc").textContent =
    `${state.timeframe}  O ${fmt(bar.open, p)}  H ${fmt(bar.high, p)}  L ${fmt(bar.low, p)}  ` +
    `C ${fmt(bar.close, p)}  V ${bar.volume.toPrecision(4)}  n ${bar.trade_count}`;
  const sided = bar.buy_volume + bar.sell_volume;
  const share = sided > 0 ? bar.buy_volume / sided : 0.5;
  card.querySelector(".buy-share").textContent = sided > 0 ? `buy ${(share * 100).toFixed(0)}%` : "buy —";
  card.querySelector(".meter div").style.width = `${share * 100}%`;
}

function setTimeframe(tf) {
  state.timeframe = tf;
  document.querySelectorAll("#timeframes button").forEach((b) => {
    b.classList.toggle("active", b.dataset.timeframe === tf);
  });
  for (const symbol of state.symbols) redraw(symbol);
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

function showStatus(health, metrics) {
  const pill = document.getElementById("health");
  pill.textContent = health.status;
  pill.className = `pill ${health.status}`;
  pill.title = health.reasons.join("\n");
  const rates = metrics.rates_10s || {};
  document.getElementById("tick-rate").textContent = rates.ticks === undefined ? "—" : rates.ticks.toFixed(1);
  document.getElementById("bar-count").textContent = metrics.counters.bars.toLocaleString();
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
  const syms = document.querySelector("#symbols tbody");
  syms.replaceChildren();
  for (const s of health.symbols) {
    const row = syms.insertRow();
    cell(row, s.symbol);
    cell(row, s.venue);
    cell(row, s.last_tick_age_s === null ? "—" : `${s.last_tick_age_s.toFixed(1)} s ago`);
    cell(row, String(s.ticks_last_minute));
    cell(row, s.stale ? "stale" : "fresh", s.stale ? "state-stale" : "state-fresh");
  }
}

// --- messages -----------------------------------------------------------------------
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
    const b = document.createElement("button");
    b.textContent = tf;
    b.dataset.timeframe = tf;
    b.addEventListener("click", () => setTimeframe(tf));
    nav.appendChild(b);
  }
  for (const symbol of msg.symbols) createCard(symbol);
  const keep = state.timeframe && msg.timeframes.includes(state.timeframe);
  setTimeframe(keep ? state.timeframe : msg.default_timeframe);
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
  status: (msg) => showStatus(msg.health, msg.metrics),
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
