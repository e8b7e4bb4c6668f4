// The pipeline over the last hour as line charts in inline SVG: records per second and lag per
// stage, and the indexing latency (p50, p95) of the documents completed within each sample.
// Drawn from /v1/ops/history (samples the gateway keeps); a sample without a value is a gap.
"use strict";

import { $, el } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560, HEIGHT = 180, LEFT = 48, RIGHT = 8, TOP = 8, BOTTOM = 22;

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function short(value) {
  if (value === 0) return "0";
  if (Math.abs(value) >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  return Math.abs(value) >= 10 ? value.toFixed(0) : value.toFixed(value >= 1 ? 1 : 2);
}

// series: [{name, points: [[epoch seconds, value | null], ...]}]
function lineChart(box, series, unit, span) {
  const [from, to] = span;
  const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => v !== null && v !== undefined);
  const top = Math.max(...values, 0) || 1;
  const x = (t) => LEFT + ((t - from) / Math.max(to - from, 1)) * (WIDTH - LEFT - RIGHT);
  const y = (v) => TOP + (1 - v / top) * (HEIGHT - TOP - BOTTOM);
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart" });
  chart.dataset.points = String(values.length);
  for (const fraction of [0, 0.5, 1]) {
    const level = y(top * fraction);
    chart.append(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: level, y2: level, class: "grid" }),
                 svg("text", { x: LEFT - 4, y: level + 4, class: "tick", "text-anchor": "end" }, short(top * fraction)));
  }
  const time = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  chart.append(svg("text", { x: LEFT, y: HEIGHT - 6, class: "tick" }, time(from)),
               svg("text", { x: WIDTH - RIGHT, y: HEIGHT - 6, class: "tick", "text-anchor": "end" }, time(to)));
  const legend = el("div", null, "legend");
  series.forEach((s, i) => {
    let d = "";
    let pen = false;
    s.points.forEach(([t, v], n) => {
      if (v === null || v === undefined) { pen = false; return; }
      const alone = !pen && (s.points[n + 1]?.[1] ?? null) === null;
      if (alone) chart.append(svg("circle", { cx: x(t), cy: y(v), r: 2, class: `dot series-${i}` }));
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)} ${y(v).toFixed(1)} `;
      pen = true;
    });
    chart.append(svg("path", { d: d.trim() || "M0 0", class: `series series-${i}` }));
    const last = [...s.points].reverse().find(([, v]) => v !== null && v !== undefined);
    const entry = el("span", null, "entry");
    entry.append(el("i", null, `swatch series-${i}`), el("span", `${s.name} ${last ? short(last[1]) : "–"}${unit}`));
    legend.append(entry);
  });
  box.replaceChildren(chart, legend);
}

export function renderCharts(history) {
  const samples = history.samples;
  $("charts-span").textContent = samples.length
    ? `· last ${Math.max(1, Math.round((samples.at(-1).at - samples[0].at) / 60))} min, a sample every ${history.every_seconds} s`
    : "· no sample yet";
  if (!samples.length) return;
  const span = [samples[0].at, samples.at(-1).at];
  const stages = Object.keys(samples.at(-1).stages);
  const perStage = (field) => stages.map((stage) => ({
    name: stage, points: samples.map((s) => [s.at, s.stages[stage]?.[field] ?? null]),
  }));
  lineChart($("chart-throughput"), perStage("per_second"), "/s", span);
  lineChart($("chart-lag"), perStage("lag"), "", span);
  lineChart($("chart-latency"), ["p50", "p95"].map((p) => ({
    name: p, points: samples.map((s) => [s.at, s.latency ? s.latency[p] : null]),
  })), " s", span);
}
