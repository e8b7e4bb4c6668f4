// What every part of the dashboard shares: who the page acts as, the API, and making elements.
// Every value from the server reaches the page as text (textContent), never as markup.
"use strict";

const params = new URLSearchParams(location.search);
export const who = {
  key: sessionStorage.getItem("indexflow-key") || "",
  tenant: params.get("tenant") || sessionStorage.getItem("indexflow-tenant") || "default",
};
export const startDataset = params.get("dataset");

export const $ = (id) => document.getElementById(id);

export function headers(extra = {}) {
  return who.key ? { Authorization: `Bearer ${who.key}`, ...extra } : { "X-Tenant-Id": who.tenant, ...extra };
}

// The API's answer as JSON; a refusal is shown (its message) and thrown.
export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = `${path.split("?")[0]}: ${answer.message || response.status}`;
    toast(message);
    throw new Error(message);
  }
  return answer;
}

export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

export function badge(status, count) {
  return el("span", count === undefined ? status : `${status} ${count}`, `badge status-${status}`);
}

export function toast(message) {
  const box = $("toast");
  box.textContent = message;
  box.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove("shown"), 3000);
}

export function when(value) {
  if (!value) return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return date.toLocaleTimeString();
}
