// The chosen dataset's documents, paged by the server (GET .../documents?page&limit&keyword&status,
// newest first), filtered by status and searched by name; live states update the rows shown and
// bring a new document in (the page is read again, at most every REFETCH_MS). One document opens
// with its timeline and its chunks (GET .../segments, paged too).
"use strict";

import { $, api, badge, el, toast, when } from "./common.js";

const PAGE_SIZE = 50;
const CHUNKS_PAGE_SIZE = 20;
const REFETCH_MS = 2000;

export const view = { dataset: null, name: "", page: 1, pages: 1, keyword: "", status: "" };
const shown = new Map();   // document id -> state, of the page shown
let opened = null;         // document id whose timeline and chunks are shown
let chunksPage = 1;
let asked = 0;             // the newest listing asked for: an older answer arriving late is dropped
let refetch = null;

const path = (...parts) => `/v1/datasets/${parts.map(encodeURIComponent).join("/")}`;

export function selectDataset(id, name) {
  view.dataset = id;
  view.name = name;
  view.page = 1;
  closeDocument();
  $("dataset-name").textContent = `· ${name}`;
  for (const item of $("datasets").children) item.classList.toggle("selected", item.dataset.datasetId === id);
  shown.clear();
  renderRows();
  return loadPage();
}

export async function loadPage() {
  if (!view.dataset) return;
  const query = new URLSearchParams({ page: view.page, limit: PAGE_SIZE });
  if (view.keyword) query.set("keyword", view.keyword);
  if (view.status) query.set("status", view.status);
  const ticket = ++asked;
  const answer = await api(`${path(view.dataset)}/documents?${query}`);
  if (ticket !== asked) return;
  view.pages = Math.max(1, Math.ceil(answer.total / PAGE_SIZE));
  shown.clear();
  for (const state of answer.data) shown.set(state.document_id, state);
  renderRows();
  $("page-of").textContent = `page ${view.page} of ${view.pages} · ${answer.total} document${answer.total === 1 ? "" : "s"}`;
  $("documents-panel").dataset.total = String(answer.total);
  $("documents-panel").dataset.page = String(view.page);
  for (const [id, disabled] of [["first-page", view.page <= 1], ["previous-page", view.page <= 1],
                                ["next-page", view.page >= view.pages], ["last-page", view.page >= view.pages]]) {
    $(id).disabled = disabled;
  }
}

function goTo(page) {
  view.page = Math.min(Math.max(1, page), view.pages);
  return loadPage();
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
  row.append(el("td", state.name || state.document_id, "name"), status, progress, el("td", state.segment_count),
             el("td", state.token_count), el("td", when(state.updated_at)), actions);
  row.addEventListener("click", () => openDocument(state.document_id));
  return row;
}

function renderRows() {
  $("documents").tBodies[0].replaceChildren(...[...shown.values()].map(documentRow));
}

async function send(documentId, command) {
  const answer = await api(`${path(view.dataset, "documents", documentId, command)}`, { method: "POST" })
    .catch(() => null);
  if (answer) toast(`${command}: accepted (revision ${answer.revision})`);
}

// A document never searchable yet is (mostly) a new one: the newest, first on the unfiltered first
// page. The page read again after it corrects the few that are not.
const onTop = (state) => state.searchable_revision === null && state.status !== "deleted"
  && view.page === 1 && !view.keyword && !view.status;

// Live states: a row shown changes in place, a new document comes in on top; any other document
// not shown may belong on this page, which is read again.
export function onStates(states) {
  let missing = false;
  for (const state of states) {
    if (state.dataset_id !== view.dataset) continue;
    const known = shown.get(state.document_id);
    if (!known) {
      missing = true;
      if (onTop(state)) {
        shown.set(state.document_id, state);
        $("documents").tBodies[0].prepend(documentRow(state));
      }
      continue;
    }
    const merged = { ...known, ...state };
    shown.set(state.document_id, merged);
    const row = $("documents").querySelector(`tr[data-document-id="${CSS.escape(state.document_id)}"]`);
    row?.replaceWith(documentRow(merged));
    if (state.document_id === opened) renderTimeline();
  }
  if (missing && !refetch) {
    refetch = setTimeout(() => { refetch = null; loadPage(); }, REFETCH_MS);
  }
}

// -- one document: its timeline and its chunks -------------------------------------------------

function closeDocument() {
  opened = null;
  $("timeline-panel").hidden = true;
  $("chunks-panel").hidden = true;
}

function openDocument(documentId) {
  opened = documentId;
  chunksPage = 1;
  for (const row of $("documents").tBodies[0].rows) row.classList.toggle("selected", row.dataset.documentId === opened);
  renderTimeline();
  loadChunks();
}

function renderTimeline() {
  const state = shown.get(opened);
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

async function loadChunks() {
  const documentId = opened;
  const query = new URLSearchParams({ page: chunksPage, limit: CHUNKS_PAGE_SIZE });
  const answer = await api(`${path(view.dataset, "documents", documentId, "segments")}?${query}`).catch(() => null);
  if (documentId !== opened) return;
  $("chunks-panel").hidden = false;
  if (!answer) {
    $("chunks").replaceChildren(el("li", "no chunks to show (not indexed yet, or gone)", "muted"));
    $("chunks-of").textContent = "";
    return;
  }
  const pages = Math.max(1, Math.ceil(answer.total / CHUNKS_PAGE_SIZE));
  $("chunks-of").textContent = `${answer.total} chunk${answer.total === 1 ? "" : "s"} · page ${chunksPage} of ${pages}`;
  $("previous-chunks").disabled = chunksPage <= 1;
  $("next-chunks").disabled = !answer.has_more;
  $("chunks").replaceChildren(...answer.data.map((segment) => {
    const item = el("li");
    item.dataset.segmentId = segment.id;
    item.append(el("span", `#${segment.position} · ${segment.tokens ?? "–"} tokens · ${segment.word_count} characters`, "chunk-facts"),
                el("p", segment.content, "chunk-text"));
    for (const child of segment.child_chunks || []) item.append(el("p", child.content, "chunk-child"));
    return item;
  }));
}

export function resetDocuments() {
  view.dataset = null;
  shown.clear();
  closeDocument();
  renderRows();
}

// -- the toolbar ---------------------------------------------------------------------------------

let typing = null;
$("search-name").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { view.keyword = $("search-name").value.trim(); view.page = 1; loadPage(); }, 300);
});
$("filter-status").addEventListener("change", () => { view.status = $("filter-status").value; view.page = 1; loadPage(); });
$("first-page").addEventListener("click", () => goTo(1));
$("previous-page").addEventListener("click", () => goTo(view.page - 1));
$("next-page").addEventListener("click", () => goTo(view.page + 1));
$("last-page").addEventListener("click", () => goTo(view.pages));
$("previous-chunks").addEventListener("click", () => { chunksPage -= 1; loadChunks(); });
$("next-chunks").addEventListener("click", () => { chunksPage += 1; loadChunks(); });
