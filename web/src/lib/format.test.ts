import { describe, expect, it } from "vitest";
import { formatAge, formatBucket, formatChange, formatDateTime, formatInt, formatMs, formatRatio, formatShortDateTime, formatTokens } from "./format";

describe("tokens and counts", () => {
  it.each([
    [0, "0"],
    [950, "950"],
    [445_189, "445.2k"],
    [4_005_034, "4.01M"],
    [2_500_000_000, "2.50B"],
  ])("formatTokens(%d) = %s", (n, shown) => {
    expect(formatTokens(n)).toBe(shown);
  });

  it("groups integers and tolerates nulls", () => {
    expect(formatInt(4_005_034)).toBe("4,005,034");
    expect(formatInt(null)).toBe("—");
    expect(formatTokens(undefined)).toBe("—");
  });
});

describe("percentages", () => {
  it("signs changes", () => {
    expect(formatChange("-8.17")).toBe("\u22128.2%");
    expect(formatChange("12.04")).toBe("+12.0%");
    expect(formatChange("0.00")).toBe("0.0%");
    expect(formatChange("250.6")).toBe("+251%");
    expect(formatChange("1250.4")).toBe("+1250%");
    expect(formatChange("8.25")).toBe("+8.2%"); // half to even, exactly
    expect(formatChange("-0.04")).toBe("0.0%");
    expect(formatChange("n/a")).toBe("—");
    expect(formatChange(null)).toBe("—");
  });

  it("shows ratios", () => {
    expect(formatRatio("0.0233")).toBe("2.3%");
    expect(formatRatio(0.5601)).toBe("56.0%");
    expect(formatRatio(null)).toBe("—");
    // half to even on the exact decimal, as the API rounds: never the float 1.05 -> 1.1
    expect(formatRatio("0.0105")).toBe("1.0%");
    expect(formatRatio("0.0115")).toBe("1.2%");
    expect(formatRatio("1.0000")).toBe("100.0%");
    expect(formatRatio("abc")).toBe("—");
  });
});

describe("durations", () => {
  it.each([
    [811.3, "811 ms"],
    [13_120.8, "13.1 s"],
    [94_992.3, "1m 35s"],
    [null, "—"],
  ])("formatMs(%s) = %s", (ms, shown) => {
    expect(formatMs(ms)).toBe(shown);
  });

  it("says how long ago", () => {
    expect(formatAge(4_000)).toBe("4 s ago");
    expect(formatAge(125_000)).toBe("2 min ago");
    expect(formatAge(3 * 3600e3)).toBe("3 h ago");
  });
});

describe("dates in the chosen zone", () => {
  const iso = "2026-11-23T10:34:00.803Z";

  it("shows the same instant per zone", () => {
    expect(formatDateTime(iso, "UTC")).toBe("Nov 23, 2026, 10:34:00");
    expect(formatDateTime(iso, "Europe/Berlin")).toBe("Nov 23, 2026, 11:34:00");
    expect(formatDateTime(iso, "America/Los_Angeles")).toBe("Nov 23, 2026, 02:34:00");
    expect(formatShortDateTime(iso, "Asia/Tokyo")).toBe("Nov 23, 19:34");
    expect(formatDateTime(null, "UTC")).toBe("—");
  });

  it("labels buckets by granularity", () => {
    expect(formatBucket("2026-11-23T10:00:00+00:00", "hour", "UTC")).toBe("10:00");
    expect(formatBucket("2026-11-23T00:00:00+01:00", "day", "Europe/Berlin")).toBe("Nov 23");
    expect(formatBucket("2026-11-01T00:00:00+00:00", "month", "UTC")).toBe("Nov 2026");
    // A local-day bucket read in another zone shifts with it.
    expect(formatBucket("2026-11-23T00:00:00+01:00", "day", "UTC")).toBe("Nov 22");
  });
});
