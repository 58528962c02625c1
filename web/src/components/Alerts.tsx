// The Alerts card of the Budgets page: channels (admins add, test and delete them)
// and the history of fired alerts with each delivery's outcome.

import { useId, useState, type FormEvent } from "react";
import { describeError } from "../api/client";
import { useOptional, useSend } from "../api/hooks";
import type { Alert, AlertChannel, AlertKind, ChannelBody, ChannelKind, ChannelTest } from "../api/types";
import { ADMIN_ONLY, useAccess } from "../lib/access";
import { ALERT_KINDS, CHANNEL_KINDS, channelBody, deliveryText, EMPTY_CHANNEL, kindsText, type ChannelForm } from "../lib/alerts";
import { formatDateTime } from "../lib/format";
import { Empty, Loaded } from "./states";
import { Badge, Field, FormEnd, Notice } from "./ui";

function Unavailable({ what }: { what: string }) {
  return <Empty title={`${what} are not available on this gateway.`}>Upgrade spendgate to a version with {what.toLowerCase()}; the rest of this page works without them.</Empty>;
}

function ChannelActions({ channel }: { channel: AlertChannel }) {
  const test = useSend<void, ChannelTest>("POST", `/api/alerts/channels/${encodeURIComponent(channel.id)}/test`);
  const remove = useSend<void, unknown>("DELETE", `/api/alerts/channels/${encodeURIComponent(channel.id)}`);
  const result = test.data;
  return (
    <div className="row-actions">
      <button type="button" className="btn btn-small" disabled={test.isPending} onClick={() => test.mutate()} aria-label={`Send a test alert to ${channel.name}`}>
        {test.isPending ? "Sending…" : "Send test"}
      </button>
      <button
        type="button"
        className="btn btn-small btn-danger"
        aria-label={`Delete channel ${channel.name}`}
        onClick={() => window.confirm(`Delete the alert channel ${channel.name}? Its past deliveries stay in the history.`) && remove.mutate()}
      >
        Delete
      </button>
      <span role="status" aria-live="polite" data-testid="channel-test-result">
        {result && (result.ok ? <Badge tone="ok">Test delivered</Badge> : <Badge tone="danger">Test failed: {result.error}</Badge>)}
      </span>
      {(test.error || remove.error) && <Notice tone="danger">{describeError(test.error ?? remove.error)}</Notice>}
    </div>
  );
}

function ChannelList({ channels }: { channels: AlertChannel[] }) {
  if (channels.length === 0) {
    return <Empty title="No alert channels.">Budget thresholds, forecasts and spend spikes fire alerts; add a webhook, Slack or e-mail channel below to receive them.</Empty>;
  }
  return (
    <ul className="channel-list" data-testid="alert-channels">
      {channels.map((c) => (
        <li key={c.id} data-channel-id={c.id}>
          <div>
            <strong>{c.name}</strong> <span className="muted">· {CHANNEL_KINDS.find(([k]) => k === c.kind)?.[1] ?? c.kind} · {kindsText(c.kinds)}</span>
          </div>
          <div className="muted small">
            <code>{c.target}</code>
          </div>
          <ChannelActions channel={c} />
        </li>
      ))}
    </ul>
  );
}

