// Rate-limit forms → POST bodies, and a limit's busiest bucket in words. Pure
// functions, tested in limits.test.ts.

import type { RateLimit, RateLimitBody } from "../api/types";
import { formatInt } from "./format";

/** The API's ceiling for any per-minute rate (spendgate.limits.model.MAX_PER_MINUTE). */
export const MAX_PER_MINUTE = 100_000_000;

export interface LimitForm {
  scope: RateLimit["scope"];
  /** A key id, team, user or project; "*" for each one separately. */
  value: string;
  requests: string;
  inputTokens: string;
  outputTokens: string;
  name: string;
}

export const EMPTY_LIMIT: LimitForm = { scope: "key", value: "*", requests: "", inputTokens: "", outputTokens: "", name: "" };

const RATES: Array<[keyof LimitForm, keyof RateLimitBody, string]> = [
  ["requests", "requests_per_minute", "Requests"],
  ["inputTokens", "input_tokens_per_minute", "Input tokens"],
  ["outputTokens", "output_tokens_per_minute", "Output tokens"],
];

/** The POST body for a rate-limit form, or a message that says what to fix. */
export function limitBody(form: LimitForm): { body: RateLimitBody } | { error: string } {
  const value = form.value.trim();
  if (form.scope !== "global" && !value) return { error: `Say which ${form.scope} the limit is on, or * for each ${form.scope} separately.` };
  const body: RateLimitBody = { scope: form.scope, value: form.scope === "global" ? null : value };
  for (const [field, key, label] of RATES) {
    const text = String(form[field]).trim().replace(/[,_\s]/g, "");
    if (!text) continue;
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1 || n > MAX_PER_MINUTE) {
      return { error: `${label} per minute is a whole number from 1 to ${formatInt(MAX_PER_MINUTE)}, not "${form[field]}".` };
    }
    (body as unknown as Record<string, number>)[key] = n;
  }
  if (body.requests_per_minute === undefined && body.input_tokens_per_minute === undefined && body.output_tokens_per_minute === undefined) {
    return { error: "Give at least one rate: requests, input tokens or output tokens per minute." };
  }
  if (form.name.trim()) body.name = form.name.trim();
  return { body };
}

/** "alice: 73% used" for the fullest bucket, or "idle". */
export function busiest(limit: RateLimit, names: Map<string, string> = new Map()): string {
  const top = limit.buckets[0];
  if (!top) return "idle";
  const pct = Math.max(0, ...Object.values(top.usage).map((u) => u.percent));
  const who = top.subject === null ? "all calls" : (names.get(top.subject) ?? top.subject);
  return `${who}: ${pct}% used`;
}

/** Refusals over every bucket shown. */
export function refusals(limit: RateLimit): number {
  return limit.buckets.reduce((n, b) => n + b.refused, 0);
}
