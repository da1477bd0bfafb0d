// The console's one connection to the admin feed (GET /api/v1/watch, server-sent events).
//
// EventSource cannot send an Authorization header, so this reads the stream with
// fetch() and parses text/event-stream itself. It resumes after a drop with
// Last-Event-ID (the revision of the last event seen, kept as the exact text the
// server sent: revisions do not fit a JavaScript number). A "too-old" event means
// the server no longer holds what followed that revision: the feed starts again
// live and tells its listeners to re-read everything.

import { BASE, errorOf, headers } from "./api.js";

const MAX_BACKOFF_MS = 15000;
const KEEP = 500;

export class Feed {
  constructor() {
    this.lastId = "";
    this.status = "idle";
    this.recent = []; // newest last, at most KEEP: what the live page shows first
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.controller = null;
    this.backoff = 500;
    this.stopped = true;
    this.retry = null;
  }

  /** ``fn(event)`` for every event: {id, type, data}; type "resync" after a gap. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status, "");
    return () => this.statusListeners.delete(fn);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.lastId = "";
    this.recent = [];
    this.setStatus("idle");
  }

  setStatus(status, detail = "") {
    this.status = status;
    this.statusListeners.forEach((fn) => fn(status, detail));
  }

  emit(event) {
    event.received = new Date();
    if (event.type !== "resync") {
      this.recent.push(event);
      if (this.recent.length > KEEP) this.recent.splice(0, this.recent.length - KEEP);
    }
    this.listeners.forEach((fn) => {
      try {
        fn(event);
      } catch (exc) {
        console.error("feed listener failed", exc);
      }
    });
  }

  async connect() {
    const controller = new AbortController();
    this.controller = controller;
    this.setStatus("connecting");
    const extra = { Accept: "text/event-stream" };
    if (this.lastId) extra["Last-Event-ID"] = this.lastId;
    let detail = "";
    try {
      const response = await fetch(`${BASE}/watch`, {
        headers: headers(extra),
        cache: "no-store",
        signal: controller.signal,
      });
      if (response.status === 410) {
        // Our revision is older than the server keeps: start live (one "too-old" event came).
        detail = "the server no longer holds the changes since the last event seen: starting live";
        this.gap();
      } else if (!response.ok) {
        const error = await errorOf(response);
        detail = `${error.code}: ${error.message}`;
        if (response.status === 401 || response.status === 403) {
          this.setStatus("refused", detail);
          this.stopped = true;
          return;
        }
      } else {
        this.setStatus("live");
        this.backoff = 500;
        // Pages read before the feed was connected (or while it was down): re-read now,
        // so nothing that happened in between is missed.
        this.emit({ id: this.lastId, type: "resync", data: null });
        await this.read(response.body.getReader());
        detail = "the server closed the feed";
      }
    } catch (exc) {
      if (controller.signal.aborted) return;
      detail = String(exc.message || exc);
    }
    if (this.stopped || controller.signal.aborted) return;
    this.setStatus("reconnecting", detail);
    this.retry = setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
  }

  /** The server no longer holds our revision: start live, and have every page re-read. */
  gap() {
    this.lastId = "";
    this.emit({ id: "", type: "resync", data: null });
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { id: null, type: "", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      // Lines end with \n, \r\n or \r (the spec allows all three).
      while ((cut = buffer.search(/\r\n|\r|\n/)) >= 0) {
        if (buffer[cut] === "\r" && cut === buffer.length - 1) break; // maybe \r\n split
        const line = buffer.slice(0, cut);
        buffer = buffer.slice(cut + (buffer.startsWith("\r\n", cut) ? 2 : 1));
        if (line === "") {
          this.dispatch(event);
          event = { id: null, type: "", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue; // a heartbeat
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "id") event.id = text;
        else if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
      }
    }
  }

  dispatch(raw) {
    if (raw.id !== null) this.lastId = raw.id;
    if (!raw.data.length) return;
    const type = raw.type || "message";
    const text = raw.data.join("\n");
    let data;
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
    if (type === "too-old") {
      // The server closes the stream after it: the reconnect starts live.
      this.setStatus("reconnecting", data && data.message ? `${data.code}: ${data.message}` : "too old");
      this.gap();
      return;
    }
    if (type === "closed") {
      // The server ended the feed (e.g. this reader fell behind): resume from lastId.
      this.setStatus("reconnecting", data && data.message ? `${data.code}: ${data.message}` : "closed");
      return;
    }
    // The server puts the id on the last event of each revision only; every event's data
    // names its revision, read here as text (JSON.parse would round it).
    const revision = (/"revision":(\d+)/.exec(text) || [])[1] || raw.id || "";
    this.emit({ id: raw.id, revision, type, data });
  }
}

export const feed = new Feed();
