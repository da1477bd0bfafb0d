// Reads several pages share: the config each group of units should run, and a unit's status.

import { get } from "./api.js";
import { badge, path } from "./dom.js";

/** Units of one application tracking one branch (or none: master) share one effective config. */
export function groupKey(application, branch) {
  return `${application}\u0000${branch || ""}`;
}

/**
 * The effective config of every (application, branch) group among ``units``, read from
 * the server for the group's first unit: {groupKey: config | {error}}. One read per
 * group, not per unit: a group's units all run the same config.
 */
export async function groupConfigs(units) {
  const first = new Map();
  for (const unit of units) {
    const key = groupKey(unit.application, unit.branch);
    if (!first.has(key)) first.set(key, unit.name);
  }
  const out = {};
  await Promise.all([...first].map(async ([key, name]) => {
    try {
      out[key] = await get(`/units/${path(...name.split("/"))}/config`);
    } catch (error) {
      out[key] = { error };
    }
  }));
  return out;
}

/**
 * Where a unit stands: unreported (its agent never reported), failed (its last report
 * failed), current (it applied the config it should run) or behind (it applied an
 * older one). Hashes compare as the server shows them to this role.
 */
export function unitStatus(unit, expectedHash) {
  const applied = unit.applied;
  if (!applied) return "unreported";
  if (!applied.ok) return "failed";
  if (expectedHash && applied.hash === expectedHash) return "current";
  return expectedHash ? "behind" : "unknown";
}

export const STATUSES = ["current", "behind", "failed", "unreported"];

export function statusBadge(status) {
  const kind = { current: "ok", behind: "warn", failed: "bad", unreported: "muted", unknown: "muted" }[status];
  return badge(status, `status ${kind}`);
}

/**
 * What a branch's units of ``app`` see when none runs it yet: the master's effective
 * config with the branch's changes (a ``set`` puts its value, an ``unset`` brings back
 * the schema default, or removes the key when there is none).
 */
export function previewEffective(app, changes) {
  const out = { ...app.effective };
  for (const [key, change] of Object.entries(changes || {})) {
    if (change.op === "set") out[key] = change.value;
    else {
      const option = app.schema[key];
      if (option && option.default !== null && option.default !== undefined) out[key] = option.default;
      else delete out[key];
    }
  }
  return out;
}

/** Same JSON, same value (for highlighting differences; key order does not matter). */
export function same(a, b) {
  return canonical(a) === canonical(b);
}

function canonical(v) {
  if (v === undefined) return "\u0000absent";
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The delta an SSE event carries: {revision, kind, key, removed, value}. */
export function delta(event) {
  return event && event.data && typeof event.data === "object" ? event.data : {};
}
