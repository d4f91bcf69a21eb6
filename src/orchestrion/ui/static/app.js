// Shared behaviour for every page: local times, theme toggle, confirmations, search, form checks.

export function localiseTimes(root = document) {
  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  // A schedule's time of day: the clock time of its next fire, in the browser's zone.
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
  const utc = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium", timeZone: "UTC" });
  for (const el of root.querySelectorAll("time[datetime]")) {
    if (el.dataset.local) continue;
    const d = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(d.getTime())) continue;
    if (el.hasAttribute("data-clock")) {
      el.title = `${el.textContent} · next ${utc.format(d)} UTC`;  // the schedule's zone, UTC
      el.textContent = clock.format(d) + " (your time)";
      el.dataset.local = "1";
      continue;
    }
    el.title = el.textContent;            // UTC on hover
    el.textContent = fmt.format(d);       // the browser's time zone
    el.dataset.local = "1";
  }
}

function setupTheme() {
  const btn = document.getElementById("theme-toggle");
  if (!btn) return;
  btn.addEventListener("click", () => {
    const root = document.documentElement;
    const dark = root.dataset.theme
      ? root.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    root.dataset.theme = dark ? "light" : "dark";
    try { localStorage.setItem("orchestrion-theme", root.dataset.theme); } catch (e) { /* ignore */ }
  });
}

function setupConfirm() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) ev.preventDefault();
    });
  }
}

function setupSearch() {
  const box = document.getElementById("wf-search");
  const table = document.getElementById("wf-table");
  if (!box || !table) return;
  // Name and description, read once from the first cell (not repeated in the HTML).
  const rows = [...table.tBodies[0].rows].filter((r) => r.dataset.workflow !== undefined)
    .map((r) => [r, r.cells[0].textContent.toLowerCase()]);
  box.addEventListener("input", () => {
    const q = box.value.trim().toLowerCase();
    for (const [r, text] of rows) r.hidden = q !== "" && !text.includes(q);
  });
}

function checkField(el) {
  let msg = "";
  const v = el.value.trim();
  if (el.required && v === "") msg = "This value is required.";
  else if (el.dataset.json && v !== "") {
    try {
      const parsed = JSON.parse(v);
      const isArr = Array.isArray(parsed);
      if (el.dataset.json === "array" && !isArr) msg = "Enter a JSON array, like [1, 2].";
      if (el.dataset.json === "object" && (isArr || parsed === null || typeof parsed !== "object"))
        msg = "Enter a JSON object, like {\"a\": 1}.";
    } catch (e) { msg = "Not valid JSON."; }
  } else if (el.type === "number" && v !== "") {
    if (!Number.isFinite(Number(v))) msg = "Enter a number.";
    else if (el.step === "1" && !Number.isInteger(Number(v))) msg = "Enter a whole number.";
  }
  el.setCustomValidity(msg);
  const out = el.closest(".field")?.querySelector(".field-error");
  if (out) out.textContent = msg;
  return msg === "";
}

function setupTriggerForm() {
  const form = document.getElementById("trigger-form");
  if (!form) return;
  const inputs = [...form.querySelectorAll("input[name^='param.'], select, textarea")];
  for (const el of inputs) el.addEventListener("input", () => checkField(el));
  form.addEventListener("submit", (ev) => {
    const ok = inputs.map(checkField).every(Boolean);
    if (!ok) {
      ev.preventDefault();
      form.querySelector(":invalid")?.focus();
    }
  });
}

localiseTimes();
setupTheme();
setupConfirm();
setupSearch();
setupTriggerForm();
