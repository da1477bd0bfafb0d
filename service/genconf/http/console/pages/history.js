// History: an application's versions with labels, a side-by-side diff of any two,
// rollback, tag and bump; the generations that touched it, with revert; per-key history.

import { get, post, session } from "../api.js";
import { author, badge, fill, h, path, section, table, value, when } from "../dom.js";
import { delta } from "../model.js";
import { errorView, field, formDialog, noReason, notify, reasonField } from "../ui.js";
import { entriesTable } from "./branches.js";

const PAGE = 50;

export function mount(root, route, ctx) {
  return route.args.length ? mountApp(root, route.args[0], route, ctx) : mountPick(root);
}

function mountPick(root) {
  document.title = "History · genconf";
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "History")),
    h("p", { class: "hint" }, "Every change to master is an immutable version of each application it touches and one model-wide generation."),
    body);
  return {
    async refresh() {
      try {
        const [apps, gens] = await Promise.all([get("/applications"), get("/generations?limit=20")]);
        fill(body,
          section("Applications", table(["Application", "Current version"], apps.map((a) => [
            h("a", { href: `#/history/${encodeURIComponent(a.name)}` }, a.name), `version ${a.version}`,
          ]), { empty: "No applications yet." })),
          section("Recent generations", generationsTable(generationsOf(gens), null)));
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant: (e) => ["application", "generation"].includes(delta(e).kind),
  };
}

function generationsOf(reply) {
  return Array.isArray(reply) ? reply : reply.generations || [];
}

function mountApp(root, name, route, ctx) {
  document.title = `${name} · history · genconf`;
  const latestLine = h("p", { class: "meta" });
  const tools = h("div", { class: "tools" });
  const versionsBox = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  const diffBox = h("div", { id: "compare", "aria-live": "polite" });
  const gensBox = h("div", {});
  const keyBox = h("div", {});
  const keySelect = h("select", { id: "key-pick", name: "key" });
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/history" }, "History"), " / ", name),
    h("div", { class: "page-head" }, h("h1", {}, `${name}: history`), tools), latestLine,
    section("Versions", versionsBox, diffBox),
    section("Generations", h("p", { class: "hint" }, "Model-wide records of the changes that touched this application; a revert applies one's inverse as a new generation."), gensBox),
    section("Key history",
      h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); state.key = keySelect.value; drawKey(); } },
        h("div", { class: "field inline" }, h("label", { for: "key-pick" }, "Key"), keySelect),
        h("button", { type: "submit" }, "Show")),
      keyBox));

  // ``picked``: the person chose what to compare; until then the two newest versions are.
  const state = { limit: PAGE, from: null, to: null, picked: false, key: route.query.get("key") || "", app: null, versions: [], current: 0 };

  tools.append(h("a", { class: "button", href: `#/applications/${encodeURIComponent(name)}` }, "Application"));
  if (session.canWrite) {
    tools.append(h("button", { type: "button", onclick: () => bumpDialog(name, state.current, ctx) }, "Bump label…"));
  }

  const compare = async () => {
    if (state.from === null || state.to === null) return;
    fill(diffBox, h("p", { class: "loading" }, "Comparing…"));
    try {
      const d = await post(`/applications/${path(name)}/versions/compare`, { from: state.from, to: state.to });
      const side = (v, label) => `version ${v}${label ? ` (${label})` : ""}`;
      fill(diffBox, h("div", { class: "diff-result" },
        h("h3", {}, `Version ${d.from_version} → ${d.to_version}`),
        h("p", { class: "summary", id: "diff-summary" }, d.summary),
        d.entries.length ? entriesTable(d.entries, { from: side(d.from_version, d.from_label), to: side(d.to_version, d.to_label) })
          : h("p", { class: "empty" }, "The two versions hold the same effective config.")));
    } catch (error) {
      fill(diffBox, errorView(error));
    }
  };

  const drawVersions = (reply) => {
    const versions = reply.versions;
    state.versions = versions;
    state.current = reply.current_version;
    if (!state.picked) {
      state.to = versions.length ? versions[0].version : null;
      state.from = versions.length > 1 ? versions[1].version : null;
    }
    const radio = (which, v) => h("input", {
      type: "radio", name: `pick-${which}`, value: String(v.version), checked: state[which] === v.version,
      "aria-label": `${which === "from" ? "Compare from" : "Compare to"} version ${v.version}`,
      onchange: () => { state[which] = v.version; state.picked = true; },
    });
    const rows = versions.map((v) => h("tr", { class: v.version === reply.current_version ? "current" : "" },
      h("td", { class: "pick" }, radio("from", v)), h("td", { class: "pick" }, radio("to", v)),
      h("td", {}, h("strong", {}, String(v.version)), v.version === reply.current_version ? [" ", badge("current", "ok")] : ""),
      h("td", {}, v.tags.map((t) => badge(t, "label"))),
      h("td", {}, v.reason || h("span", { class: "absent" }, "—"), rollbackNote(v)),
      h("td", {}, author(v)),
      h("td", {}, when(v.timestamp)),
      h("td", {}, v.generation ? String(v.generation) : ""),
      h("td", { class: "row-actions" }, session.canWrite ? [
        h("button", { type: "button", class: "small", onclick: () => tagDialog(name, v, ctx) }, "Tag"),
        v.version !== reply.current_version
          ? h("button", { type: "button", class: "small", onclick: () => rollbackDialog(name, v, reply.current_version, ctx) }, "Roll back to")
          : null,
      ] : null)));
    const compareButton = h("button", { type: "button", class: "primary", onclick: () => { state.picked = true; compare(); } }, "Compare selected");
    fill(versionsBox,
      h("div", { class: "table-wrap" }, h("table", { class: "versions" },
        h("thead", {}, h("tr", {}, ["From", "To", "Version", "Labels", "Reason", "By", "When", "Gen.", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows))),
      h("div", { class: "actions left" }, compareButton,
        reply.more ? h("button", { type: "button", class: "quiet", onclick: () => { state.limit += PAGE; ctx.refresh(); } }, "Show older versions") : null));
  };

  const drawKey = async () => {
    if (!state.key) {
      fill(keyBox, h("p", { class: "empty" }, "Pick a key to see every version where its value changed."));
      return;
    }
    try {
      const reply = await get(`/applications/${path(name)}/keys/${path(state.key)}/history?limit=${PAGE}`);
      const entries = Array.isArray(reply) ? reply : reply.entries || [];
      fill(keyBox, table(["Version", "Value", "", "By", "When", "Reason"], entries.map((e) => [
        String(e.version), e.value === null ? h("span", { class: "absent" }, "no value") : value(e.value),
        e.is_default ? badge("default", "muted") : "", e.created_by, when(e.timestamp), e.reason || "",
      ]), { empty: `No version changed ${state.key}.` }));
    } catch (error) {
      fill(keyBox, errorView(error));
    }
  };

  return {
    async refresh() {
      try {
        const [app, reply, latest, gens] = await Promise.all([
          get(`/applications/${path(name)}`),
          get(`/applications/${path(name)}/versions?limit=${state.limit}`),
          get(`/applications/${path(name)}/versions/latest`),
          get(`/generations?application=${encodeURIComponent(name)}&limit=${PAGE}`),
        ]);
        state.app = app;
        fill(latestLine, `current version ${latest.version}`,
          latest.label ? [" · highest label ", badge(latest.label, "label"), ` on version ${latest.label_version}`] : " · no label yet");
        drawVersions(reply);
        fill(gensBox, generationsTable(generationsOf(gens), ctx));
        const keys = [...new Set([...Object.keys(app.schema).filter((k) => k !== "*"), ...Object.keys(app.settings)])].sort();
        fill(keySelect, h("option", { value: "" }, "choose a key"), keys.map((k) => h("option", { value: k }, k)));
        keySelect.value = state.key;
        await drawKey();
        // The default comparison follows new versions; a chosen one stays as chosen.
        if ((!state.picked || !diffBox.childElementCount) && state.from !== null) await compare();
      } catch (error) {
        fill(versionsBox, errorView(error));
      }
    },
    relevant(e) {
      const d = delta(e);
      if (d.kind === "application") return d.key === name;
      if (d.kind === "generation") return !d.value || !!(d.value.versions || {})[name] || !!(d.value.changes || {})[name];
      return false;
    },
  };
}

function rollbackNote(v) {
  const m = v.metadata || {};
  if (m.rollback_to === undefined) return null;
  return h("span", { class: "sub" }, ` (rollback to ${m.rollback_to} from ${m.rollback_from})`);
}

function generationsTable(gens, ctx) {
  return table(["Id", "Kind", "Branch", "Changed", "By", "When", "Reason", ""], gens.map((g) => [
    String(g.id), badge(g.kind, "info"), g.branch || "",
    Object.entries(g.changes).map(([app, keys]) => h("div", {}, `${app}: `, Object.keys(keys).map((k, i) => [i ? ", " : "", h("code", {}, k)]))),
    author(g), when(g.created_at), g.reason || "",
    ctx && session.canWrite ? h("button", { type: "button", class: "small", onclick: () => revertDialog(g, ctx) }, "Revert…") : "",
  ]), { empty: "No generations yet." });
}

function rollbackDialog(name, v, current, ctx) {
  formDialog({
    title: `Roll ${name} back to version ${v.version}`,
    submit: "Roll back",
    intro: h("p", {}, `Writes a new version holding version ${v.version}'s settings (refused if the current schema no longer fits them).`),
    fields: [
      field({ name: "expected_version", label: "Expected current version", type: "number", value: String(current),
        hint: "Refused if someone changed the application since." }),
      reasonField(),
    ],
    async onSubmit(values) {
      const body = { to: v.version, reason: values.reason };
      if (values.expected_version.trim()) body.expected_version = Number(values.expected_version);
      const w = await post(`/applications/${path(name)}/versions/rollback`, body);
      notify(`${name} rolled back to version ${v.version}: now version ${(w.versions || {})[name] ?? "?"}.`);
      ctx.refresh();
    },
  });
}

function tagDialog(name, v, ctx) {
  formDialog({
    title: `Tag version ${v.version} of ${name}`,
    submit: "Tag",
    intro: noReason("Tagging"),
    fields: [field({ name: "label", label: "Label", required: true, placeholder: "1.4.0", hint: "A semantic version, unique per application; labels never go backwards." })],
    async onSubmit(values) {
      const r = await post(`/applications/${path(name)}/versions/${path(v.version)}/tags`, { label: values.label.trim() });
      notify(`Version ${r.version} of ${name} is ${r.label}.`);
      ctx.refresh();
    },
  });
}

function bumpDialog(name, current, ctx) {
  formDialog({
    title: `Bump ${name}'s label`,
    submit: "Bump",
    intro: [h("p", {}, "Labels a version with the next semantic version after the highest label (the first bump gives 1.0.0)."), noReason("Bumping")],
    fields: [
      field({ name: "part", label: "Part", type: "select", options: ["major", "minor", "patch"], value: "minor" }),
      field({ name: "version", label: "Version", type: "number", min: 1, value: String(current || ""), hint: "The version to label (default: the current one)." }),
    ],
    async onSubmit(values) {
      const body = { part: values.part };
      if (values.version.trim()) body.version = Number(values.version);
      const r = await post(`/applications/${path(name)}/versions/increment`, body);
      notify(`Version ${r.version} of ${name} is ${r.label}.`);
      ctx.refresh();
    },
  });
}

function revertDialog(g, ctx) {
  formDialog({
    title: `Revert generation ${g.id}`,
    submit: "Revert",
    intro: h("p", {}, "Applies the inverse of this generation as a new one, checked per key like a commit: a key changed since is a conflict unless forced."),
    fields: [field({ name: "force", label: "Force: revert keys changed since too", type: "checkbox" }), reasonField()],
    async onSubmit(values) {
      const w = await post(`/generations/${path(g.id)}/revert`, { force: values.force, reason: values.reason });
      notify(`Reverted generation ${g.id}${w.generation ? ` as generation ${w.generation}` : ""}.`);
      ctx.refresh();
    },
  });
}
