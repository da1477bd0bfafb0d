// Tokens (admins only): the list, create (the secret shown once), revoke.

import { del, get, post } from "../api.js";
import { badge, fill, h, path, table, when } from "../dom.js";
import { errorView, field, formDialog, noReason, notify } from "../ui.js";

const UNITS = { hours: 3600, days: 86400 };

export function mount(root, route, ctx) {
  document.title = "Tokens · genconf";
  const body = h("div", {}, h("p", { class: "loading" }, "Loading…"));
  root.append(h("div", { class: "page-head" }, h("h1", {}, "Tokens"),
    h("div", { class: "tools" }, h("button", { type: "button", class: "primary", onclick: () => createDialog(ctx) }, "Create token"))),
  h("p", { class: "hint" }, "The server keeps only a salted hash of each token: a secret is shown once, when it is made."),
  body);
  return {
    async refresh() {
      try {
        const reply = await get("/tokens");
        const tokens = Array.isArray(reply) ? reply : reply.tokens || [];
        fill(body, table(["Id", "Name", "Role", "Unit", "Created by", "Created", "Expires", "State", ""], tokens.map((t) => [
          h("code", {}, t.id), t.name || "", badge(t.role, `role-${t.role}`), t.unit || "", t.created_by, when(t.created_at),
          t.expires_at ? when(t.expires_at) : h("span", { class: "absent" }, "never"),
          t.revoked ? badge("revoked", "bad") : badge("active", "ok"),
          t.revoked ? "" : h("button", { type: "button", class: "small danger-quiet", onclick: () => revokeDialog(t, ctx) }, "Revoke…"),
        ]), { empty: "No tokens minted yet (the bootstrap admin token is not listed)." }));
      } catch (error) {
        fill(body, errorView(error));
      }
    },
    relevant: () => false,
  };
}

function createDialog(ctx) {
  formDialog({
    title: "Create token",
    submit: "Create",
    intro: noReason("Creating a token"),
    fields: [
      field({ name: "role", label: "Role", type: "select", options: ["observer", "controller", "admin", "agent"], value: "observer",
        hint: "admin: everything; controller: writes and reads; observer: reads, secrets redacted; agent: one unit." }),
      field({ name: "name", label: "Name", placeholder: "ci-deploy", hint: "Shown as the author of the writes made with it." }),
      field({ name: "unit", label: "Unit (agent tokens only)", placeholder: "web/0" }),
      field({ name: "description", label: "Description" }),
      field({ name: "expires", label: "Expires after", type: "number", min: 0, placeholder: "never" }),
      field({ name: "expires_unit", label: "Unit of time", type: "select", options: ["days", "hours"], value: "days" }),
    ],
    async onSubmit(v) {
      const body = { role: v.role };
      if (v.name.trim()) body.name = v.name.trim();
      if (v.unit.trim()) body.unit = v.unit.trim();
      if (v.description.trim()) body.description = v.description.trim();
      if (v.expires.trim() && Number(v.expires) > 0) body.expires_in_seconds = Math.round(Number(v.expires) * UNITS[v.expires_unit]);
      const created = await post("/tokens", body);
      ctx.refresh();
      const secret = h("input", { type: "text", readonly: true, value: created.token, id: "new-token", class: "mono secret", "aria-label": "The new token" });
      const copy = h("button", { type: "button", onclick: async () => {
        try {
          await navigator.clipboard.writeText(created.token);
          copy.textContent = "Copied";
        } catch {
          secret.select();
          copy.textContent = "Press Ctrl+C";
        }
      } }, "Copy");
      return h("div", {}, h("p", {}, `Token ${created.id} (${created.role}${created.name ? `, ${created.name}` : ""}).`),
        h("p", { class: "warn-text" }, "Copy it now: it is not shown again."), h("div", { class: "copy-row" }, secret, copy));
    },
  });
}

function revokeDialog(t, ctx) {
  formDialog({
    title: `Revoke token ${t.id}`,
    submit: "Revoke",
    danger: true,
    intro: [h("p", {}, `${t.name || "This token"} (${t.role}) stops working at once; its open streams end within seconds.`), noReason("Revoking")],
    fields: [],
    async onSubmit() {
      await del(`/tokens/${path(t.id)}`);
      notify(`Token ${t.id} revoked.`);
      ctx.refresh();
    },
  });
}
