// Alert channel forms → POST bodies, and deliveries → one line of text. Pure
// functions, tested in alerts.test.ts.

import type { AlertDelivery, AlertKind, ChannelBody, ChannelKind } from "../api/types";
import { formatDateTime } from "./format";

export const ALERT_KINDS: Array<[AlertKind, string]> = [
  ["budget_threshold", "Budget thresholds"],
  ["budget_forecast", "Budget forecasts"],
  ["spend_spike", "Spend spikes"],
];

export const CHANNEL_KINDS: Array<[ChannelKind, string]> = [
  ["webhook", "Webhook"],
  ["slack", "Slack"],
  ["email", "E-mail (SMTP)"],
];

export interface ChannelForm {
  name: string;
  kind: ChannelKind;
  url: string;
  signingSecret: string;
  smtpHost: string;
  smtpPort: string;
  security: "starttls" | "ssl" | "none";
  username: string;
  password: string;
  sender: string;
  recipients: string;
  kinds: AlertKind[];
}

export const EMPTY_CHANNEL: ChannelForm = {
  name: "",
  kind: "webhook",
  url: "",
  signingSecret: "",
  smtpHost: "",
  smtpPort: "",
  security: "starttls",
  username: "",
  password: "",
  sender: "",
  recipients: "",
  kinds: ALERT_KINDS.map(([k]) => k),
};

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

/** The POST body for a channel form, or a message that says what to fix. */
export function channelBody(form: ChannelForm): { body: ChannelBody } | { error: string } {
  const name = form.name.trim();
  if (!name) return { error: "Give the channel a name, e.g. finops-slack." };
  if (form.kinds.length === 0) return { error: "Choose at least one kind of alert for the channel to receive." };
  const body: ChannelBody = { name, kind: form.kind };
  // Every kind: the API's default (null) is all of them.
  if (form.kinds.length < ALERT_KINDS.length) body.kinds = ALERT_KINDS.map(([k]) => k).filter((k) => form.kinds.includes(k));
  if (form.kind === "webhook" || form.kind === "slack") {
    const url = form.url.trim();
    if (!isHttpUrl(url)) {
      return { error: form.kind === "slack" ? "Paste the Slack incoming-webhook URL (https://hooks.slack.com/services/…)." : "Give the http:// or https:// URL alerts are POSTed to." };
    }
    body.url = url;
    if (form.kind === "webhook" && form.signingSecret) body.signing_secret = form.signingSecret;
    return { body };
  }
  const host = form.smtpHost.trim();
  const sender = form.sender.trim();
  const recipients = form.recipients
    .split(/[,;\s]+/)
    .map((r) => r.trim())
    .filter(Boolean);
  if (!host) return { error: "Give the SMTP server's host name, e.g. smtp.example.com." };
  if (!sender) return { error: "Give the From address, e.g. spendgate@example.com." };
  if (recipients.length === 0) return { error: "Give at least one recipient (To), separated by commas." };
  const bad = [sender, ...recipients].find((a) => !/^[^@\s]+@[^@\s]+$/.test(a));
  if (bad) return { error: `"${bad}" is not an e-mail address.` };
  body.smtp = { host, security: form.security, sender, recipients };
  const port = form.smtpPort.trim();
  if (port) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) return { error: `The port is a number from 1 to 65535 (or empty for the default), not "${port}".` };
    body.smtp.port = n;
  }
  if (form.username.trim()) body.smtp.username = form.username.trim();
  if (form.password) body.password = form.password;
  return { body };
}

/** "finops: sent 12 Nov, 10:00" / "ops: failed after 3 attempts: timeout" / "ops: pending, next try …". */
export function deliveryText(d: AlertDelivery, tz: string): string {
  if (d.status === "sent") return `${d.channel}: sent${d.sent_at ? ` ${formatDateTime(d.sent_at, tz)}` : ""}`;
  const tries = `${d.attempts} attempt${d.attempts === 1 ? "" : "s"}`;
  const why = d.last_error ? `: ${d.last_error}` : "";
  if (d.status === "failed") return `${d.channel}: failed after ${tries}${why}`;
  const next = d.next_attempt_at ? `, next try ${formatDateTime(d.next_attempt_at, tz)}` : "";
  return `${d.channel}: pending (${tries}${next})${why}`;
}

/** Which alerts a channel receives, in words. */
export function kindsText(kinds: AlertKind[] | null): string {
  if (kinds === null || kinds.length === 0 || kinds.length === ALERT_KINDS.length) return "All alerts";
  const names = new Map(ALERT_KINDS);
  return kinds.map((k) => names.get(k) ?? k).join(", ");
}
