// The filters as React state that lives in the URL.

import { useCallback, useMemo } from "react";
import { FILTER_PARAMS, filtersToSearch, parseFilters, type Filters } from "./period";
import { navigate, useLocation } from "./router";

export function useFilters(): [Filters, (next: Partial<Filters>) => void] {
  const { pathname, search } = useLocation();
  const filters = useMemo(() => parseFilters(search), [search]);
  const update = useCallback(
    (next: Partial<Filters>) => {
      const merged = { ...filters, ...next };
      const q = filtersToSearch(merged, new URLSearchParams(search));
      q.delete("cursor");
      const text = q.toString();
      navigate(text ? `${pathname}?${text}` : pathname, { replace: true });
    },
    [filters, pathname, search],
  );
  return [filters, update];
}

/** A page-specific query parameter (not carried to other pages), kept in the URL. */
export function useParam(name: string): [string, (value: string) => void] {
  const { pathname, search } = useLocation();
  const value = new URLSearchParams(search).get(name) ?? "";
  const set = useCallback(
    (next: string) => {
      const q = new URLSearchParams(window.location.search);
      if (next) q.set(name, next);
      else q.delete(name);
      const text = q.toString();
      navigate(text ? `${pathname}?${text}` : pathname, { replace: true });
    },
    [name, pathname],
  );
  return [value, set];
}

/** `path` with the current page's carried filters (period, zone, team, key, model). */
export function withFilters(path: string, search: string): string {
  const from = new URLSearchParams(search);
  const [base, own = ""] = path.split("?");
  const q = new URLSearchParams(own);
  for (const name of FILTER_PARAMS) {
    const value = from.get(name);
    if (value !== null && !q.has(name)) q.set(name, value);
  }
  const text = q.toString();
  return text ? `${base}?${text}` : (base ?? path);
}
