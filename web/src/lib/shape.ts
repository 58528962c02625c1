// Turning API answers into chart data: stacked series, ranked bars, donut slices.
// Pure functions, tested in shape.test.ts; the chart components only draw.

import type { Breakdown, BreakdownRow, Forecast, Team, Timeseries } from "../api/types";
import { formatBucket } from "./format";
import { parseNanos, usdNumber } from "./money";

export const NONE_LABEL = "(none)";
export const OTHER_LABEL = "Other";

/**
 * Eight hues, each with at least 3:1 contrast (WCAG 1.4.11) against the card
 * background of both themes (#ffffff and #171b22), so bars and slices stay visible.
 */
export const PALETTE = [
  "#4f7df3",
  "#d0702a",
  "#279270",
  "#c957b5",
  "#a98518",
  "#2b93b8",
  "#e05d5d",
  "#8c7ae6",
] as const;
export const OTHER_COLOR = "#808a9c";

export function label(key: string | null | undefined): string {
  return key === null || key === undefined || key === "" ? NONE_LABEL : key;
}

export interface StackedRow {
  start: string;
  label: string;
  total: number;
  [series: string]: number | string;
}

export interface Stacked {
  rows: StackedRow[];
  /** Series names, costliest first; OTHER_LABEL last when parts were grouped. */
  keys: string[];
}

/**
 * A stacked timeseries as chart rows: one row per bucket, one numeric column per
 * series. Series beyond `maxSeries` are summed into "Other" (exactly, in nano-dollars).
 */
export function stackSeries(ts: Timeseries, tz: string, maxSeries = 6): Stacked {
  const totals = new Map<string, bigint>();
  for (const point of ts.data) {
    for (const part of point.series ?? []) {
      const name = label(part.key);
      totals.set(name, (totals.get(name) ?? 0n) + parseNanos(part.cost_usd));
    }
  }
  const ranked = [...totals.entries()]
    .sort((a, b) => (a[1] === b[1] ? a[0].localeCompare(b[0]) : a[1] > b[1] ? -1 : 1))
    .map(([name]) => name);
  const overflow = ranked.length > maxSeries;
  const kept = overflow ? ranked.slice(0, maxSeries - 1) : ranked;
  const keptSet = new Set(kept);
  const keys = overflow ? [...kept, OTHER_LABEL] : kept;
  const rows = ts.data.map((point) => {
    const sums = new Map<string, bigint>(keys.map((k) => [k, 0n]));
    for (const part of point.series ?? []) {
      const name = label(part.key);
      const into = keptSet.has(name) ? name : OTHER_LABEL;
      sums.set(into, (sums.get(into) ?? 0n) + parseNanos(part.cost_usd));
    }
    const row: StackedRow = {
      start: point.start,
      label: formatBucket(point.start, ts.granularity, tz),
      total: usdNumber(point.cost_usd),
    };
    for (const [name, nanos] of sums) row[name] = Number(nanos) / 1e9;
    return row;
  });
  return { rows, keys };
}

export interface Bar {
  name: string;
  key: string | null;
  cost: number;
  costUsd: string;
  calls: number;
  share: number;
}

/** Breakdown rows as bars, costliest first, at most `limit`. */
export function bars(breakdown: Breakdown | undefined, limit = 10): Bar[] {
  if (!breakdown) return [];
  return breakdown.data.slice(0, limit).map((row) => ({
    name: label(row.key),
    key: row.key,
    cost: usdNumber(row.cost_usd),
    costUsd: row.cost_usd,
    calls: row.calls,
    share: row.share ? Number(row.share) : 0,
  }));
}

export interface Slice {
  name: string;
  value: number;
  costUsd: string;
  share: number;
  color: string;
}

/**
 * Donut slices for a breakdown: the largest `maxSlices - 1` kept, the rest summed
 * into "Other"; teams keep their own colour when they have one.
 */
