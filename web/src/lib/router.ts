// A tiny client-side router over the History API: the dashboard has a handful of
// routes and needs nothing more. Paths must match spendgate/api/dashboard.py's
// CLIENT_ROUTES so deep links and reloads reach the app.

import { useSyncExternalStore } from "react";

const EVENT = "spendgate:navigate";

export interface Location {
  pathname: string;
  search: string;
}

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(EVENT, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(EVENT, onChange);
  };
}

function snapshot(): string {
  return window.location.pathname + window.location.search;
}

/** The current path and query; re-renders on navigation. */
export function useLocation(): Location {
  const href = useSyncExternalStore(subscribe, snapshot, snapshot);
  const at = href.indexOf("?");
  return at < 0 ? { pathname: href, search: "" } : { pathname: href.slice(0, at), search: href.slice(at) };
}

/** Go to `to` (path and query) without reloading; `replace` keeps history short for filter edits. */
export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === snapshot()) return;
  if (options.replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  window.dispatchEvent(new Event(EVENT));
}

export interface Match {
  route: string;
  params: Record<string, string>;
}

/** Match `pathname` against patterns like "/requests/:id" (first match wins). */
export function matchRoute(pathname: string, patterns: readonly string[]): Match | null {
  const parts = pathname.replace(/\/+$/, "").split("/").filter(Boolean);
  for (const route of patterns) {
    const want = route.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    want.forEach((segment, i) => {
      const got = parts[i] ?? "";
      if (segment.startsWith(":")) params[segment.slice(1)] = decodeURIComponent(got);
      else if (segment !== got) ok = false;
    });
    if (ok) return { route, params };
  }
  return null;
}
