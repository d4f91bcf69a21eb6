// Summary pages (overview, workers, backfills, events): the part marked `data-fragment` is
// fetched again when the server's event stream reports a change, at most once a second.
// An idle page makes no request: the EventSource waits on a stream that the server feeds
// from an in-memory change counter.
import { localiseTimes } from "./app.js";

const part = document.getElementById("live-part");
const MIN_GAP_MS = 1000;
let last = 0;
let timer = 0;
let busy = false;

async function refresh() {
  timer = 0;
  if (busy) { schedule(); return; }
  busy = true;
  last = Date.now();
  try {
    const res = await fetch(part.dataset.fragment, { headers: { Accept: "text/html" } });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");  // inert
    part.replaceChildren(...doc.body.childNodes);
    localiseTimes(part);
    tickAges();
    part.dataset.updated = String(Number(part.dataset.updated || 0) + 1);
  } finally {
    busy = false;
  }
}

function schedule() {
  if (timer) return;
  timer = setTimeout(refresh, Math.max(150, last + MIN_GAP_MS - Date.now()));
}

// "12 s ago" labels count up locally (no request); a stale heartbeat turns red.
function tickAges() {
  const now = Date.now() / 1000;
  for (const el of document.querySelectorAll(".ago[data-ts]")) {
    const secs = Math.max(0, Math.round(now - Number(el.dataset.ts)));
    el.textContent = secs < 120 ? `${secs} s ago` : `${Math.round(secs / 60)} min ago`;
    el.classList.toggle("stale", secs > Number(el.dataset.stale || 60));
  }
}

if (part) {
  const live = document.getElementById("live");
  // From the event the page was rendered at, so nothing between render and connect is lost.
  const source = new EventSource(`/api/v1/stream?after=${Number(part.dataset.after || 0)}`);
  for (const kind of JSON.parse(part.dataset.kinds || "[]")) source.addEventListener(kind, schedule);
  source.onmessage = schedule;
  source.onopen = () => live?.classList.add("on");
  source.onerror = () => live?.classList.remove("on");
  tickAges();
  setInterval(tickAges, 1000);
}
document.documentElement.dataset.ready = "1";
