import { describe, expect, it } from "vitest";
import type { RateLimit } from "../api/types";
import { busiest, EMPTY_LIMIT, limitBody, refusals } from "./limits";

const limit: RateLimit = {
  id: "l1",
  name: "per key",
  scope: "key",
  scope_value: "*",
  requests_per_minute: 60,
  input_tokens_per_minute: 100000,
  output_tokens_per_minute: null,
  description: "60 requests/min per key",
  created_at: "2026-11-01T10:00:00Z",
  buckets: [
    { subject: "k1", usage: { requests: { in_use: 30, limit: 60, percent: 50 }, input_tokens: { in_use: 73000, limit: 100000, percent: 73 } }, refused: 2 },
    { subject: "k2", usage: { requests: { in_use: 3, limit: 60, percent: 5 } }, refused: 1 },
  ],
};

const error = (form: Partial<typeof EMPTY_LIMIT>): string => {
  const out = limitBody({ ...EMPTY_LIMIT, ...form });
  return "error" in out ? out.error : "";
};

describe("limitBody", () => {
  it("sends the rates given, as numbers, and null for a global limit's value", () => {
    expect(limitBody({ ...EMPTY_LIMIT, requests: "60", outputTokens: "20,000", name: " burst " })).toEqual({
      body: { scope: "key", value: "*", requests_per_minute: 60, output_tokens_per_minute: 20000, name: "burst" },
    });
    expect(limitBody({ ...EMPTY_LIMIT, scope: "global", value: "ignored", inputTokens: "1000" })).toEqual({
      body: { scope: "global", value: null, input_tokens_per_minute: 1000 },
    });
  });

  it("says what to fix", () => {
    expect(error({ requests: "" })).toMatch(/at least one rate/);
    expect(error({ scope: "team", value: " ", requests: "5" })).toMatch(/which team .* or \* for each team/);
    expect(error({ requests: "0" })).toMatch(/Requests per minute is a whole number from 1 to 100,000,000/);
    expect(error({ inputTokens: "1.5" })).toMatch(/Input tokens per minute/);
    expect(error({ outputTokens: "200000000" })).toMatch(/Output tokens per minute/);
  });
});

describe("busiest and refusals", () => {
  it("names the fullest bucket by its label where known", () => {
    expect(busiest(limit)).toBe("k1: 73% used");
    expect(busiest(limit, new Map([["k1", "alice laptop"]]))).toBe("alice laptop: 73% used");
    expect(busiest({ ...limit, buckets: [{ ...limit.buckets[0]!, subject: null }] })).toBe("all calls: 73% used");
    expect(busiest({ ...limit, buckets: [] })).toBe("idle");
    expect(refusals(limit)).toBe(3);
  });
});
