// Branches: the list, and one branch's changes (with from-values), the conflicts a
// commit would meet (read from /diff before committing), the units tracking it with
// their applied reports, and track / untrack / stage / commit / abort.

import { get, post, put, session } from "../api.js";
import { badge, fill, h, path, section, table, value, valueText, when, author } from "../dom.js";
import { delta, groupKey } from "../model.js";
import {
  errorView, field, formDialog, LocalError, noReason, notify, parseAssignments, reasonField, words,
} from "../ui.js";
import { unitsTable } from "./applications.js";

export function mount(root, route, ctx) {
  return route.args.length ? mountOne(root, route.args[0], ctx) : mountList(root, ctx);
}

function mountList(root, ctx) {
  document.title = "Branches · genconf";
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const add = session.canWrite
    ? h("button", { type: "button", class: "primary", onclick: () => addDialog(ctx) }, "New branch")
    : null;
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Branches"), h("div", { class: "tools" }, add)),
    h("p", { class: "hint" }, "A branch stages changes that only the units tracking it see, until it is committed to everyone or aborted."),
    body);
  return {
    async refresh() {
      try {
        const branches = await get("/branches");
        fill(body, table(["Name", "Changes", "Tracked by", "Created by", "Created"], branches.map((b) => {
          const changed = Object.entries(b.changes).map(([app, keys]) => `${app}: ${Object.keys(keys).length}`);
          return [
            h("a", { href: `#/branches/${encodeURIComponent(b.name)}` }, b.name),
            changed.length ? changed.join(", ") : h("span", { class: "absent" }, "none"),
            trackedBy(b),
            author(b),
            when(b.created_at),
          ];
        }), { empty: "No branches in flight." }));
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant: (e) => ["branch", "unit"].includes(delta(e).kind),
  };
}

function trackedBy(b) {
  const parts = [];
  if (b.track_applications.length) parts.push(`all of ${b.track_applications.join(", ")}`);
  if (b.units.length) parts.push(`${b.units.length} unit${b.units.length === 1 ? "" : "s"}`);
  return parts.length ? parts.join("; ") : h("span", { class: "absent" }, "no units");
}

function addDialog(ctx) {
  formDialog({
    title: "New branch",
    submit: "Create branch",
    intro: noReason("Creating a branch"),
    fields: [field({ name: "name", label: "Name", required: true, placeholder: "canary" })],
    async onSubmit(v) {
      const name = v.name.trim();
      await post("/branches", { name });
      notify(`Branch ${name} created: stage changes and track units.`);
      ctx.navigate(`#/branches/${encodeURIComponent(name)}`);
    },
  });
}

// -- one branch -----------------------------------------------------------------

function mountOne(root, name, ctx) {
  document.title = `${name} · branches · genconf`;
  const tools = h("div", { class: "tools" });
  const meta = h("p", { class: "meta" });
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  root.append(h("p", { class: "crumbs" }, h("a", { href: "#/branches" }, "Branches"), " / ", name),
    h("div", { class: "page-head" }, h("h1", {}, name), tools), meta, body);
  let branch = null;
  let diff = null;
  const conflictsOf = () => (diff ? diff.applications.flatMap((a) => a.conflicts) : []);

  if (session.canWrite) {
    // Disabled until the branch and its conflicts are read.
    const needs = { needs: "branch" };
    tools.append(
      h("button", { type: "button", disabled: true, dataset: needs, onclick: () => stageDialog(branch, ctx) }, "Stage change"),
      h("button", { type: "button", disabled: true, dataset: needs, onclick: () => trackDialog(branch, ctx) }, "Track units"),
      h("button", { type: "button", disabled: true, dataset: needs, class: "primary", onclick: () => commitDialog(branch, conflictsOf(), ctx) }, "Commit…"),
      h("button", { type: "button", disabled: true, dataset: needs, class: "danger-quiet", onclick: () => abortDialog(branch, ctx) }, "Abort…"));
  }

  return {
    async refresh() {
      try {
        const [b, d] = await Promise.all([get(`/branches/${path(name)}`), get(`/branches/${path(name)}/diff`)]);
        branch = b;
        diff = d;
        tools.querySelectorAll("[data-needs]").forEach((el) => { el.disabled = false; });
        // Each tracking unit with the hash it should run now and its agent's last report.
        const applied = b.applied || [];
        const units = applied.map((a) => ({ name: a.unit, application: a.unit.split("/")[0], branch: name, applied: a.report }));
        const configs = Object.fromEntries(applied.map((a) => [groupKey(a.unit.split("/")[0], name), { hash: a.hash }]));
        fill(meta, `created by ${author(b)} · `, when(b.created_at));
        fill(body,
          conflictsPanel(conflictsOf()),
          section("Changes", changesView(b)),
          section("Against master", h("p", { class: "hint" }, "What a commit would change in each application's effective config now."), diffView(d)),
          section("Tracking units", trackingView(b, units, configs, ctx)));
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant: (e) => ["branch", "unit", "application"].includes(delta(e).kind),
  };
}

function conflictsPanel(conflicts) {
  if (!conflicts.length) {
    return h("p", { class: "notice-inline ok", id: "conflicts", role: "status" }, "No conflicts: master still holds every value this branch started from.");
  }
  return h("section", { class: "panel conflict", id: "conflicts", "aria-labelledby": "conflicts-title" },
    h("h2", { id: "conflicts-title" }, `${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"} with master`),
    h("p", {}, "Master changed these keys since the branch touched them. A commit is refused unless forced (then the branch's value wins)."),
    table(["Application", "Key", "Branch started from", "Master now", "Branch value"],
      conflicts.map((c) => [c.application, h("code", {}, c.key), valueText(c.from), valueText(c.current), valueText(c.proposed)])));
}

function changesView(b) {
  const apps = Object.keys(b.changes).sort();
  if (!apps.length) return h("p", { class: "empty" }, "No changes staged yet.");
  return apps.map((app) => {
    const changes = b.changes[app];
    return h("div", { class: "group" }, h("h3", {}, h("a", { href: `#/applications/${encodeURIComponent(app)}` }, app)),
      table(["Key", "Change", "Value", "From (master when first touched)"], Object.keys(changes).sort().map((k) => {
        const c = changes[k];
        return [h("code", {}, k), c.op === "set" ? badge("set", "info") : badge("unset", "muted"),
          c.op === "set" ? value(c.value) : h("span", { class: "absent" }, "default"),
          c.from === null ? h("span", { class: "absent" }, "absent") : value(c.from)];
      })));
  });
}

export function diffView(d) {
  const apps = d.applications.filter((a) => a.entries.length);
  if (!apps.length) return h("p", { class: "empty" }, "No difference from master.");
  return apps.map((a) => h("div", { class: "group" }, h("h3", {}, a.application), entriesTable(a.entries)));
}

export function entriesTable(entries, { from = "Master", to = "Branch" } = {}) {
  return table(["Key", "", from, to], entries.map((e) => h("tr", { class: `kind-${e.kind}` },
    h("td", {}, h("code", {}, e.path)), h("td", {}, badge(e.kind, { added: "ok", removed: "bad", changed: "info" }[e.kind] || "")),
    h("td", { class: "old" }, e.old === null ? h("span", { class: "absent" }, "absent") : value(e.old)),
    h("td", { class: "new" }, e.text_diff ? h("pre", { class: "val diff" }, e.text_diff) : e.new === null ? h("span", { class: "absent" }, "absent") : value(e.new)))),
  { cls: "side-by-side" });
}

function trackingView(b, units, configs, ctx) {
  const parts = [];
  if (b.track_applications.length) {
    parts.push(h("p", {}, "Whole applications (units added later track it too): ",
      b.track_applications.map((app) => h("span", { class: "chip" }, app,
        session.canWrite ? h("button", { type: "button", class: "quiet small", "aria-label": `Untrack application ${app}`,
          onclick: () => untrack(b, { applications: [app] }, ctx) }, "untrack") : null))));
  }
  const grid = unitsTable(units, configs, { empty: "No unit tracks this branch: its changes reach nobody yet." });
  if (session.canWrite && units.length) {
    // One untrack button per unit row.
    grid.querySelector("thead tr")?.append(h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")));
    grid.querySelectorAll("tbody tr").forEach((tr, i) => tr.append(h("td", {},
      h("button", { type: "button", class: "quiet small", "aria-label": `Untrack ${units[i].name}`,
        onclick: () => untrack(b, { units: [units[i].name] }, ctx) }, "untrack"))));
  }
  parts.push(grid);
  return parts;
}

function untrack(b, body, ctx) {
  formDialog({
    title: `Untrack from ${b.name}`,
    submit: "Untrack",
    intro: [h("p", {}, `${[...(body.units || []), ...(body.applications || [])].join(", ")} will run master's config again.`),
      noReason("Untracking")],
    fields: [],
    async onSubmit() {
      await post(`/branches/${path(b.name)}/untrack`, body);
      notify("Untracked.");
      ctx.refresh();
    },
  });
}

async function stageDialog(b, ctx) {
  let apps = [];
  try {
    apps = await get("/applications");
  } catch (error) {
    notify(errorView(error), { kind: "error", sticky: true });
    return;
  }
  if (!apps.length) {
    notify("There is no application to change yet.", { kind: "error" });
    return;
  }
  formDialog({
    title: `Stage a change on ${b.name}`,
    submit: "Stage",
    intro: [h("p", {}, "Only units tracking this branch see it until the branch is committed."),
      noReason("Staging a branch change"), h("p", { class: "hint" }, "The commit asks for the reason.")],
    fields: [
      field({ name: "application", label: "Application", type: "select", options: apps.map((a) => a.name), value: Object.keys(b.changes)[0] }),
      field({ name: "set", label: "Set (KEY=VALUE per line)", type: "textarea", rows: 4, placeholder: "log-level=debug" }),
      field({ name: "unset", label: "Unset (back to the charm default)", placeholder: "key other-key" }),
    ],
    async onSubmit(v) {
      const app = apps.find((a) => a.name === v.application);
      const set = parseAssignments(v.set, app.schema);
      const unset = words(v.unset);
      if (!Object.keys(set).length && !unset.length) throw new LocalError("Nothing to stage: set or unset at least one key.");
      const body = {};
      if (Object.keys(set).length) body.set = set;
      if (unset.length) body.unset = unset;
      await put(`/branches/${path(b.name)}/config/${path(app.name)}`, body);
      notify(`Staged on ${b.name}.`);
      ctx.refresh();
    },
  });
}

function trackDialog(b, ctx) {
  formDialog({
    title: `Track ${b.name}`,
    submit: "Track",
    intro: [h("p", {}, "Name units, or whole applications (later units included), or a number of an application's units."),
      noReason("Tracking")],
    fields: [
      field({ name: "units", label: "Units", placeholder: "web/0 web/1" }),
      field({ name: "applications", label: "Whole applications", placeholder: "web" }),
      field({ name: "count", label: "Or a number of units…", type: "number", min: 0, placeholder: "2" }),
      field({ name: "application", label: "…of the application", placeholder: "web" }),
    ],
    async onSubmit(v) {
      const body = {};
      const units = words(v.units);
      const applications = words(v.applications);
      if (units.length) body.units = units;
      if (applications.length) body.applications = applications;
      if (v.count.trim()) {
        body.count = Number(v.count);
        body.application = v.application.trim();
      }
      if (!Object.keys(body).length) throw new LocalError("Name at least one unit or application.");
      const w = await post(`/branches/${path(b.name)}/track`, body);
      notify(`Now tracking ${b.name}: ${(w.units || []).join(", ") || "done"}.`);
      ctx.refresh();
    },
  });
}

function commitDialog(b, conflicts, ctx) {
  const intro = [h("p", {}, "Applies the changes to master for everyone, in one transaction: a new version of each application and one generation.")];
  if (conflicts.length) {
    intro.push(h("div", { class: "warnbox" },
      h("p", {}, h("strong", {}, `${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}: `),
        conflicts.map((c) => `${c.application} ${c.key}`).join(", "), ". Commit with force to let the branch's values win.")));
  }
  formDialog({
    title: `Commit ${b.name}`,
    submit: "Commit",
    intro,
    fields: [
      field({ name: "force", label: "Force: commit over conflicts (the branch's value wins)", type: "checkbox", value: false }),
      field({ name: "require_applied", label: "Require applied: refuse until every tracking unit reported the branch's config applied and ok", type: "checkbox" }),
      reasonField(),
    ],
    async onSubmit(v) {
      const w = await post(`/branches/${path(b.name)}/commit`, { force: v.force, require_applied: v.require_applied, reason: v.reason });
      const versions = Object.entries(w.versions || {}).map(([a, n]) => `${a} v${n}`).join(", ");
      notify(`Committed ${b.name}${w.generation ? ` as generation ${w.generation}` : ""}${versions ? `: ${versions}` : ""}.`);
      ctx.navigate("#/branches");
    },
  });
}

function abortDialog(b, ctx) {
  formDialog({
    title: `Abort ${b.name}`,
    submit: "Abort branch",
    danger: true,
    intro: [h("p", {}, "Drops every staged change. Refused while units track the branch, unless forced (they go back to master)."),
      noReason("Aborting")],
    fields: [field({ name: "force", label: "Force: also while units track it", type: "checkbox" })],
    async onSubmit(v) {
      await post(`/branches/${path(b.name)}/abort`, { force: v.force });
      notify(`Aborted ${b.name}.`);
      ctx.navigate("#/branches");
    },
  });
}
