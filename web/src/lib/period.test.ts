import { describe, expect, it } from "vitest";
import {
  analyticsParams,
  filtersToSearch,
  granularityFor,
  localDate,
  nextDay,
  parseFilters,
  periodRange,
  rangeParams,
  zonedMidnight,
  type Filters,
} from "./period";

const base: Filters = { period: "30d", since: null, until: null, tz: "UTC", team: null, key: null, model: null };

describe("filters in the URL", () => {
  it("round-trip, leaving defaults out", () => {
    const filters: Filters = { ...base, period: "7d", tz: "Europe/Berlin", team: "Legal", key: "k1", model: "claude-opus-4-7" };
    const search = filtersToSearch(filters, new URLSearchParams("status=error"), "UTC").toString();
    expect(search).toBe("status=error&period=7d&tz=Europe%2FBerlin&team=Legal&key=k1&model=claude-opus-4-7");
    expect(parseFilters(`?${search}`, "UTC")).toEqual(filters);
    expect(filtersToSearch(base, undefined, "UTC").toString()).toBe("");
  });

  it("fall back on bad values", () => {
    expect(parseFilters("?period=2y&tz=Mars/Olympus", "UTC")).toEqual(base);
    expect(parseFilters("?period=custom", "UTC").period).toBe("30d");
    expect(parseFilters("?period=custom&since=2026-11-01&until=nope", "UTC")).toMatchObject({ period: "custom", since: "2026-11-01", until: null });
  });
});

describe("time zones", () => {
  it("finds local midnight, across DST", () => {
    expect(zonedMidnight("2026-11-23", "UTC").toISOString()).toBe("2026-11-23T00:00:00.000Z");
    expect(zonedMidnight("2026-11-23", "Europe/Berlin").toISOString()).toBe("2026-11-22T23:00:00.000Z");
    expect(zonedMidnight("2026-07-01", "Europe/Berlin").toISOString()).toBe("2026-06-30T22:00:00.000Z");
    expect(zonedMidnight("2026-03-29", "Europe/Berlin").toISOString()).toBe("2026-03-28T23:00:00.000Z");
    expect(zonedMidnight("2026-11-23", "America/New_York").toISOString()).toBe("2026-11-23T05:00:00.000Z");
    expect(zonedMidnight("2026-11-23", "Asia/Kolkata").toISOString()).toBe("2026-11-22T18:30:00.000Z");
  });

  it("reads the local date of an instant", () => {
    const instant = new Date("2026-11-30T23:30:00Z");
    expect(localDate(instant, "UTC")).toBe("2026-11-30");
    expect(localDate(instant, "Europe/Berlin")).toBe("2026-12-01");
    expect(nextDay("2026-12-31")).toBe("2027-01-01");
  });
});

describe("API parameters", () => {
  const now = new Date("2026-11-23T11:49:00Z");

  it("sends presets to analytics as period + tz", () => {
    expect(analyticsParams({ ...base, period: "7d", team: "Legal", key: "k1" })).toEqual({ period: "7d", tz: "UTC", team: "Legal", key_id: "k1" });
  });

  it("sends custom ranges with an exclusive end", () => {
    const custom: Filters = { ...base, period: "custom", since: "2026-11-01", until: "2026-11-20", tz: "Europe/Berlin" };
    expect(analyticsParams(custom)).toEqual({ since: "2026-11-01", until: "2026-11-21", tz: "Europe/Berlin" });
    expect(rangeParams(custom, now)).toEqual({ since: "2026-10-31T23:00:00.000Z", until: "2026-11-20T23:00:00.000Z" });
  });

  it("sends presets to the request log as spans ago, month to date as an instant", () => {
    expect(rangeParams({ ...base, period: "24h", model: "m" }, now)).toEqual({ since: "24h", model: "m" });
    expect(rangeParams({ ...base, period: "mtd", tz: "America/New_York" }, now)).toEqual({ since: "2026-11-01T04:00:00.000Z" });
    expect(periodRange({ ...base, period: "7d" }, now).since.toISOString()).toBe("2026-11-16T11:49:00.000Z");
  });

  it("picks a readable bucket size", () => {
    expect(granularityFor({ ...base, period: "24h" }, now)).toBe("hour");
    expect(granularityFor({ ...base, period: "90d" }, now)).toBe("day");
    expect(granularityFor({ ...base, period: "custom", since: "2026-11-22", until: "2026-11-23" }, now)).toBe("hour");
    expect(granularityFor({ ...base, period: "custom", since: "2025-01-01", until: "2026-01-01" }, now)).toBe("week");
  });
});
