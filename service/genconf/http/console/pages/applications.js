// Applications: the list, and one application's schema, master settings, effective
// config per group of units (master and each branch touching it), and units.

import { get, post, put, session } from "../api.js";
import { badge, fill, h, hash, path, section, table, value, when } from "../dom.js";
import { delta, groupConfigs, groupKey, previewEffective, same, statusBadge, unitStatus } from "../model.js";
import {
  errorView, field, fieldRow, formDialog, LocalError, noReason, notify, parseAssignments, parseJson, reasonField, words,
} from "../ui.js";

export function mount(root, route, ctx) {
  return route.args.length ? mountOne(root, route.args[0], ctx) : mountList(root, ctx);
}

// -- the list -------------------------------------------------------------------

function mountList(root, ctx) {
  document.title = "Applications · genconf";
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const create = session.canWrite
    ? h("button", { type: "button", class: "primary", onclick: () => createDialog(ctx) }, "Create application")
    : null;
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Applications"), h("div", { class: "tools" }, create)), body);
  return {
    async refresh() {
      try {
        const apps = await get("/applications");
        fill(body, table(["Name", "Charm", "Version", "Units", "Settings", "Schema"], apps.map((a) => [
          h("a", { href: `#/applications/${encodeURIComponent(a.name)}` }, a.name),
          a.charm || h("span", { class: "absent" }, "—"),
          String(a.version),
          String(a.units.length),
          `${Object.keys(a.settings).length} set`,
          schemaSummary(a.schema),
        ]), { empty: "No applications yet. Create one to start." }));
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant: (e) => ["application", "unit"].includes(delta(e).kind),
  };
}

function schemaSummary(schema) {
  const keys = Object.keys(schema).filter((k) => k !== "*");
  const open = "*" in schema;
  if (!keys.length) return open ? "open" : "no keys";
  return `${keys.length} key${keys.length === 1 ? "" : "s"}${open ? ", open" : ""}`;
}

function createDialog(ctx) {
  formDialog({
    title: "Create application",
    submit: "Create",
    fields: [
      fieldRow(
        field({ name: "name", label: "Name", required: true, placeholder: "web",
          hint: "Lower-case letters, digits and dashes, starting with a letter." }),
        field({ name: "charm", label: "Charm", placeholder: "optional" })),
      field({ name: "schema", label: "Schema (JSON)", type: "textarea", rows: 5,
        placeholder: '{"port": {"type": "int", "default": 8080, "description": "port to listen on"}}',
        hint: "{key: {type, default, description, secret}}; types: string, int, float, boolean, object, list." }),
      field({ name: "open", label: "Open: allow any key the schema does not declare", type: "checkbox" }),
      field({ name: "settings", label: "Initial settings (JSON)", type: "textarea", rows: 2,
        placeholder: '{"port": 9090}', hint: "Version 1's values (optional)." }),
      fieldRow(field({ name: "units", label: "Units", type: "number", min: 0, value: "0" }), h("div")),
      reasonField(),
    ],
    async onSubmit(v) {
      const body = {
        name: v.name.trim(),
        open: v.open,
        schema: parseJson(v.schema, "Schema", {}),
        settings: parseJson(v.settings, "Initial settings", {}),
        units: Number(v.units || 0),
        reason: v.reason,
      };
      if (v.charm.trim()) body.charm = v.charm.trim();
      for (const [name, obj] of [["Schema", body.schema], ["Initial settings", body.settings]]) {
        if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
          throw new LocalError(`${name} must be a JSON object`);
        }
      }
      await post("/applications", body);
      notify(`Application ${body.name} created.`);
      ctx.navigate(`#/applications/${encodeURIComponent(body.name)}`);
    },
  });
}

// -- one application ------------------------------------------------------------------

function mountOne(root, name, ctx) {
  document.title = `${name} · genconf`;
  const title = h("h1", {}, name);
  const meta = h("p", { class: "meta" });
  const tools = h("div", { class: "tools" });
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  root.append(h("p", { class: "crumbs" }, h("a", { href: "#/applications" }, "Applications"), " / ", name),
    h("div", { class: "page-head" }, title, tools), meta, body);
  let app = null;
  let groups = [];

  if (session.canWrite) {
    // Disabled until the application is read: its schema types what is typed.
    tools.append(
      h("button", { type: "button", class: "primary", disabled: true, dataset: { needs: "app" }, onclick: () => setConfigDialog(app, ctx) }, "Set config"),
      h("button", { type: "button", disabled: true, dataset: { needs: "app" }, onclick: () => addUnitsDialog(app, ctx) }, "Add units"));
  }
  tools.append(h("a", { class: "button", href: `#/history/${encodeURIComponent(name)}` }, "History"));

  return {
    async refresh() {
      try {
        const [a, units, branches] = await Promise.all([
          get(`/applications/${path(name)}`),
          get(`/applications/${path(name)}/units`),
          get("/branches"),
        ]);
        app = a;
        tools.querySelectorAll("[data-needs]").forEach((b) => { b.disabled = false; });
        const configs = await groupConfigs(units);
        groups = groupsOf(app, units, branches, configs);
        fill(meta, `version ${app.version}`, app.charm ? ` · charm ${app.charm}` : "",
          ` · ${units.length} unit${units.length === 1 ? "" : "s"}`);
        fill(body,
          h("div", { class: "grid two" },
            section("Schema", schemaTable(app.schema)),
            section("Master settings", h("p", { class: "hint" }, "Only the values operators set; the rest are defaults."),
              table(["Key", "Value"], Object.keys(app.settings).sort().map((k) => [h("code", {}, k), value(app.settings[k])]),
                { empty: "Nothing set: every key has its default." }))),
          section("Effective config by group", h("p", { class: "hint" },
            "What units run: defaults ⊕ master ⊕ the changes of the branch they track. Cells that differ from master are marked."),
          effectiveTable(groups)),
          section("Units", unitsTable(units, configs)));
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant(e) {
      const d = delta(e);
      if (d.kind === "application") return d.key === name;
      if (d.kind === "unit") return String(d.key).startsWith(`${name}/`);
      if (d.kind === "branch") return true;
      return false;
    },
  };
}

function schemaTable(schema) {
  const keys = Object.keys(schema).sort();
  const rows = keys.map((k) => {
    const o = schema[k];
    return [
      k === "*" ? h("span", {}, h("code", {}, "*"), " any other key") : h("code", {}, k),
      o.type,
      o.default === null || o.default === undefined ? h("span", { class: "absent" }, "none") : value(o.default),
      o.description || "",
      o.secret ? badge("secret", "warn") : "",
    ];
  });
  return table(["Key", "Type", "Default", "Description", ""], rows, { empty: "No keys declared." });
}

/** Master, then every branch that changes this application or has units of it. */
function groupsOf(app, units, branches, configs) {
  const out = [];
  const unitsOf = (branch) => units.filter((u) => (u.branch || "") === (branch || ""));
  const master = configs[groupKey(app.name, "")];
  out.push({ name: "master", branch: null, units: unitsOf(null), config: master && !master.error ? master.config : app.effective,
    hash: master && !master.error ? master.hash : null });
  for (const b of branches) {
    const changes = b.changes[app.name];
    const tracking = unitsOf(b.name);
    if (!changes && !tracking.length && !b.track_applications.includes(app.name)) continue;
    const read = configs[groupKey(app.name, b.name)];
    const fromServer = read && !read.error;
    out.push({
      name: b.name, branch: b,
      units: tracking,
      config: fromServer ? read.config : previewEffective(app, changes),
      hash: fromServer ? read.hash : null,
      preview: !fromServer,
    });
  }
  return out;
}

function effectiveTable(groups) {
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.config)))].sort();
  const master = groups[0].config;
  const head = h("tr", {}, h("th", { scope: "col" }, "Key"), groups.map((g) => h("th", { scope: "col" },
    g.branch ? h("a", { href: `#/branches/${encodeURIComponent(g.name)}` }, g.name) : "master",
    h("div", { class: "sub" }, `${g.units.length} unit${g.units.length === 1 ? "" : "s"}`,
      g.preview ? " · preview" : "", g.hash ? [" · ", hash(g.hash)] : ""))));
  const rows = keys.map((k) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, k)), groups.map((g, i) => {
    const differs = i > 0 && !same(g.config[k], master[k]);
    return h("td", { class: differs ? "differs" : "" }, value(g.config[k]));
  })));
  if (!keys.length) return h("p", { class: "empty" }, "No keys: the schema declares none and nothing is set.");
  return h("div", { class: "table-wrap" }, h("table", { class: "effective" }, h("thead", {}, head), h("tbody", {}, rows)));
}

