import { describe, expect, it } from "vitest";
import { fixedUsd, formatUsd, formatUsdCompact, nanosToUsd, parseNanos, roundNanos, sumUsd, usdNumber } from "./money";

describe("parseNanos", () => {
  it.each([
    ["19.871974525", 19_871_974_525n],
    ["0.000000001", 1n],
    ["-8.17", -8_170_000_000n],
    ["$3", 3_000_000_000n],
    ["1,234.5", 1_234_500_000_000n],
    [".5", 500_000_000n],
    ["", 0n],
    ["0E-9", 0n],
    ["1.5E+3", 1_500_000_000_000n],
    ["2e-9", 2n],
    ["-1.25E-2", -12_500_000n],
  ])("reads %s", (text, nanos) => {
    expect(parseNanos(text)).toBe(nanos);
  });

  it("rounds past the ninth decimal half to even", () => {
    expect(parseNanos("0.0000000005")).toBe(0n);
    expect(parseNanos("0.0000000015")).toBe(2n);
    expect(parseNanos("0.00000000151")).toBe(2n);
    expect(parseNanos("0.00000000049")).toBe(0n);
  });

  it("refuses what is not an amount", () => {
    expect(() => parseNanos("abc")).toThrow(/not a dollar amount/);
    expect(() => parseNanos("1.2.3")).toThrow();
  });
});

describe("rounding for display", () => {
  it("is half to even like spendgate.money.format_usd", () => {
    expect(roundNanos(12_345_000_000n, 2)).toBe(1234n); // 12.345 -> 12.34
    expect(roundNanos(12_355_000_000n, 2)).toBe(1236n); // 12.355 -> 12.36
    expect(roundNanos(12_345_000_001n, 2)).toBe(1235n);
    expect(roundNanos(-12_355_000_000n, 2)).toBe(-1236n);
  });

  it("groups thousands", () => {
    expect(fixedUsd(1_234_567_890_000n, 2)).toBe("1,234.57");
    expect(fixedUsd(0n, 2)).toBe("0.00");
    expect(fixedUsd(5_000_000n, 3)).toBe("0.005");
  });
});

describe("formatUsd", () => {
  it.each([
    ["19.871974525", "$19.87"],
    ["65.704290455", "$65.70"],
    ["0", "$0.00"],
    ["0.000000000", "$0.00"],
    ["1234567.891", "$1,234,567.89"],
    ["-3", "-$3.00"],
    ["0.035130000", "$0.04"],
    ["0.000911005", "$0.00091"],
    ["0.0035", "$0.0035"],
    ["0.000000001", "$0.000000001"],
  ])("shows %s as %s", (value, shown) => {
    expect(formatUsd(value)).toBe(shown);
  });

  it("takes fixed places and nulls", () => {
    expect(formatUsd("0.03513", { places: 6 })).toBe("$0.035130");
    expect(formatUsd(null)).toBe("—");
    expect(formatUsd(19_871_974_525n)).toBe("$19.87");
  });

  it("compacts axis labels", () => {
    expect(formatUsdCompact(0)).toBe("$0");
    expect(formatUsdCompact(12.4)).toBe("$12");
    expect(formatUsdCompact(1234)).toBe("$1.2k");
    expect(formatUsdCompact(3_400_000)).toBe("$3.4M");
    expect(formatUsdCompact(2.5)).toBe("$2.5");
    expect(formatUsdCompact(0.004)).toBe("$0.004");
  });
});

describe("exact sums and conversions", () => {
  it("adds decimal strings without float error", () => {
    expect(sumUsd(["0.1", "0.2"])).toBe(300_000_000n);
    expect(fixedUsd(sumUsd(["11.130572470", "6.291446500", "1.451432565"]), 9)).toBe("18.873451535");
  });

  it("turns nano-dollar parts into decimal strings", () => {
    expect(nanosToUsd(9_765_000)).toBe("0.009765000");
    expect(nanosToUsd(1_234_000_000_000n)).toBe("1234.000000000");
    expect(usdNumber("2.5")).toBe(2.5);
  });
});
