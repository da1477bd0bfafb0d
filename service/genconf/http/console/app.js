// The console's entry point: log in, route (#/page/...), keep the live feed, and
// re-read what the current page shows when an event that concerns it arrives.

import { api, ApiError, onUnauthenticated, session } from "./api.js";
import { h, fill } from "./dom.js";
import { feed } from "./feed.js";
import { errorView, field } from "./ui.js";
import * as applications from "./pages/applications.js";
import * as fleet from "./pages/fleet.js";
import * as branches from "./pages/branches.js";
import * as historyPage from "./pages/history.js";
import * as live from "./pages/live.js";
import * as tokens from "./pages/tokens.js";

const PAGES = { applications, fleet, branches, history: historyPage, live, tokens };
const main = document.getElementById("main");
const top = document.getElementById("top");

let current = null; // {name, page: {refresh, relevant, dispose}, refresh}

/** The route of ``location.hash``: "#/branches/canary?x=1" -> {name, args, query}. */
function route() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart, queryPart = ""] = raw.split("?");
  const decode = (part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part; // a malformed %-escape: take it as typed
    }
  };
  const parts = pathPart.split("/").filter(Boolean).map(decode);
  return { name: parts[0] || "applications", args: parts.slice(1), query: new URLSearchParams(queryPart) };
}

/** A page's re-read: calls while one runs coalesce into one more run after it. */
function refresher(page) {
  let running = null;
  let again = false;
  return function refresh() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await page.refresh();
        } while (again && current && current.page === page);
      } catch (error) {
        console.error(error);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}

/** Re-read what the current page shows. */
function refresh() {
  return current ? current.refresh() : Promise.resolve();
}

const ctx = {
  session,
  feed,
  refresh,
  navigate(hash) {
    if (location.hash === hash) render();
    else location.hash = hash;
  },
};

function render() {
  const r = route();
  const page = PAGES[r.name];
  if (current && current.page.dispose) current.page.dispose();
  current = null;
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.page === r.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (!page || (r.name === "tokens" && !session.isAdmin)) {
    fill(main, h("section", { class: "panel" }, h("h1", {}, "Not found"),
      h("p", {}, r.name === "tokens" ? "Tokens are for admins only." : `There is no page ${JSON.stringify(r.name)}.`),
      h("p", {}, h("a", { href: "#/applications" }, "Go to the applications"))));
    return;
  }
  fill(main);
  const mounted = page.mount(main, r, ctx);
  current = { name: r.name, page: mounted, refresh: refresher(mounted) };
  refresh();
}

function onEvent(event) {
  if (!current) return;
  if (event.type === "resync" || !current.page.relevant || current.page.relevant(event)) refresh();
}

// -- session -----------------------------------------------------------------

function showWho() {
  const who = session.who;
  const label = document.getElementById("who");
  const logout = document.getElementById("logout");
  if (!who.auth) {
    fill(label, h("span", { class: "badge warn", title: "the server runs without authentication" }, "no auth"));
    logout.hidden = true;
  } else {
    fill(label, h("span", { class: "name" }, who.name || who.token_id || "token"), " ",
      h("span", { class: `badge role-${who.role}` }, who.role));
    logout.hidden = false;
  }
  document.getElementById("nav-tokens").hidden = !session.isAdmin;
}

function start(who) {
  session.who = who;
  top.hidden = false;
  showWho();
  feed.start();
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    window.history.replaceState(null, "", "#/applications");
  }
  render();
}

function logout(message) {
  session.token = "";
  session.who = null;
  feed.stop();
  if (current && current.page.dispose) current.page.dispose();
  current = null;
  document.querySelectorAll("dialog").forEach((d) => d.close());
  showLogin(message);
}

function showLogin(message) {
  top.hidden = true;
  const token = field({ name: "token", label: "Token", type: "password", required: true, autocomplete: "off",
    hint: "The bootstrap admin token, or one made with “genconf token create”. It is kept in this tab only (session storage), never in the address." });
  const errors = h("div", { class: "dialog-errors" }, message ? errorView(message) : null);
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", { class: "login panel", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "genconf console"),
    h("p", {}, "Log in with a genconf token."), token, errors, h("div", { class: "actions" }, button));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(errors);
    const value = form.elements.token.value.trim();
    button.disabled = true;
    try {
      const who = await api("GET", "/whoami", undefined, { token: value });
      session.token = value;
      start(who);
    } catch (error) {
      fill(errors, errorView(error));
    } finally {
      button.disabled = false;
    }
  });
  fill(main, form);
  form.elements.token.focus();
}

async function boot() {
  try {
    // With a token of this tab, as it; without one, the server may say auth is off.
    const who = await api("GET", "/whoami", undefined, { token: session.token });
    if (who.auth && !session.token) {
      showLogin();
      return;
    }
    start(who);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      const had = session.token;
      session.token = "";
      showLogin(had ? error : null);
      return;
    }
    const retry = h("button", { type: "button", class: "primary", onclick: () => boot() }, "Try again");
    fill(main, h("section", { class: "panel" }, h("h1", {}, "genconf console"), errorView(error), retry));
  }
}

document.getElementById("logout").addEventListener("click", () => logout());
onUnauthenticated((error) => logout(error));
window.addEventListener("hashchange", () => {
  if (session.who) {
    render();
    main.focus({ preventScroll: true });
  }
});
feed.subscribe(onEvent);
feed.onStatus((status, detail) => {
  const el = document.getElementById("feed-status");
  el.dataset.status = status;
  el.textContent = { live: "live", connecting: "connecting", reconnecting: "reconnecting", refused: "feed refused", idle: "" }[status] || status;
  el.title = detail ? `live feed: ${detail}` : "live feed: the pages update as changes happen";
  if (status === "refused" && session.who && session.who.auth && /UNAUTHENTICATED/.test(detail)) {
    logout(new ApiError(401, "UNAUTHENTICATED", detail.replace(/^UNAUTHENTICATED: /, "")));
  }
});

boot();
