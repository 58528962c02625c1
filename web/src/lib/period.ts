// Periods and the filters shared by every page. They live in the URL query
// (?period=7d&tz=Europe/Berlin&team=Legal&key=...&model=...), so a link or a
// reload shows the same view, and they turn into the API's query parameters here.

import type { Granularity } from "./format";

export const PERIODS = ["24h", "7d", "30d", "90d", "mtd", "custom"] as const;
export type PeriodName = (typeof PERIODS)[number];

export const PERIOD_LABELS: Record<PeriodName, string> = {
  "24h": "Last 24 hours",
  "7d": "Last 7 days",
  "30d": "Last 30 days",
  "90d": "Last 90 days",
  mtd: "Month to date",
  custom: "Custom range",
};

export const DEFAULT_PERIOD: PeriodName = "30d";

/** The filters that carry across pages. Dates are YYYY-MM-DD in `tz`, `until` inclusive. */
export interface Filters {
  period: PeriodName;
  since: string | null;
  until: string | null;
  tz: string;
  team: string | null;
  key: string | null;
  model: string | null;
}

/** The query parameter names that carry across pages. */
export const FILTER_PARAMS = ["period", "since", "until", "tz", "team", "key", "model"] as const;

export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export function isZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Filters from a query string; anything invalid falls back to its default. */
export function parseFilters(search: string, defaultZone: string = browserZone()): Filters {
  const q = new URLSearchParams(search);
  const raw = q.get("period") as PeriodName | null;
  let period: PeriodName = raw && PERIODS.includes(raw) ? raw : DEFAULT_PERIOD;
  const since = q.get("since");
  const until = q.get("until");
  const validSince = since && DATE.test(since) ? since : null;
  const validUntil = until && DATE.test(until) ? until : null;
  if (period === "custom" && !validSince) period = DEFAULT_PERIOD;
  const tz = q.get("tz");
  return {
    period,
    since: period === "custom" ? validSince : null,
    until: period === "custom" ? validUntil : null,
    tz: tz && isZone(tz) ? tz : defaultZone,
    team: q.get("team") || null,
    key: q.get("key") || null,
    model: q.get("model") || null,
  };
}

/** The filters as query parameters (defaults left out), merged into `base`. */
export function filtersToSearch(
  filters: Filters,
  base: URLSearchParams = new URLSearchParams(),
  defaultZone: string = browserZone(),
): URLSearchParams {
  const q = new URLSearchParams(base);
  for (const name of FILTER_PARAMS) q.delete(name);
  if (filters.period !== DEFAULT_PERIOD) q.set("period", filters.period);
  if (filters.period === "custom") {
    if (filters.since) q.set("since", filters.since);
    if (filters.until) q.set("until", filters.until);
  }
  if (filters.tz !== defaultZone) q.set("tz", filters.tz);
  if (filters.team) q.set("team", filters.team);
  if (filters.key) q.set("key", filters.key);
  if (filters.model) q.set("model", filters.model);
  return q;
}

/** The next calendar day of a YYYY-MM-DD date. */
export function nextDay(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

/** Offset of `tz` from UTC at `instant`, in milliseconds (positive east of Greenwich). */
export function zoneOffsetMs(instant: Date, tz: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(instant);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const wall = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return wall - Math.floor(instant.getTime() / 1000) * 1000;
}

/** The UTC instant of local midnight starting `date` (YYYY-MM-DD) in `tz`. */
export function zonedMidnight(date: string, tz: string): Date {
  const guess = new Date(`${date}T00:00:00Z`);
  let instant = new Date(guess.getTime() - zoneOffsetMs(guess, tz));
  // A second pass settles days whose offset changes overnight (DST).
  instant = new Date(guess.getTime() - zoneOffsetMs(instant, tz));
  return instant;
}

/** The local date (YYYY-MM-DD) of `instant` in `tz`. */
export function localDate(instant: Date, tz: string): string {
  return new Date(instant.getTime() + zoneOffsetMs(instant, tz)).toISOString().slice(0, 10);
}

const PRESET_MS: Partial<Record<PeriodName, number>> = {
  "24h": 24 * 3600e3,
  "7d": 7 * 86400e3,
  "30d": 30 * 86400e3,
  "90d": 90 * 86400e3,
};

/** Start and end instants of the period (end null = now), for endpoints that take instants. */
export function periodRange(filters: Filters, now: Date = new Date()): { since: Date; until: Date | null } {
  const { period, tz } = filters;
  if (period === "custom" && filters.since) {
    return {
      since: zonedMidnight(filters.since, tz),
      until: filters.until ? zonedMidnight(nextDay(filters.until), tz) : null,
    };
  }
  if (period === "mtd") {
    const today = localDate(now, tz);
    return { since: zonedMidnight(`${today.slice(0, 8)}01`, tz), until: null };
  }
  return { since: new Date(now.getTime() - (PRESET_MS[period] ?? PRESET_MS["30d"]!)), until: null };
}

type Params = Record<string, string>;

/** Query parameters for /api/analytics/*: the period (resolved by the server), zone and filters. */
export function analyticsParams(filters: Filters): Params {
  const params: Params = { tz: filters.tz };
  if (filters.period === "custom" && filters.since) {
    params.since = filters.since;
    if (filters.until) params.until = nextDay(filters.until);
  } else {
    params.period = filters.period === "custom" ? "30d" : filters.period;
  }
  Object.assign(params, dimensionParams(filters));
  return params;
}

/** The team/key/model filters as API parameters. */
export function dimensionParams(filters: Filters): Params {
  const params: Params = {};
  if (filters.team) params.team = filters.team;
  if (filters.key) params.key_id = filters.key;
  if (filters.model) params.model = filters.model;
  return params;
}

/**
 * Query parameters for /api/requests and /api/export, which take instants and no zone:
 * presets as spans ago ("7d", which the API reads), the rest as instants computed in `tz`.
 */
export function rangeParams(filters: Filters, now: Date = new Date()): Params {
  if (filters.period in PRESET_MS) return { since: filters.period, ...dimensionParams(filters) };
  const { since, until } = periodRange(filters, now);
  const params: Params = { since: since.toISOString() };
  if (until) params.until = until.toISOString();
  return { ...params, ...dimensionParams(filters) };
}

/** The bucket size that gives a readable chart for the period. */
export function granularityFor(filters: Filters, now: Date = new Date()): Granularity {
  if (filters.period === "24h") return "hour";
  if (filters.period !== "custom") return "day";
  const { since, until } = periodRange(filters, now);
  const days = ((until ?? now).getTime() - since.getTime()) / 86400e3;
  if (days <= 2) return "hour";
  if (days <= 120) return "day";
  if (days <= 730) return "week";
  return "month";
}

/** "the previous 7 days" etc. for the hero's comparison line. */
export function previousLabel(filters: Filters): string {
  switch (filters.period) {
    case "24h":
      return "previous 24 hours";
    case "7d":
      return "previous 7 days";
    case "30d":
      return "previous 30 days";
    case "90d":
      return "previous 90 days";
    case "mtd":
      return "same span before";
    default:
      return "previous period";
  }
}
