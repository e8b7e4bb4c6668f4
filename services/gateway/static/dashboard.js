// The operations dashboard: one live stream (/v1/ops/events, server-sent events read through
// fetch so the API key travels in a header), the documents of the chosen dataset, commands.
// Every value from the server reaches the page as text, never as markup.
"use strict";

const params = new URLSearchParams(location.search);
const who = {
  key: sessionStorage.getItem("indexflow-key") || "",
  tenant: params.get("tenant") || sessionStorage.getItem("indexflow-tenant") || "default",
};
let selected = params.get("dataset");   // dataset id
let opened = null;                      // document id whose timeline is shown
const documents = new Map();            // document id -> state, of the selected dataset
let stream = null;                      // AbortController of the live stream

const $ = (id) => document.getElementById(id);

function headers(extra = {}) {
  return who.key ? { Authorization: `Bearer ${who.key}`, ...extra } : { "X-Tenant-Id": who.tenant, ...extra };
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function badge(status, count) {
  return el("span", count === undefined ? status : `${status} ${count}`, `badge status-${status}`);
}

function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("shown"), 3000);
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds < 60 ? `${Math.round(seconds)} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function when(value) {
  if (!value) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return date.toLocaleTimeString();
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
  if (!selected && datasets.length) selectDataset(datasets[0].id, datasets[0].name);
  $("datasets").replaceChildren(...datasets.map((dataset) => {
    const item = el("li");
    item.dataset.datasetId = dataset.id;
    if (dataset.id === selected) {
      item.classList.add("selected");
      $("dataset-name").textContent = `· ${dataset.name}`;
    }
    item.append(el("strong", dataset.name), el("span", ` ${dataset.documents} document${dataset.documents === 1 ? "" : "s"} `));
    for (const [status, count] of Object.entries(dataset.statuses)) item.append(badge(status, count));
    item.addEventListener("click", () => selectDataset(dataset.id, dataset.name));
    return item;
  }));
}

// -- documents of the selected dataset -----------------------------------------------------

async function selectDataset(id, name) {
  selected = id;
  opened = null;
  $("timeline-panel").hidden = true;
  $("dataset-name").textContent = `· ${name}`;
  for (const item of $("datasets").children) item.classList.toggle("selected", item.dataset.datasetId === id);
  documents.clear();
  renderDocuments();
  const response = await fetch(`/v1/datasets/${encodeURIComponent(id)}/documents?limit=200`, { headers: headers() });
  if (!response.ok) return toast(`documents: ${response.status}`);
  for (const state of (await response.json()).data) {
    if (!documents.has(state.document_id)) documents.set(state.document_id, state);
  }
  renderDocuments();
}

function documentRow(state) {
  const row = el("tr");
  row.dataset.documentId = state.document_id;
  row.classList.toggle("selected", state.document_id === opened);
  const status = el("td", null, "status");
  status.append(badge(state.status));
  const progress = el("td");
  const bar = el("progress");
  bar.max = 1;
  bar.value = state.progress ?? 0;
  progress.append(bar);
  const actions = el("td", null, "actions");
  for (const command of ["pause", "resume", "cancel", "retry"]) {
    const button = el("button", command);
    button.dataset.command = command;
    button.addEventListener("click", (event) => { event.stopPropagation(); send(state.document_id, command); });
    actions.append(button);
  }
  row.append(el("td", state.name || state.document_id), status, progress, el("td", state.segment_count),
             el("td", state.token_count), el("td", when(state.updated_at)), actions);
  row.addEventListener("click", () => openTimeline(state.document_id));
  return row;
}

function renderDocuments() {
  const shown = [...documents.values()].filter((s) => s.status !== "deleted")
    .sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0)).slice(0, 500);
  $("documents").tBodies[0].replaceChildren(...shown.map(documentRow));
}

async function send(documentId, command) {
  const url = `/v1/datasets/${encodeURIComponent(selected)}/documents/${encodeURIComponent(documentId)}/${command}`;
  const response = await fetch(url, { method: "POST", headers: headers() });
  const answer = await response.json().catch(() => ({}));
  toast(response.ok ? `${command}: accepted (revision ${answer.revision})` : `${command}: ${answer.message || response.status}`);
}

// -- one document's timeline -----------------------------------------------------------------

function openTimeline(documentId) {
  opened = documentId;
  for (const row of $("documents").tBodies[0].rows) row.classList.toggle("selected", row.dataset.documentId === opened);
  renderTimeline();
}

function renderTimeline() {
  const state = documents.get(opened);
  if (!state) return;
  $("timeline-panel").hidden = false;
  $("timeline-name").textContent = `· ${state.name || state.document_id}`;
  const facts = [
    ["status", state.status], ["revision", state.revision], ["lane", state.priority],
    ["progress", `${Math.round((state.progress || 0) * 100)} %`], ["segments", state.segment_count],
    ["tokens", state.token_count], ["attempts", state.attempts], ["OCR pages", state.ocr_pages],
    ["indexing latency", state.indexing_latency ? `${state.indexing_latency} s` : "–"],
    ["last error", state.error ? `${state.error} (${state.error_stage})` : "–"],
  ];
  $("timeline-facts").replaceChildren(...facts.flatMap(([name, value]) => [el("dt", name), el("dd", value ?? "–")]));
  const steps = Object.entries(state.transitions || {}).sort((a, b) => a[1].localeCompare(b[1]));
  $("timeline").replaceChildren(...steps.map(([status, at], i) => {
    const item = el("li");
    const next = steps[i + 1];
    const took = next ? ` (${((new Date(next[1]) - new Date(at)) / 1000).toFixed(2)} s)` : "";
    item.append(badge(status), el("span", ` ${new Date(at).toLocaleTimeString()}${took}`));
    return item;
  }));
}

// -- the live stream -----------------------------------------------------------------------

function onStates(states) {
  let changed = false;
  for (const state of states) {
    if (state.dataset_id !== selected) continue;
    documents.set(state.document_id, { ...documents.get(state.document_id), ...state });
    changed = true;
  }
  if (changed) {
    renderDocuments();
    if (opened) renderTimeline();
  }
}

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
  const badge = $("live");
  badge.className = on ? "on" : "off";
  badge.textContent = on ? "live" : "reconnecting";
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
  selected = null;
  documents.clear();
  renderDocuments();
  follow();
});

$("key").value = who.key;
$("tenant").value = who.tenant;
if (selected) selectDataset(selected, selected);
follow();
