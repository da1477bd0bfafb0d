// Dialogs, forms, notices and the error view shared by every page.

import { h, fill, table, valueText } from "./dom.js";

/** The server's error as a person reads it: code, message, and what its details name. */
export function errorView(error) {
  const code = error.code || "ERROR";
  const message = error.message || String(error) || "the request failed with no message";
  const parts = [h("p", { class: "error-line" }, h("strong", { class: "code" }, code), " ", message)];
  const details = error.details;
  if (details && typeof details === "object") {
    const conflicts = details.conflicts || [];
    if (conflicts.length) {
      parts.push(table(["application", "key", "branch started from", "master now", "branch value"],
        conflicts.map((c) => [c.application, c.key, valueText(c.from), valueText(c.current), valueText(c.proposed)]),
        { cls: "compact" }));
    }
    const units = details.units || [];
    if (units.length) parts.push(h("p", {}, "Units: ", units.join(", ")));
    const mismatches = details.mismatches || [];
    if (mismatches.length) {
      parts.push(table(["application", "key", "expected", "holds"], mismatches.map((m) => [
        m.application + (m.branch ? ` (branch ${m.branch})` : ""), m.key, valueText(String(m.expected)), valueText(String(m.actual)),
      ]), { cls: "compact" }));
    }
    const fields = details.fields || [];
    if (fields.length) parts.push(h("ul", {}, fields.map((f) => h("li", {}, h("code", {}, f.field), ": ", f.problem))));
  }
  return h("div", { class: "error", role: "alert" }, parts);
}

const alerts = () => document.getElementById("alerts");

/** A short-lived notice at the top (success), or a sticky one (errors, until dismissed). */
export function notify(content, { kind = "ok", sticky = false } = {}) {
  const close = h("button", { type: "button", class: "quiet close", "aria-label": "Dismiss" }, "×");
  const box = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("div", { class: "notice-body" }, content), close);
  close.addEventListener("click", () => box.remove());
  alerts().appendChild(box);
  // Calm: at most the two newest passing notices; errors stay until dismissed.
  const passing = alerts().querySelectorAll(".notice:not(.error)");
  for (let i = 0; i < passing.length - 2; i++) passing[i].remove();
  if (!sticky) setTimeout(() => box.remove(), 5000);
  return box;
}

export function notifyError(error) {
  return notify(errorView(error), { kind: "error", sticky: true });
}

let uid = 0;
/** A labelled form field; ``spec``: {name, label, type, value, hint, required, options, rows, placeholder}. */
export function field(spec) {
  const id = `f${++uid}-${spec.name}`;
  const common = {
    id, name: spec.name, required: spec.required, placeholder: spec.placeholder,
    autocomplete: spec.autocomplete || "off", spellcheck: "false",
    "aria-describedby": spec.hint ? `${id}-hint` : null,
  };
  let control;
  if (spec.type === "textarea") {
    control = h("textarea", { ...common, rows: spec.rows || 5, class: "mono" });
    control.value = spec.value ?? "";
  } else if (spec.type === "select") {
    control = h("select", common, (spec.options || []).map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === spec.value }, label);
    }));
  } else if (spec.type === "checkbox") {
    control = h("input", { ...common, type: "checkbox", checked: !!spec.value });
    return h("div", { class: "field check" }, control, h("label", { for: id }, spec.label),
      spec.hint ? h("p", { class: "hint", id: `${id}-hint` }, spec.hint) : null);
  } else {
    control = h("input", { ...common, type: spec.type || "text", min: spec.min, max: spec.max });
    control.value = spec.value ?? "";
  }
  return h("div", { class: "field" }, h("label", { for: id }, spec.label),
    control, spec.hint ? h("p", { class: "hint", id: `${id}-hint` }, spec.hint) : null);
}

/** Two fields side by side. */
export function fieldRow(...fields) {
  return h("div", { class: "field-row" }, fields);
}

/** The values of a form's named controls: checkboxes as booleans, the rest as text. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === "checkbox" ? el.checked : el.value;
  }
  return out;
}

/**
 * A modal form. ``onSubmit(values)`` may throw (its error shows in the dialog, which
 * stays open) or return a node to show instead of the form (e.g. a token's secret).
 */
