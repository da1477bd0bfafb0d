// Live: the admin feed (GET /api/v1/watch) as it happens, newest first.

import { badge, fill, h } from "../dom.js";
import { delta } from "../model.js";

const KINDS = ["application", "unit", "branch", "generation"];
const shown = new Set(KINDS);

export function mount(root, route, ctx) {
  document.title = "Live · genconf";
  let paused = false;
  const status = h("p", { class: "hint", role: "status" });
  const rows = h("tbody", { id: "live-rows" });
  const pause = h("button", { type: "button", "aria-pressed": "false" }, "Pause");
  const clear = h("button", { type: "button", class: "quiet" }, "Clear");
  const kinds = h("fieldset", { class: "kinds" }, h("legend", {}, "Kinds"), KINDS.map((k) => {
    const id = `kind-${k}`;
    return h("span", { class: "check" }, h("input", {
      type: "checkbox", id, checked: shown.has(k),
      onchange: (e) => { if (e.target.checked) shown.add(k); else shown.delete(k); redraw(); },
    }), h("label", { for: id }, k));
  }));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Live"), h("div", { class: "tools" }, pause, clear)),
    h("p", { class: "hint" }, "Every change to the model as the server applies it (the admin feed), newest first."),
    h("div", { class: "filters" }, kinds), status,
    h("div", { class: "table-wrap" }, h("table", { class: "live" },
      h("thead", {}, h("tr", {}, ["Revision", "Received", "Kind", "Key", "What"].map((t) => h("th", { scope: "col" }, t)))), rows)));

  let cleared = 0; // events before this index of feed.recent are not shown
  const row = (event) => {
    const d = delta(event);
    return h("tr", { class: d.removed ? "removed" : "" },
      h("td", {}, h("code", { class: "rev" }, event.revision)),
      h("td", {}, event.received ? event.received.toLocaleTimeString() : ""),
      h("td", {}, badge(d.kind || event.type, "info")),
      h("td", {}, h("code", {}, d.key ?? "")),
      h("td", {}, describe(d)));
  };
  const visible = (event) => shown.has(delta(event).kind || event.type);
  const redraw = () => {
    const events = ctx.feed.recent.slice(cleared).filter(visible).reverse();
    fill(rows, events.map(row));
    drawStatus();
  };
  const drawStatus = () => {
    const n = rows.childElementCount;
    fill(status, paused ? "Paused: new events are kept and shown when you resume. " : "",
      n ? `${n} event${n === 1 ? "" : "s"} shown.` : "Waiting for changes…");
  };

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) redraw();
    else drawStatus();
  });
  clear.addEventListener("click", () => { cleared = ctx.feed.recent.length; redraw(); });

  const unsubscribe = ctx.feed.subscribe((event) => {
    if (event.type === "resync") return;
    if (paused || !visible(event)) return;
    rows.prepend(row(event));
    while (rows.childElementCount > 500) rows.lastChild.remove();
    drawStatus();
  });
  redraw();
  return {
    async refresh() {},
    relevant: () => false,
    dispose: unsubscribe,
  };
}

/** One line about what changed. */
function describe(d) {
  const v = d.value;
  if (d.removed || !v) return h("span", { class: "absent" }, "removed");
  switch (d.kind) {
    case "application":
      return `version ${v.version}; ${Object.keys(v.settings || {}).length} key(s) set`;
    case "unit": {
      const parts = [v.branch ? `tracks ${v.branch}` : "on master"];
      if (v.applied) parts.push(`applied ${String(v.applied.hash).slice(0, 12)} ${v.applied.ok ? "ok" : "failed"}`);
      return parts.join("; ");
    }
    case "branch": {
      const n = Object.values(v.changes || {}).reduce((sum, keys) => sum + Object.keys(keys).length, 0);
      return `${n} change(s)${v.track_applications && v.track_applications.length ? `; tracked by all of ${v.track_applications.join(", ")}` : ""}`;
    }
    case "generation":
      return `${v.kind}${v.branch ? ` of ${v.branch}` : ""}: ${Object.entries(v.versions || {}).map(([a, n]) => `${a} v${n}`).join(", ")}${v.reason ? ` (${v.reason})` : ""}`;
    default:
      return JSON.stringify(v).slice(0, 200);
  }
}
