// The run page's live parts: node states, mapped counts, timeline, task panel and logs,
// all pushed by the server's event streams (EventSource). Nothing here polls: a fetch only
// follows an event that says something changed.
import { localiseTimes } from "./app.js";

const root = document.getElementById("run");
const runId = root.dataset.runId;
const kinds = JSON.parse(root.dataset.kinds || "[]");
const byTr = new Map();     // task run id -> node element (tasks and mapped groups)
const byName = new Map();   // task name -> node element
const items = new Map();    // item task run id -> {name, state}
let selected = root.dataset.task || "";
let selectedItem = Number(root.dataset.item ?? -1);   // an element of a mapped task, or -1
let logSource = null;

for (const node of document.querySelectorAll("#dag .node")) {
  byName.set(node.dataset.task, node);
  if (node.dataset.tr) byTr.set(Number(node.dataset.tr), node);
}

function debounce(fn, ms) {
  let timer = 0;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

const latest = new Map();  // target id -> newest request: a slower, older answer is dropped

async function swap(id, url) {
  const seq = (latest.get(id) || 0) + 1;
  latest.set(id, seq);
  const res = await fetch(url, { headers: { Accept: "text/html" } });
  if (!res.ok || latest.get(id) !== seq) return;
  const html = await res.text();
  if (latest.get(id) !== seq) return;
  const doc = new DOMParser().parseFromString(html, "text/html");  // inert: no scripts run
  const target = document.getElementById(id);
  target.replaceChildren(...doc.body.childNodes);
  localiseTimes(target);
}

const enc = encodeURIComponent;
const refreshTimeline = debounce(() => swap("timeline", `/runs/${enc(runId)}/fragments/timeline`), 400);
function loadPanel() {
  if (!selected) return;
  const item = selectedItem >= 0 ? `&item=${selectedItem}` : "";
  swap("panel-detail", `/runs/${enc(runId)}/fragments/panel?task=${enc(selected)}${item}`);
}
// Events come in bursts: one fetch per burst. A click loads at once (loadPanel).
const refreshPanel = debounce(loadPanel, 250);

// The open item list of a mapped task follows its items' states without a fetch.
function setItemChip(id, state) {
  recountItems();
  const chip = document.querySelector(`#items .item[data-tr="${id}"]`);
  if (!chip || chip.dataset.state === state) return;
  chip.dataset.state = state;
  chip.title = `[${chip.dataset.item}] ${state}`;
}

// The item list's heading counts every item by state (DOM nodes, never HTML).
const recountItems = debounce(() => {
  const out = document.querySelector("#items .item-counts");
  if (!out) return;
  const name = document.getElementById("items").dataset.task;
  const counts = new Map();
  for (const it of items.values()) {
    if (it.name === name) counts.set(it.state, (counts.get(it.state) || 0) + 1);
  }
  if (counts.size === 0) return;
  const parts = [];
  for (const [state, n] of [...counts].sort()) {
    const badge = document.createElement("span");
    badge.className = `badge s-${state}`;
    badge.textContent = state.replace("_", " ");
    parts.push(badge, ` ${n} `);
  }
  out.replaceChildren(...parts);
}, 100);

function setNodeState(node, state) {
  if (node.dataset.state === state) return;
  node.dataset.state = state;
  const title = node.querySelector("title");
  if (title) title.textContent = `${node.dataset.task} · ${state}`;
}

function renderCounts(name) {
  const node = byName.get(name);
  const label = node?.querySelector(".counts");
  if (!label) return;
  let total = 0, done = 0, failed = 0, running = 0;
  for (const it of items.values()) {
    if (it.name !== name) continue;
    total += 1;
    if (it.state === "succeeded") done += 1;
    else if (it.state === "failed") failed += 1;
    else if (it.state === "running") running += 1;
  }
  label.textContent = `${done}/${total} done` + (running ? ` · ${running} running` : "") +
    (failed ? ` · ${failed} failed` : "");
}

// Item task runs are created when a mapped task expands: learn their ids once per burst.
const learnTasks = debounce(async () => {
  const res = await fetch(`/api/v1/runs/${enc(runId)}/tasks`);
  if (!res.ok) return;
  const touched = new Set();
  for (const tr of await res.json()) {
    if (tr.kind === "item") {
      items.set(tr.id, { name: tr.task, state: tr.state, index: tr.map_index });
      setItemChip(tr.id, tr.state);
      touched.add(tr.task);
    } else if (tr.kind !== "undo") {
      const node = byName.get(tr.task);
      if (node) { byTr.set(tr.id, node); setNodeState(node, tr.state); }
    }
  }
  touched.forEach(renderCounts);
}, 150);

function setRunState(state) {
  root.dataset.state = state;
  const badge = document.querySelector("#run-state .badge");
  if (badge) { badge.className = `badge s-${state}`; badge.textContent = state.replace("_", " "); }
  const finished = ["succeeded", "failed", "canceled"].includes(state);
  const cancel = document.getElementById("btn-cancel");
  const retry = document.getElementById("btn-retry");
  // A button the reader's role may not use stays disabled whatever the state.
  if (!cancel.dataset.denied) cancel.disabled = finished;
  if (!retry.dataset.denied) retry.disabled = !["failed", "canceled"].includes(state);
}

function onEvent(ev) {
  const e = JSON.parse(ev.data);
  if (e.task_run_id == null) {
    if (e.kind.startsWith("run.") && e.to_state) setRunState(e.to_state);
    if (e.kind === "task.mapped") learnTasks();
    refreshTimeline();
    return;
  }
  const node = byTr.get(e.task_run_id);
  if (node) {
    if (e.to_state) setNodeState(node, e.to_state);
    if (node.dataset.task === selected) refreshPanel();
    if (e.kind === "task.expand" || e.kind === "task.mapped") learnTasks();
  } else if (items.has(e.task_run_id)) {
    const it = items.get(e.task_run_id);
    if (e.to_state) { it.state = e.to_state; setItemChip(e.task_run_id, e.to_state); }
    renderCounts(it.name);
    if (it.name === selected && (selectedItem === it.index || !document.getElementById("items")))
      refreshPanel();
  } else {
    learnTasks();
  }
  if (e.kind === "task.claim" || (e.to_state && e.from_state === "running")) refreshTimeline();
}

function connect() {
  const live = document.getElementById("live");
  // From the event the page was rendered at: older history is already on the page.
  const after = Number(root.dataset.after || 0);
  const source = new EventSource(`/api/v1/stream?run_id=${enc(runId)}&after=${after}`);
  for (const kind of kinds) source.addEventListener(kind, onEvent);
  source.onmessage = onEvent;
  source.onopen = () => live?.classList.add("on");
  source.onerror = () => live?.classList.remove("on");
}

function followLogs() {
  if (logSource) { logSource.close(); logSource = null; }
  const box = document.getElementById("logs-box");
  const out = document.getElementById("logs");
  out.replaceChildren();
  box.hidden = !selected;
  if (!selected) return;
  // The task filter matches a mapped task's items too; one item's lines are picked here.
  const mapped = byName.get(selected)?.dataset.mapped === "1" && selectedItem < 0;
  const only = selectedItem >= 0 ? `${selected}[${selectedItem}]` : null;
  logSource = new EventSource(`/api/v1/runs/${enc(runId)}/logs/stream?after=0&task=${enc(selected)}`);
  logSource.addEventListener("log", (ev) => {
    const line = JSON.parse(ev.data);
    if (only !== null && line.task !== only) return;
    const row = document.createElement("div");
    row.className = `logline ${line.stream}`;
    row.textContent = (mapped ? `${line.task}  ` : "") + line.line;  // text, never HTML
    out.append(row);
    if (out.scrollHeight - out.scrollTop < out.clientHeight + 80) out.scrollTop = out.scrollHeight;
  });
  logSource.addEventListener("end", () => { logSource?.close(); logSource = null; });
}

function select(name, item = -1) {
  selected = name;
  selectedItem = item;
  root.dataset.task = name;
  root.dataset.item = String(item);
  for (const n of byName.values()) n.classList.toggle("selected", n.dataset.task === name);
  const url = new URL(location.href);
  url.searchParams.set("task", name);
  if (item >= 0) url.searchParams.set("item", String(item));
  else url.searchParams.delete("item");
  history.replaceState(null, "", url);
  for (const input of document.querySelectorAll("input[name='task']")) input.value = name;
  const rerun = document.querySelector("select[name='from_task']");
  if (rerun) rerun.value = name;
  followLogs();  // the stream first: it is the longer-lived request of the two
  loadPanel();
}

document.getElementById("dag")?.addEventListener("click", (ev) => {
  const node = ev.target.closest?.(".node");
  if (!node) return;
  ev.preventDefault();
  select(node.dataset.task);
});

// Items listed in the panel (a mapped task expanded) open their own details in place.
document.getElementById("panel-detail")?.addEventListener("click", (ev) => {
  const link = ev.target.closest?.("a[data-item]");
  if (!link || !selected) return;
  ev.preventDefault();
  select(selected, Number(link.dataset.item));
});

if (selected) byName.get(selected)?.classList.add("selected");
if (document.querySelector("#dag .node[data-mapped]")) learnTasks();
connect();
followLogs();
document.documentElement.dataset.ready = "1";
