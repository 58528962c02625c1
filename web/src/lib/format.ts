// Numbers, tokens, percentages, durations and dates as the dashboard shows them.
// One locale (en-US) so figures read the same everywhere and tests are stable;
// dates are shown in the time zone chosen in the filter bar.

import { fixedUsd, parseNanos } from "./money";

const LOCALE = "en-US";

const integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });

/** 4005034 -> "4,005,034". */
export function formatInt(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  return integer.format(n);
}

/** Token counts, compact: 950 -> "950", 445189 -> "445.2k", 4005034 -> "4.01M", 2.5e9 -> "2.50B". */
export function formatTokens(n: number | null | undefined): string {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  const abs = Math.abs(n);
  if (abs < 1_000) return integer.format(n);
  if (abs < 1_000_000) return `${(n / 1_000).toFixed(1)}k`;
  if (abs < 1_000_000_000) return `${(n / 1_000_000).toFixed(2)}M`;
  return `${(n / 1_000_000_000).toFixed(2)}B`;
}

/** The API's percent strings ("-8.17") with a sign: "−8.2%"; null -> "—". */
export function formatChange(pct: string | null | undefined): string {
  if (pct === null || pct === undefined || pct === "") return "—";
  let nanos: bigint;
  try {
    nanos = parseNanos(pct);
  } catch {
    return "—";
  }
  const abs = nanos < 0n ? -nanos : nanos;
  // exact decimal, half to even (as the API rounds), never a float's toFixed
  const rounded = fixedUsd(abs, abs >= 100n * 1_000_000_000n ? 0 : 1).replace(/,/g, "");
  if (/^0(\.0)?$/.test(rounded)) return "0.0%";
  return `${nanos > 0n ? "+" : "\u2212"}${rounded}%`;
}

/** A ratio ("0.0233" or 0.5601) as a percentage: "2.3%". */
export function formatRatio(ratio: string | number | null | undefined, places = 1): string {
  if (ratio === null || ratio === undefined || ratio === "") return "—";
  if (typeof ratio === "number" && !Number.isFinite(ratio)) return "—";
  let nanos: bigint;
  try {
    nanos = parseNanos(ratio);
  } catch {
    return "—";
  }
  // Exact decimal arithmetic, half to even like the API's own rounding: the
  // API's "0.0105" is "1.0%" here too, never the float 1.05 -> "1.1%".
  return `${fixedUsd(nanos * 100n, places)}%`;
}

/** Milliseconds: 811.3 -> "811 ms", 13120.8 -> "13.1 s", 94992 -> "1m 35s". */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function dateFormat(tz: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${tz}|${JSON.stringify(options)}`;
  let found = formatters.get(key);
  if (!found) {
    found = new Intl.DateTimeFormat(LOCALE, { timeZone: tz, ...options });
    formatters.set(key, found);
  }
  return found;
}

/** "Nov 23, 2026, 10:34:00" in `tz`. */
export function formatDateTime(iso: string | null | undefined, tz: string): string {
  if (!iso) return "—";
  return dateFormat(tz, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }).format(new Date(iso));
}

/** Compact time for a log row: "Nov 23, 10:34". */
export function formatShortDateTime(iso: string | null | undefined, tz: string): string {
  if (!iso) return "—";
  return dateFormat(tz, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(iso));
}

export type Granularity = "hour" | "day" | "week" | "month";

/** Axis label for a bucket start: hour "10:00", day/week "Nov 23", month "Nov 2026". */
export function formatBucket(iso: string, granularity: Granularity, tz: string): string {
  const date = new Date(iso);
  switch (granularity) {
    case "hour":
      return dateFormat(tz, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date);
    case "month":
      return dateFormat(tz, { month: "short", year: "numeric" }).format(date);
    default:
      return dateFormat(tz, { month: "short", day: "numeric" }).format(date);
  }
}

/** Relative age for "updated 12 s ago". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  return `${Math.round(m / 60)} h ago`;
}