export function unitsTable(units, configs, { empty = "No units." } = {}) {
  return table(["Unit", "Status", "Branch", "Should run", "Applied", "Result"], units.map((u) => {
    const c = configs[groupKey(u.application, u.branch)];
    const expected = c && !c.error ? c.hash : "";
    const a = u.applied;
    return [
      h("code", {}, u.name),
      statusBadge(unitStatus(u, expected)),
      u.branch ? h("a", { href: `#/branches/${encodeURIComponent(u.branch)}` }, u.branch) : h("span", { class: "absent" }, "master"),
      hash(expected),
      a ? hash(a.hash) : hash(""),
      a ? h("span", {}, a.ok ? badge("ok", "ok") : badge("failed", "bad"), a.message ? [" ", h("span", { class: "message" }, a.message)] : "", " ", h("span", { class: "sub" }, when(a.at))) : h("span", { class: "absent" }, "no report"),
    ];
  }), { empty });
}

function setConfigDialog(app, ctx) {
  const keys = Object.keys(app.schema).filter((k) => k !== "*");
  formDialog({
    title: `Set config of ${app.name}`,
    submit: "Set config",
    intro: h("p", {}, "One KEY=VALUE per line. Values are typed by the schema (",
      keys.length ? keys.slice(0, 8).join(", ") + (keys.length > 8 ? ", …" : "") : "open: JSON when it reads as JSON, else text",
      "). Writes a new version."),
    fields: [
      field({ name: "set", label: "Set", type: "textarea", rows: 5, placeholder: keys.length ? `${keys[0]}=…` : "key=value" }),
      field({ name: "unset", label: "Unset (back to the default)", placeholder: "key other-key", hint: "Keys separated by spaces or commas." }),
      field({ name: "expected_version", label: "Expected version", type: "number", value: String(app.version),
        hint: "Refused if someone changed the application since (clear it to write regardless)." }),
      reasonField(),
    ],
    async onSubmit(v) {
      const set = parseAssignments(v.set, app.schema);
      const unset = words(v.unset);
      if (!Object.keys(set).length && !unset.length) throw new LocalError("Nothing to change: set or unset at least one key.");
      const body = { reason: v.reason };
      if (Object.keys(set).length) body.set = set;
      if (unset.length) body.unset = unset;
      if (v.expected_version.trim()) body.expected_version = Number(v.expected_version);
      const w = await put(`/applications/${path(app.name)}/config`, body);
      notify(`${app.name} is now at version ${(w.versions || {})[app.name] ?? "?"}.`);
      ctx.refresh();
    },
  });
}

function addUnitsDialog(app, ctx) {
  formDialog({
    title: `Add units to ${app.name}`,
    submit: "Add units",
    intro: noReason("Adding units"),
    fields: [field({ name: "count", label: "How many", type: "number", min: 1, value: "1", required: true })],
    async onSubmit(v) {
      const w = await post(`/applications/${path(app.name)}/units`, { count: Number(v.count) });
      notify(`Added ${(w.units || []).join(", ") || "units"}.`);
      ctx.refresh();
    },
  });
}