export function donutSlices(breakdown: Breakdown | undefined, teams: Team[] = [], maxSlices = 7): Slice[] {
  if (!breakdown) return [];
  const colors = new Map(teams.filter((t) => t.color).map((t) => [t.name, t.color as string]));
  const rows = breakdown.data.filter((r) => parseNanos(r.cost_usd) > 0n);
  const total = rows.reduce((sum, r) => sum + parseNanos(r.cost_usd), 0n);
  const keep = rows.length > maxSlices ? rows.slice(0, maxSlices - 1) : rows;
  const rest = rows.slice(keep.length);
  const slices: Slice[] = keep.map((row, i) => ({
    name: label(row.key),
    value: usdNumber(row.cost_usd),
    costUsd: row.cost_usd,
    share: total > 0n ? Number((parseNanos(row.cost_usd) * 10000n) / total) / 10000 : 0,
    color: (row.key && colors.get(row.key)) || PALETTE[i % PALETTE.length]!,
  }));
  if (rest.length) {
    const nanos = rest.reduce((sum, r) => sum + parseNanos(r.cost_usd), 0n);
    slices.push({
      name: OTHER_LABEL,
      value: Number(nanos) / 1e9,
      costUsd: (Number(nanos) / 1e9).toFixed(9),
      share: total > 0n ? Number((nanos * 10000n) / total) / 10000 : 0,
      color: OTHER_COLOR,
    });
  }
  return slices;
}

/** A colour per series name: teams' own colours first, then the palette in order. */
export function seriesColors(keys: string[], teams: Team[] = []): Record<string, string> {
  const own = new Map(teams.filter((t) => t.color).map((t) => [t.name, t.color as string]));
  const out: Record<string, string> = {};
  let next = 0;
  for (const key of keys) {
    if (key === OTHER_LABEL) out[key] = OTHER_COLOR;
    else out[key] = own.get(key) ?? PALETTE[next++ % PALETTE.length]!;
  }
  return out;
}

export interface ForecastBar {
  id: string;
  name: string;
  spent: number;
  projected: number;
  low: number;
  high: number;
  limit: number | null;
  /** Projected spend as a share of the limit (null without a limit). */
  ratio: number | null;
  over: boolean;
  exhaustedAt: string | null;
}

/** The month-end projection and each budget's projection against its limit. */
export function forecastBars(forecast: Forecast | undefined): ForecastBar[] {
  if (!forecast) return [];
  const whole: ForecastBar = {
    id: "month",
    name: "All spend (month end)",
    spent: usdNumber(forecast.month_end.spent_usd),
    projected: usdNumber(forecast.month_end.projected_usd),
    low: usdNumber(forecast.month_end.projected_low_usd),
    high: usdNumber(forecast.month_end.projected_high_usd),
    limit: null,
    ratio: null,
    over: false,
    exhaustedAt: null,
  };
  const budgets = forecast.budgets.map((b) => {
    const limit = usdNumber(b.limit_usd);
    const projected = usdNumber(b.projected_usd);
    return {
      id: b.budget_id,
      name: b.name,
      spent: usdNumber(b.spent_usd),
      projected,
      low: usdNumber(b.projected_low_usd),
      high: usdNumber(b.projected_high_usd),
      limit,
      ratio: limit > 0 ? projected / limit : null,
      over: b.projected_over_limit,
      exhaustedAt: b.exhausted_at,
    };
  });
  return [whole, ...budgets];
}

/** Tokens of a row by class, for the tokens KPI and the request table. */
export function tokenTotal(row: Pick<BreakdownRow, "input_tokens" | "output_tokens" | "cache_read_input_tokens" | "cache_creation_input_tokens">): number {
  return row.input_tokens + row.output_tokens + row.cache_read_input_tokens + row.cache_creation_input_tokens;
}

/** A label cut to `max` characters with an ellipsis in the middle (axis ticks on small screens). */
export function shorten(name: string, max = 18): string {
  if (name.length <= max) return name;
  const head = Math.ceil((max - 1) / 2);
  const tail = Math.floor((max - 1) / 2);
  return `${name.slice(0, head)}…${name.slice(name.length - tail)}`;
}

/** A budget's default name ("key:<id>") with the key's label instead of its id, when known. */
export function budgetTitle(name: string, keyLabels: Map<string, string>): string {
  if (!name.startsWith("key:")) return name;
  const label = keyLabels.get(name.slice(4));
  return label ? `key: ${label}` : name;
}
