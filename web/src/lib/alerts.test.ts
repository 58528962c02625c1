import { describe, expect, it } from "vitest";
import type { AlertDelivery } from "../api/types";
import { channelBody, deliveryText, EMPTY_CHANNEL, kindsText } from "./alerts";
import { formatDateTime } from "./format";

const problem = (form: Partial<typeof EMPTY_CHANNEL>): string => {
  const out = channelBody({ ...EMPTY_CHANNEL, ...form });
  return "error" in out ? out.error : "";
};

describe("channelBody", () => {
  it("builds a webhook with its signing secret, and all kinds as the API's default", () => {
    expect(channelBody({ ...EMPTY_CHANNEL, name: " ops ", url: " https://hooks.example.com/x ", signingSecret: "s3cret" })).toEqual({
      body: { name: "ops", kind: "webhook", url: "https://hooks.example.com/x", signing_secret: "s3cret" },
    });
  });

  it("builds a Slack channel limited to some kinds, in the API's order", () => {
    const form = { ...EMPTY_CHANNEL, name: "finops", kind: "slack" as const, url: "https://hooks.slack.com/services/T/B/x", signingSecret: "ignored", kinds: ["spend_spike" as const, "budget_threshold" as const] };
    expect(channelBody(form)).toEqual({
      body: { name: "finops", kind: "slack", url: "https://hooks.slack.com/services/T/B/x", kinds: ["budget_threshold", "spend_spike"] },
    });
  });

  it("builds an e-mail channel: recipients split, port optional, password separate", () => {
    const form = { ...EMPTY_CHANNEL, name: "mail", kind: "email" as const, smtpHost: "smtp.example.com", sender: "sg@example.com", recipients: "a@example.com, b@example.com;c@example.com", security: "ssl" as const, username: "sg", password: "pw" };
    expect(channelBody(form)).toEqual({
      body: {
        name: "mail",
        kind: "email",
        smtp: { host: "smtp.example.com", security: "ssl", sender: "sg@example.com", recipients: ["a@example.com", "b@example.com", "c@example.com"], username: "sg" },
        password: "pw",
      },
    });
    const ported = channelBody({ ...form, smtpPort: "2525", password: "" });
    expect("body" in ported && ported.body.smtp?.port).toBe(2525);
    expect("body" in ported && "password" in ported.body).toBe(false);
  });

  it("says what to fix", () => {
    expect(problem({ url: "https://x.example" })).toMatch(/name/);
    expect(problem({ name: "a", url: "ftp://x.example" })).toMatch(/http:\/\/ or https:\/\//);
    expect(problem({ name: "a", kind: "slack", url: "" })).toMatch(/Slack incoming-webhook URL/);
    expect(problem({ name: "a", url: "https://x.example", kinds: [] })).toMatch(/at least one kind/);
    const mail = { name: "m", kind: "email" as const, smtpHost: "smtp.example.com", sender: "sg@example.com", recipients: "a@example.com" };
    expect(problem({ ...mail, smtpHost: " " })).toMatch(/SMTP server/);
    expect(problem({ ...mail, sender: "" })).toMatch(/From/);
    expect(problem({ ...mail, recipients: " , " })).toMatch(/recipient/);
    expect(problem({ ...mail, recipients: "finops" })).toBe('"finops" is not an e-mail address.');
    expect(problem({ ...mail, smtpPort: "70000" })).toMatch(/1 to 65535/);
    expect(problem(mail)).toBe("");
  });
});

describe("deliveryText", () => {
  const base: AlertDelivery = { channel_id: "c", channel: "ops", status: "sent", attempts: 1, next_attempt_at: null, last_error: null, sent_at: "2026-11-12T10:00:00Z" };
  it("says sent, failed with the error, or pending with the next try", () => {
    expect(deliveryText(base, "UTC")).toBe(`ops: sent ${formatDateTime("2026-11-12T10:00:00Z", "UTC")}`);
    expect(deliveryText({ ...base, status: "failed", attempts: 3, last_error: "HTTP 500", sent_at: null }, "UTC")).toBe("ops: failed after 3 attempts: HTTP 500");
    const pending = { ...base, status: "pending" as const, attempts: 1, next_attempt_at: "2026-11-12T10:05:00Z", last_error: "timeout", sent_at: null };
    expect(deliveryText(pending, "UTC")).toBe(`ops: pending (1 attempt, next try ${formatDateTime("2026-11-12T10:05:00Z", "UTC")}): timeout`);
  });
});

describe("kindsText", () => {
  it("names the kinds, or all", () => {
    expect(kindsText(null)).toBe("All alerts");
    expect(kindsText(["budget_threshold", "budget_forecast", "spend_spike"])).toBe("All alerts");
    expect(kindsText(["spend_spike"])).toBe("Spend spikes");
  });
});
