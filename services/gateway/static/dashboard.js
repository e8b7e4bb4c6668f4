// The operations dashboard: one live stream (/v1/ops/events, server-sent events read through
// fetch so the API key travels in a header) feeding the pipeline table and the datasets, the
// pipeline's last hour as charts (/v1/ops/history), the chosen dataset's documents
// (documents.js) and retrieval testing (retrieval.js).
"use strict";

import { renderCharts } from "./charts.js";
import { $, api, badge, el, headers, startDataset, toast, who } from "./common.js";
import { onStates, resetDocuments, selectDataset, view } from "./documents.js";
import "./retrieval.js";

let stream = null;   // AbortController of the live stream
let charting = null; // timer of the next history read

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds < 60 ? `${Math.round(seconds)} s ago` : `${Math.round(seconds / 60)} min ago`;
}

// -- pipeline and datasets (the overview event) -------------------------------------------

function renderPipeline(pipeline) {
  const body = $("pipeline").tBodies[0];
  body.replaceChildren(...pipeline.stages.map((stage) => {
    const row = el("tr");
    row.dataset.stage = stage.stage;
    const lag = (lane) => stage.lanes.find((l) => l.lane === lane)?.lag ?? "–";
    row.append(
      el("td", stage.stage), el("td", stage.replicas, stage.replicas ? "" : "error-text"),
      el("td", lag("interactive")), el("td", lag("bulk")),
      el("td", stage.per_second ?? "–"), el("td", ago(stage.seconds_since_heartbeat)),
    );
    return row;
  }));
  $("dead-letters").textContent = pipeline.dead_letters ?? "–";
  if (pipeline.error) toast(`pipeline: ${pipeline.error}`);
  const stages = new Set(pipeline.stages.map((s) => s.stage));
  $("services").replaceChildren(...Object.entries(pipeline.services)
    .filter(([name]) => !stages.has(name))
    .map(([name, s]) => el("span", `${name}: ${s.replicas} alive, ${ago(s.seconds_since_heartbeat)} `)));
}

function renderDatasets(datasets) {
  if (!view.dataset && datasets.length) selectDataset(datasets[0].id, datasets[0].name);
  $("datasets").replaceChildren(...datasets.map((dataset) => {
    const item = el("li");
    item.dataset.datasetId = dataset.id;
    if (dataset.id === view.dataset) {
      item.classList.add("selected");
      $("dataset-name").textContent = `· ${dataset.name}`;
    }
    item.append(el("strong", dataset.name), el("span", ` ${dataset.documents} document${dataset.documents === 1 ? "" : "s"} `));
    for (const [status, count] of Object.entries(dataset.statuses)) item.append(badge(status, count));
    for (const source of dataset.sources ?? []) item.append(sourceLine(source));
    item.addEventListener("click", () => selectDataset(dataset.id, dataset.name));
    return item;
  }));
}

// A source and its last run: when, how it ended, what it did.
function sourceLine(source) {
  const run = source.last_run;
  const line = el("div", `${source.kind} · ${source.name} (${source.every ? `every ${source.every} s` : "manual"}): `, "source");
  if (!run) {
    line.append(el("span", "never synced"));
    return line;
  }
  const when = new Date(run.finished_at ?? run.started_at).toLocaleString();
  line.append(
    el("span", run.status, run.status === "error" ? "error-text" : ""),
    el("span", ` ${when} · ${run.created} new, ${run.updated} updated, ${run.unchanged} unchanged, ` +
      `${run.deleted} deleted, ${run.failed} failed`),
  );
  if (run.errors.length) line.title = run.errors.map((e) => `${e.item ?? "listing"}: ${e.reason}`).join("\n");
  return line;
}

// -- the charts: read again once per sample ------------------------------------------------

async function chart() {
  clearTimeout(charting);
  let every = 10;
  try {
    const history = await api("/v1/ops/history");
    every = history.every_seconds;
    renderCharts(history);
  } finally {
    charting = setTimeout(chart, every * 1000);
  }
}

// -- the live stream -----------------------------------------------------------------------

function dispatch(block) {
  let name = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) name = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (!data) return;
  const payload = JSON.parse(data);
  if (name === "overview") {
    renderPipeline(payload.pipeline);
    renderDatasets(payload.datasets);
  } else if (name === "states") {
    onStates(payload);
  }
}

function setLive(on) {
  const live = $("live");
  live.className = on ? "on" : "off";
  live.textContent = on ? "live" : "reconnecting";
}

async function follow() {
  const controller = new AbortController();
  stream = controller;
  while (stream === controller) {
    try {
      const response = await fetch("/v1/ops/events", { headers: headers(), signal: controller.signal });
      if (!response.ok) throw new Error(`events: ${response.status}`);
      setLive(true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      toast(String(error.message || error));
    }
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

$("who").addEventListener("submit", (event) => {
  event.preventDefault();
  who.key = $("key").value.trim();
  who.tenant = $("tenant").value.trim() || "default";
  sessionStorage.setItem("indexflow-key", who.key);
  sessionStorage.setItem("indexflow-tenant", who.tenant);
  stream?.abort();
  resetDocuments();
  follow();
  chart().catch(() => {});
});

$("key").value = who.key;
$("tenant").value = who.tenant;
if (startDataset) selectDataset(startDataset, startDataset).catch(() => {});
follow();
chart().catch(() => {});
