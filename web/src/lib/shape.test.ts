import { describe, expect, it } from "vitest";
import type { Breakdown, BreakdownRow, Forecast, SeriesPart, Timeseries, TimePoint } from "../api/types";
import { bars, budgetTitle, donutSlices, forecastBars, NONE_LABEL, OTHER_COLOR, OTHER_LABEL, PALETTE, seriesColors, shorten, stackSeries, tokenTotal } from "./shape";

const zero = { calls: 0, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cache_savings_usd: "0" };

function part(key: string | null, cost: string): SeriesPart {
  return { ...zero, key, cost_usd: cost, calls: 1 };
}

function point(start: string, parts: SeriesPart[]): TimePoint {
  const total = parts.reduce((s, p) => s + Number(p.cost_usd), 0);
  return { ...zero, start, cost_usd: total.toFixed(9), series: parts };
}

function row(key: string | null, cost: string, share = "0"): BreakdownRow {
  return { ...zero, key, cost_usd: cost, share, calls: 2 };
}

const series: Timeseries = {
  granularity: "day",
  tz: "UTC",
  stack: "model",
  since: "2026-11-21T00:00:00Z",
  until: "2026-11-23T00:00:00Z",
  data: [
    point("2026-11-21T00:00:00+00:00", [part("opus", "1.5"), part("sonnet", "0.25")]),
    point("2026-11-22T00:00:00+00:00", [part("sonnet", "2"), part(null, "0.1")]),
    point("2026-11-23T00:00:00+00:00", []),
  ],
};

describe("stackSeries", () => {
  it("makes one row per bucket and one column per model, costliest first", () => {
    const { rows, keys } = stackSeries(series, "UTC");
    expect(keys).toEqual(["sonnet", "opus", NONE_LABEL]);
    expect(rows.map((r) => r.label)).toEqual(["Nov 21", "Nov 22", "Nov 23"]);
    expect(rows[0]).toMatchObject({ opus: 1.5, sonnet: 0.25, [NONE_LABEL]: 0, total: 1.75 });
    expect(rows[2]).toMatchObject({ opus: 0, sonnet: 0, total: 0 });
  });

  it("groups the tail into Other, exactly", () => {
    const { rows, keys } = stackSeries(series, "UTC", 2);
    expect(keys).toEqual(["sonnet", OTHER_LABEL]);
    expect(rows[0]![OTHER_LABEL]).toBe(1.5);
    expect(rows[1]![OTHER_LABEL]).toBe(0.1);
  });

  it("labels buckets in the chosen zone", () => {
    expect(stackSeries(series, "America/Los_Angeles").rows[0]!.label).toBe("Nov 20");
  });
});

describe("bars and donut slices", () => {
  const breakdown: Breakdown = {
    by: "team",
    data: [row("Engineering", "11.130572470", "0.5601"), row("Legal", "6.2914465", "0.3166"), row(null, "1.0", "0.05"), row("HR", "0", "0")],
  };

  it("turns a breakdown into bars", () => {
    const out = bars(breakdown, 2);
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual({ name: "Engineering", key: "Engineering", cost: 11.13057247, costUsd: "11.130572470", calls: 2, share: 0.5601 });
    expect(bars(undefined)).toEqual([]);
  });

  it("keeps team colours, drops zero slices and sums the rest into Other", () => {
    const teams = [{ id: "1", name: "Legal", color: "#123456", created_at: "" }];
    const slices = donutSlices(breakdown, teams, 2);
    expect(slices.map((s) => s.name)).toEqual(["Engineering", OTHER_LABEL]);
    expect(slices[0]!.color).toBe(PALETTE[0]);
    expect(slices[1]).toMatchObject({ color: OTHER_COLOR, costUsd: "7.291446500" });
    expect(slices[0]!.share + slices[1]!.share).toBeCloseTo(1, 3);
    const all = donutSlices(breakdown, teams);
    expect(all.find((s) => s.name === "Legal")!.color).toBe("#123456");
    expect(all.map((s) => s.name)).toEqual(["Engineering", "Legal", NONE_LABEL]);
  });

  it("colours series stably", () => {
    expect(seriesColors(["a", "b", OTHER_LABEL])).toEqual({ a: PALETTE[0], b: PALETTE[1], [OTHER_LABEL]: OTHER_COLOR });
  });
});

describe("forecastBars", () => {
  it("puts the month first, then each budget against its limit", () => {
    const projection = {
      period_start: "",
      period_end: "",
      spent_usd: "65.70",
      daily_rate_usd: "2.85",
      projected_usd: "87.10",
      projected_low_usd: "79.34",
      projected_high_usd: "94.87",
      days_left: 7.5,
      method: "linear",
      confidence: "90%",
    };
    const forecast: Forecast = {
      month_end: projection,
      budgets: [{ ...projection, budget_id: "b1", name: "team:Legal", limit_usd: "50", projected_usd: "60", exhausted_at: "2026-11-28T00:00:00Z", projected_over_limit: true }],
    };
    const out = forecastBars(forecast);
    expect(out[0]).toMatchObject({ id: "month", projected: 87.1, limit: null });
    expect(out[1]).toMatchObject({ id: "b1", limit: 50, ratio: 1.2, over: true, exhaustedAt: "2026-11-28T00:00:00Z" });
  });
});

it("adds tokens of every class", () => {
  expect(tokenTotal({ input_tokens: 1, output_tokens: 2, cache_read_input_tokens: 3, cache_creation_input_tokens: 4 })).toBe(10);
});

describe("palette contrast", () => {
  function luminance(hex: string): number {
    const [r, g, b] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
  }
  const contrast = (a: string, b: string) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi! + 0.05) / (lo! + 0.05);
  };

  it.each([...PALETTE, OTHER_COLOR])("%s is visible on both themes' cards", (color) => {
    expect(contrast(color, "#ffffff")).toBeGreaterThanOrEqual(3);
    expect(contrast(color, "#171b22")).toBeGreaterThanOrEqual(3);
  });
});

it("shortens axis labels in the middle and names key budgets by label", () => {
  expect(shorten("claude-sonnet-4-5-20250929")).toBe("claude-so…20250929");
  expect(shorten("claude-opus-4-7")).toBe("claude-opus-4-7");
  const labels = new Map([["k1", "alice laptop"]]);
  expect(budgetTitle("key:k1", labels)).toBe("key: alice laptop");
  expect(budgetTitle("key:k2", labels)).toBe("key:k2");
  expect(budgetTitle("Legal monthly", labels)).toBe("Legal monthly");
});
