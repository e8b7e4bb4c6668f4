// Retrieval testing (Dify's hit testing): a query against the chosen dataset through
// POST /v1/datasets/{id}/retrieve with a mode, top-k, score threshold and metadata filters; the
// records with their scores and highlights. A highlight is the chunk's text HTML-escaped by
// Elasticsearch with <em> marks: only those marks become elements, everything else is decoded to
// text and set as text, so a chunk's own markup is shown, never run.
"use strict";

import { $, api, el } from "./common.js";
import { view } from "./documents.js";

const ENTITY = /&(#x[0-9a-f]+|#[0-9]+|lt|gt|amp|quot|apos);/gi;
const NAMED = { lt: "<", gt: ">", amp: "&", quot: "\"", apos: "'" };

function decoded(escaped) {
  return escaped.replace(ENTITY, (whole, name) => {
    const lower = name.toLowerCase();
    if (lower in NAMED) return NAMED[lower];
    const code = lower.startsWith("#x") ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

// One highlight fragment as nodes: text, and <mark> around what the query matched.
export function highlighted(fragment) {
  const paragraph = el("p", null, "highlight");
  fragment.split(/(<em>|<\/em>)/).reduce((marked, piece) => {
    if (piece === "<em>") return true;
    if (piece === "</em>") return false;
    if (piece) paragraph.append(marked ? el("mark", decoded(piece)) : document.createTextNode(decoded(piece)));
    return marked;
  }, false);
  return paragraph;
}

// "name=value" lines; a value that reads as a number or true/false is sent as one.
function filters(text) {
  const metadata = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`a filter is name=value: ${line}`);
    const value = line.slice(at + 1).trim();
    metadata[line.slice(0, at).trim()] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value)
      : value === "true" ? true : value === "false" ? false : value;
  }
  return metadata;
}

function recordItem(record, rank) {
  const item = el("li");
  item.dataset.documentId = record.document_id;
  const head = el("div", null, "record-head");
  head.append(el("strong", `#${rank} · ${record.score.toFixed(4)}`, "score"),
              el("span", ` ${record.name} · chunk ${record.position + 1}`));
  const modes = Object.entries(record.scores || {}).filter(([, v]) => v !== null && v !== undefined)
    .map(([mode, v]) => `${mode} ${Number(v).toFixed(4)}`).join(" · ");
  if (modes) head.append(el("span", ` (${modes})`, "muted"));
  item.append(head);
  if (record.highlights?.length) item.append(...record.highlights.map(highlighted));
  else item.append(el("p", record.matched.length > 400 ? `${record.matched.slice(0, 400)}…` : record.matched, "chunk-text"));
  return item;
}

$("retrieval").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!view.dataset) return;
  const body = { query: $("query").value, mode: $("mode").value, top_k: Number($("top-k").value) || 5 };
  const threshold = $("threshold").value.trim();
  if (threshold) body.score_threshold = Number(threshold);
  try {
    const metadata = filters($("filters").value);
    if (Object.keys(metadata).length) body.metadata = metadata;
  } catch (error) {
    $("retrieval-summary").textContent = error.message;
    return;
  }
  const started = performance.now();
  const answer = await api(`/v1/datasets/${encodeURIComponent(view.dataset)}/retrieve`, { method: "POST", body })
    .catch((error) => ({ error }));
  if (answer.error) {
    $("retrieval-summary").textContent = answer.error.message;
    $("records").replaceChildren();
    return;
  }
  $("retrieval-summary").textContent =
    `${answer.records.length} record${answer.records.length === 1 ? "" : "s"} in ${Math.round(performance.now() - started)} ms`;
  $("records").replaceChildren(...answer.records.map((record, i) => recordItem(record, i + 1)));
});
