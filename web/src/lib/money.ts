// Money arrives from the API as decimal strings of USD ("19.871974525"). It is
// parsed to integer nano-dollars (BigInt) and rounded half to even for display,
// exactly like spendgate.money.format_usd, so the dashboard never shows a figure
// that differs from the API's by a float rounding error.

export const NANOS_PER_USD = 1_000_000_000n;

const DECIMAL = /^\s*([+-])?\$?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/;

/** `digits / 10^places` rounded half to even to an integer. */
function divideHalfEven(digits: bigint, places: number): bigint {
  const unit = 10n ** BigInt(places);
  let q = digits / unit;
  const twice = (digits % unit) * 2n;
  if (twice > unit || (twice === unit && q % 2n === 1n)) q += 1n;
  return q;
}

/**
 * A decimal USD string to integer nano-dollars (half to even past the ninth
 * decimal). Exponent forms such as "0E-9" or "1.5E+3" (Python's str of a
 * Decimal) are read exactly too.
 */
export function parseNanos(usd: string | number | null | undefined): bigint {
  if (usd === null || usd === undefined || usd === "") return 0n;
  const text = typeof usd === "number" ? usd.toFixed(9) : usd.replace(/,/g, "");
  const match = DECIMAL.exec(text);
  if (!match || (match[2] === "" && (match[3] ?? "") === "")) {
    throw new Error(`not a dollar amount: ${String(usd)}`);
  }
  const [, sign, whole = "", frac = "", exponent = "0"] = match;
  const digits = BigInt((whole || "0") + frac);
  // value = digits * 10^(exponent - frac.length); nanos = value * 10^9
  const shift = Number(exponent) - frac.length + 9;
  const nanos = shift >= 0 ? digits * 10n ** BigInt(shift) : divideHalfEven(digits, -shift);
  return sign === "-" ? -nanos : nanos;
}

/** Round integer nano-dollars to `places` decimals (half to even); returns the scaled integer. */
export function roundNanos(nanos: bigint, places: number): bigint {
  if (places < 0 || places > 9) throw new Error("places must be between 0 and 9");
  const unit = 10n ** BigInt(9 - places);
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  let q = abs / unit;
  const r = abs % unit;
  const twice = r * 2n;
  if (twice > unit || (twice === unit && q % 2n === 1n)) q += 1n;
  return negative ? -q : q;
}

function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Nano-dollars as a fixed-point string with `places` decimals, grouped: 1234567 -> "1,234.57". */
export function fixedUsd(nanos: bigint, places: number): string {
  const scaled = roundNanos(nanos, places);
  const negative = scaled < 0n;
  const abs = (negative ? -scaled : scaled).toString().padStart(places + 1, "0");
  const whole = abs.slice(0, abs.length - places) || "0";
  const frac = places > 0 ? "." + abs.slice(abs.length - places) : "";
  return `${negative ? "-" : ""}${group(whole)}${frac}`;
}

export interface UsdOptions {
  /** Fixed decimals; by default 2, or enough significant digits for amounts under a cent. */
  places?: number;
}

/** "$19.87"; amounts under a cent keep two significant digits ("$0.00091"); "-$3.00". */
export function formatUsd(value: string | bigint | null | undefined, options: UsdOptions = {}): string {
  if (value === null || value === undefined) return "—";
  const nanos = typeof value === "bigint" ? value : parseNanos(value);
  let places = options.places ?? 2;
  if (options.places === undefined) {
    const abs = nanos < 0n ? -nanos : nanos;
    if (abs !== 0n && abs < 5_000_000n) {
      // Under half a cent: show two significant digits, at most nine decimals.
      const digits = abs.toString().length; // of nanos
      places = Math.min(9, 9 - digits + 2);
    }
  }
  const text = fixedUsd(nanos, places);
  return text.startsWith("-") ? `-$${text.slice(1)}` : `$${text}`;
}

/** Short axis labels: "$0", "$12", "$1.2k", "$3.4M". */
export function formatUsdCompact(amount: number): string {
  const abs = Math.abs(amount);
  const sign = amount < 0 ? "-" : "";
  if (abs >= 1e6) return `${sign}$${trim(abs / 1e6)}M`;
  if (abs >= 1e3) return `${sign}$${trim(abs / 1e3)}k`;
  if (abs >= 10 || abs === 0) return `${sign}$${Math.round(abs)}`;
  if (abs >= 0.01) return `${sign}$${trim(abs, 2)}`;
  return `${sign}$${abs.toPrecision(1)}`;
}

function trim(n: number, places = 1): string {
  return n.toFixed(places).replace(/\.?0+$/, "");
}

/** A decimal USD string as a float, for chart geometry only (never for displayed figures). */
export function usdNumber(value: string | null | undefined): number {
  if (!value) return 0;
  return Number(parseNanos(value)) / 1e9;
}

/** Sum decimal USD strings exactly. */
export function sumUsd(values: Array<string | null | undefined>): bigint {
  return values.reduce<bigint>((total, v) => total + parseNanos(v), 0n);
}

/** Nano-dollar integers (the API's cost_breakdown parts) as a USD decimal string. */
export function nanosToUsd(nanos: number | bigint): string {
  return fixedUsd(BigInt(nanos), 9).replace(/,/g, "");
}