export function formDialog({ title, intro, fields, submit = "Save", danger = false, onSubmit }) {
  const errors = h("div", { class: "dialog-errors" });
  const submitButton = h("button", { type: "submit", class: danger ? "danger" : "primary" }, submit);
  const cancel = h("button", { type: "button", class: "quiet" }, "Cancel");
  const form = h("form", { class: "dialog-form", novalidate: false },
    h("h2", {}, title), intro ? h("div", { class: "intro" }, intro) : null,
    fields, errors, h("div", { class: "actions" }, cancel, submitButton));
  const dialog = h("dialog", { class: "modal", "aria-label": title }, form);
  cancel.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  // Ctrl/Cmd+Enter submits from a textarea too (Enter there is a new line).
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(errors);
    submitButton.disabled = true;
    submitButton.setAttribute("aria-busy", "true");
    try {
      const result = await onSubmit(formValues(form), form);
      if (result instanceof Node) {
        const done = h("button", { type: "button", class: "primary" }, "Done");
        done.addEventListener("click", () => dialog.close());
        fill(form, h("h2", {}, title), result, h("div", { class: "actions" }, done));
        done.focus();
      } else {
        dialog.close();
      }
    } catch (error) {
      fill(errors, errorView(error));
      errors.scrollIntoView({ block: "nearest" });
    } finally {
      submitButton.disabled = false;
      submitButton.removeAttribute("aria-busy");
    }
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  const first = form.querySelector("input:not([type=hidden]), select, textarea");
  if (first) first.focus();
  return dialog;
}

/** The reason field every write asks for. */
export function reasonField(hint = "Recorded with the change, shown in history.") {
  return field({ name: "reason", label: "Reason", required: true, hint, placeholder: "why this change" });
}

/** A note for writes whose API takes no reason. */
export function noReason(what) {
  return h("p", { class: "hint no-reason" }, `${what} takes no reason: the API records none for it.`);
}

export class LocalError extends Error {
  constructor(message) {
    super(message);
    this.code = "INVALID_INPUT";
  }
}

/** JSON typed by a person; an error naming the field when it does not parse. */
export function parseJson(text, what, fallback) {
  if (!text.trim()) return fallback;
  try {
    return JSON.parse(text);
  } catch (exc) {
    throw new LocalError(`${what} is not valid JSON: ${exc.message}`);
  }
}

const TRUE = new Set(["true", "yes", "on", "1"]);
const FALSE = new Set(["false", "no", "off", "0"]);

/** One KEY=VALUE's value as the option's type wants it (as `genconf config set` does). */
export function typedValue(key, text, schema) {
  const known = schema && Object.hasOwn(schema, key) && key !== "*";
  if (schema && !known && !Object.hasOwn(schema, "*")) {
    const keys = Object.keys(schema);
    throw new LocalError(`${key}: the schema has no such key (${keys.length ? `keys: ${keys.join(", ")}` : "it declares none"})`);
  }
  const type = known ? schema[key].type : "any";
  switch (type) {
    case "string":
      return text;
    case "int": {
      if (!/^-?\d+$/.test(text.trim())) throw new LocalError(`${key}: ${JSON.stringify(text)} is not an int`);
      return Number(text.trim());
    }
    case "float": {
      const n = Number(text.trim());
      if (text.trim() === "" || Number.isNaN(n)) throw new LocalError(`${key}: ${JSON.stringify(text)} is not a number`);
      return n;
    }
    case "boolean": {
      const t = text.trim().toLowerCase();
      if (TRUE.has(t)) return true;
      if (FALSE.has(t)) return false;
      throw new LocalError(`${key}: ${JSON.stringify(text)} is not a boolean (true/false/yes/no/on/off/1/0)`);
    }
    case "object":
    case "list":
      return parseJson(text, key, undefined);
    default:
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
  }
}

/** KEY=VALUE lines (blank lines and # comments skipped) as {key: typed value}. */
export function parseAssignments(text, schema) {
  const out = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = raw.indexOf("=");
    if (eq <= 0) throw new LocalError(`line ${i + 1}: write KEY=VALUE, not ${JSON.stringify(line)}`);
    const key = raw.slice(0, eq).trim();
    out[key] = typedValue(key, raw.slice(eq + 1).replace(/^\s+/, ""), schema);
  }
  return out;
}

/** Names separated by commas, spaces or new lines. */
export function words(text) {
  return text.split(/[\s,]+/).map((w) => w.trim()).filter(Boolean);
}

/** A confirm-style dialog with no fields. */
export function confirmDialog(opts) {
  return formDialog({ fields: [], ...opts });
}
