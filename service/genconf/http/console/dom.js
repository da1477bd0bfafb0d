// Small DOM helpers. Every piece of server data goes in as text (never as HTML),
// so a value, a name or an error message can never inject markup.

/** Build an element: h("a", {href: "#/x", class: "c", onclick: fn}, "text", child, [more]). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value" || name === "checked" || name === "selected") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace everything inside ``el`` with ``children``. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const REDACTED = "<redacted>";

/** A config value as people read it: JSON, strings quoted; what the server hid as a badge. */
export function value(v) {
  if (v === REDACTED) return h("span", { class: "redacted", title: "secret: hidden from your role" }, REDACTED);
  if (v === undefined) return h("span", { class: "absent" }, "absent");
  if (typeof v === "string" && v.includes("\n")) return h("pre", { class: "val text" }, v);
  const compact = JSON.stringify(v);
  if (compact.length <= 60) return h("code", { class: "val" }, compact);
  return h("pre", { class: "val" }, typeof v === "object" && v !== null ? JSON.stringify(v, null, 2) : compact);
}

/** A value the server already wrote as text (a conflict's JSON text, or "absent"). */
export function valueText(text) {
  if (text === "absent") return h("span", { class: "absent" }, "absent");
  if (text === JSON.stringify(REDACTED)) return value(REDACTED);
  return h("code", { class: "val" }, text);
}

/** A hash cut to what a person compares (the whole one on hover). */
export function hash(text) {
  if (!text) return h("span", { class: "absent" }, "—");
  return h("code", { class: "hash", title: text }, text.slice(0, 12));
}

export function when(iso) {
  if (!iso) return h("span", { class: "absent" }, "—");
  const d = new Date(iso);
  return h("time", { datetime: iso, title: iso }, d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }));
}

/** A table: headers, then rows of cells (text or nodes); ``empty`` when there are no rows. */
export function table(headers, rows, { empty = "Nothing here yet.", caption, cls } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h("div", { class: "table-wrap" },
    h("table", { class: cls },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((row) => row instanceof Node ? row : h("tr", {}, row.map((cell) => h("td", {}, cell)))))));
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}`.trim() }, text);
}

export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

/** Who wrote something, as the server recorded it. */
export function author(obj) {
  if (!obj) return "";
  let text = obj.created_by || "";
  if (obj.on_behalf_of) text += ` on behalf of ${obj.on_behalf_of}`;
  if (obj.authenticated === false && text) text += " (unauthenticated)";
  return text;
}

/** Encode each path segment (unit names hold a "/", labels may hold anything). */
export function path(...segments) {
  return segments.map((s) => encodeURIComponent(String(s))).join("/");
}