function CreateChannel() {
  const id = useId();
  const create = useSend<ChannelBody, AlertChannel>("POST", "/api/alerts/channels");
  const [form, setForm] = useState<ChannelForm>(EMPTY_CHANNEL);
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const set = (name: keyof ChannelForm) => (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value });
  const toggleKind = (kind: AlertKind, on: boolean) => setForm({ ...form, kinds: on ? [...form.kinds, kind] : form.kinds.filter((k) => k !== kind) });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const checked = channelBody(form);
    if ("error" in checked) return setProblem(checked.error);
    setProblem(null);
    create.mutate(checked.body, {
      onSuccess: (channel) => {
        setDone(`Channel ${channel.name} added: it receives alerts fired from now on. Send it a test to check it arrives.`);
        setForm({ ...EMPTY_CHANNEL, kind: form.kind });
      },
    });
  };
  const kind = form.kind;
  return (
    <form className="form form-grid" onSubmit={submit} aria-label="Add an alert channel" noValidate>
      <Field label="Channel name" htmlFor={`${id}-name`}>
        <input id={`${id}-name`} required maxLength={200} value={form.name} onChange={set("name")} placeholder="finops-slack" />
      </Field>
      <Field label="Kind" htmlFor={`${id}-kind`}>
        <select id={`${id}-kind`} value={kind} onChange={(e) => setForm({ ...form, kind: e.target.value as ChannelKind })}>
          {CHANNEL_KINDS.map(([k, name]) => (
            <option key={k} value={k}>
              {name}
            </option>
          ))}
        </select>
      </Field>
      {kind !== "email" ? (
        <>
          <Field label={kind === "slack" ? "Slack webhook URL" : "Webhook URL"} htmlFor={`${id}-url`} hint="Stored encrypted, never shown again">
            <input id={`${id}-url`} type="url" required autoComplete="off" value={form.url} onChange={set("url")} placeholder={kind === "slack" ? "https://hooks.slack.com/services/…" : "https://example.com/hooks/spend"} />
          </Field>
          {kind === "webhook" && (
            <Field label="Signing secret" htmlFor={`${id}-secret`} hint="Optional: HMAC-SHA256 in x-spendgate-signature">
              <input id={`${id}-secret`} type="password" autoComplete="new-password" value={form.signingSecret} onChange={set("signingSecret")} />
            </Field>
          )}
        </>
      ) : (
        <>
          <Field label="SMTP host" htmlFor={`${id}-host`}>
            <input id={`${id}-host`} required value={form.smtpHost} onChange={set("smtpHost")} placeholder="smtp.example.com" />
          </Field>
          <Field label="Security" htmlFor={`${id}-security`}>
            <select id={`${id}-security`} value={form.security} onChange={(e) => setForm({ ...form, security: e.target.value as ChannelForm["security"] })}>
              <option value="starttls">STARTTLS (587)</option>
              <option value="ssl">TLS (465)</option>
              <option value="none">None (25)</option>
            </select>
          </Field>
          <Field label="Port" htmlFor={`${id}-port`} hint="Empty: the security's default">
            <input id={`${id}-port`} inputMode="numeric" value={form.smtpPort} onChange={set("smtpPort")} />
          </Field>
          <Field label="SMTP username" htmlFor={`${id}-user`} hint="Optional">
            <input id={`${id}-user`} autoComplete="off" value={form.username} onChange={set("username")} />
          </Field>
          <Field label="SMTP password" htmlFor={`${id}-password`} hint="Optional; stored encrypted">
            <input id={`${id}-password`} type="password" autoComplete="new-password" value={form.password} onChange={set("password")} />
          </Field>
          <Field label="From" htmlFor={`${id}-from`}>
            <input id={`${id}-from`} type="email" required value={form.sender} onChange={set("sender")} placeholder="spendgate@example.com" />
          </Field>
          <Field label="To" htmlFor={`${id}-to`} hint="Comma separated">
            <input id={`${id}-to`} required value={form.recipients} onChange={set("recipients")} placeholder="finops@example.com" />
          </Field>
        </>
      )}
      <fieldset className="checks">
        <legend>Alerts it receives</legend>
        {ALERT_KINDS.map(([k, name]) => (
          <label key={k} className="switch">
            <input type="checkbox" checked={form.kinds.includes(k)} onChange={(e) => toggleKind(k, e.target.checked)} />
            <span>{name}</span>
          </label>
        ))}
      </fieldset>
      <FormEnd pending={create.isPending} label="Add channel" busyLabel="Adding…" problem={problem} error={create.error} done={done} />
    </form>
  );
}

function Channels() {
  const channels = useOptional<AlertChannel[]>("/api/alerts/channels");
  return (
    <Loaded query={channels} what="alert channels">
      {(rows) =>
        rows === null ? (
          <Unavailable what="Alert channels" />
        ) : (
          <>
            <ChannelList channels={rows} />
            <details className="add-channel">
              <summary>Add a channel</summary>
              <CreateChannel />
            </details>
          </>
        )
      }
    </Loaded>
  );
}

function History({ tz }: { tz: string }) {
  const history = useOptional<Alert[]>("/api/alerts", { limit: 50 });
  return (
    <Loaded query={history} what="alert history">
      {(rows) => {
        if (rows === null) return <Unavailable what="Alerts" />;
        if (rows.length === 0) return <Empty title="No alerts fired yet.">An alert fires when a budget passes one of its thresholds, is projected to run out, or spend spikes.</Empty>;
        return (
          <div className="table-scroll" tabIndex={0} role="region" aria-label="Alert history, scrolls sideways">
            <table className="table table-compact" data-testid="alert-history">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Alert</th>
                  <th scope="col">Delivery</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((a) => (
                  <tr key={a.id}>
                    <td className="nowrap">{formatDateTime(a.created_at, tz)}</td>
                    <td>
                      <span className="muted small">{ALERT_KINDS.find(([k]) => k === a.kind)?.[1] ?? a.kind}</span>
                      <br />
                      {a.message}
                    </td>
                    <td>
                      {a.deliveries.length === 0 ? (
                        <span className="muted">no channel</span>
                      ) : (
                        <ul className="plain-list">
                          {a.deliveries.map((d) => (
                            <li key={d.channel_id}>
                              <Badge tone={d.status === "sent" ? "ok" : d.status === "failed" ? "danger" : "warn"}>{d.status}</Badge> {deliveryText(d, tz)}
                            </li>
                          ))}
                        </ul>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        );
      }}
    </Loaded>
  );
}

export function Alerts({ tz }: { tz: string }) {
  const { admin } = useAccess();
  return (
    <div className="stack">
      <h3>Channels</h3>
      {admin ? <Channels /> : <Notice tone="info">{ADMIN_ONLY} Channels hold webhook URLs and passwords, so only admins see them.</Notice>}
      <h3>History</h3>
      <History tz={tz} />
    </div>
  );
}
