// Fleet: every unit, the config it should run, what its agent last reported, and
// whether it is current, behind, failed or unreported; counts at the top; filters.

import { get } from "../api.js";
import { fill, h } from "../dom.js";
import { delta, groupConfigs, groupKey, STATUSES, unitStatus } from "../model.js";
import { errorView } from "../ui.js";
import { unitsTable } from "./applications.js";

// Filters survive leaving the page and coming back (not a reload: nothing to hide, nothing to keep).
const filters = { application: "", status: "", text: "" };

export function mount(root, route, ctx) {
  document.title = "Fleet · genconf";
  if (route.query.has("status")) filters.status = route.query.get("status");
  if (route.query.has("application")) filters.application = route.query.get("application");
  const counts = h("div", { class: "counts", role: "group", "aria-label": "Units by status" });
  const appSelect = h("select", { id: "fleet-app", name: "application" });
  const statusSelect = h("select", { id: "fleet-status", name: "status" },
    h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, s)));
  const text = h("input", { id: "fleet-text", name: "text", type: "search", placeholder: "unit, branch, hash or message", value: filters.text });
  statusSelect.value = filters.status;
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const filterBar = h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "field inline" }, h("label", { for: "fleet-app" }, "Application"), appSelect),
    h("div", { class: "field inline" }, h("label", { for: "fleet-status" }, "Status"), statusSelect),
    h("div", { class: "field inline grow" }, h("label", { for: "fleet-text" }, "Search"), text));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Fleet")), counts, filterBar, body);

  let units = [];
  let configs = {};

  const draw = () => {
    const shown = units.filter((u) => {
      const c = configs[groupKey(u.application, u.branch)];
      const expected = c && !c.error ? c.hash : "";
      if (filters.application && u.application !== filters.application) return false;
      if (filters.status && unitStatus(u, expected) !== filters.status) return false;
      if (filters.text) {
        const needle = filters.text.toLowerCase();
        const hay = [u.name, u.branch || "master", expected, u.applied && u.applied.hash, u.applied && u.applied.message]
          .filter(Boolean).join(" ").toLowerCase();
        if (!hay.includes(needle)) return false;
      }
      return true;
    });
    const note = shown.length === units.length ? `${units.length} units` : `${shown.length} of ${units.length} units`;
    const errors = Object.values(configs).filter((c) => c.error).map((c) => errorView(c.error));
    fill(body, errors, h("p", { class: "hint", role: "status" }, note),
      unitsTable(shown, configs, { empty: units.length ? "No unit matches these filters." : "No units yet." }));
  };

  const drawCounts = () => {
    const tally = { all: units.length, current: 0, behind: 0, failed: 0, unreported: 0 };
    for (const u of units) {
      const c = configs[groupKey(u.application, u.branch)];
      const s = unitStatus(u, c && !c.error ? c.hash : "");
      if (s in tally) tally[s] += 1;
    }
    fill(counts, ["all", ...STATUSES].map((s) => {
      const pressed = (filters.status || "all") === s;
      return h("button", {
        type: "button", class: `count status-${s}`, "aria-pressed": String(pressed),
        dataset: { status: s },
        onclick: () => {
          filters.status = s === "all" ? "" : s;
          statusSelect.value = filters.status;
          drawCounts();
          draw();
        },
      }, h("span", { class: "n" }, String(tally[s])), h("span", { class: "label" }, s));
    }));
  };

  appSelect.addEventListener("change", () => { filters.application = appSelect.value; draw(); });
  statusSelect.addEventListener("change", () => { filters.status = statusSelect.value; drawCounts(); draw(); });
  text.addEventListener("input", () => { filters.text = text.value.trim(); draw(); });

  return {
    async refresh() {
      try {
        units = await get("/units");
        configs = await groupConfigs(units);
        const apps = [...new Set(units.map((u) => u.application))].sort();
        if (filters.application && !apps.includes(filters.application)) apps.push(filters.application);
        fill(appSelect, h("option", { value: "" }, "all applications"), apps.map((a) => h("option", { value: a }, a)));
        appSelect.value = filters.application;
        drawCounts();
        draw();
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant: (e) => ["application", "unit", "branch"].includes(delta(e).kind),
  };
}
