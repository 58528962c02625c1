// The Rate limits card of the Budgets page: every limit with its busiest subject and
// refusals; admins add and delete limits.

import { useId, useState, type FormEvent } from "react";
import { describeError } from "../api/client";
import { useKeyLabels, useKeys, useOptional, useSend, useTeams } from "../api/hooks";
import type { RateLimit, RateLimitBody } from "../api/types";
import { useAccess } from "../lib/access";
import { formatDateTime, formatInt } from "../lib/format";
import { busiest, EMPTY_LIMIT, limitBody, refusals, type LimitForm } from "../lib/limits";
import { Empty, Loaded } from "./states";
import { Field, FormEnd, Notice } from "./ui";

const SCOPES: Array<[RateLimit["scope"], string]> = [
  ["key", "Keys"],
  ["team", "Teams"],
  ["user", "Users"],
  ["project", "Projects"],
  ["global", "All calls together"],
];

function DeleteLimit({ limit }: { limit: RateLimit }) {
  const remove = useSend<void, unknown>("DELETE", `/api/limits/${encodeURIComponent(limit.id)}`);
  return (
    <>
      <button
        type="button"
        className="btn btn-small btn-danger"
        aria-label={`Delete rate limit ${limit.name}`}
        onClick={() => window.confirm(`Delete the rate limit ${limit.name}?`) && remove.mutate()}
      >
        Delete
      </button>
      {remove.error && <Notice tone="danger">{describeError(remove.error)}</Notice>}
    </>
  );
}

function ScopeValue({ form, id, onChange }: { form: LimitForm; id: string; onChange: (value: string) => void }) {
  const keys = useKeys({ enabled: form.scope === "key" });
  const teams = useTeams();
  if (form.scope === "global") return <input id={id} disabled value="every call" readOnly />;
  const each = `Each ${form.scope} separately`;
  if (form.scope === "key" || form.scope === "team") {
    const options =
      form.scope === "key"
        ? (keys.data ?? []).filter((k) => k.status === "active").map((k) => [k.id, `${k.label} (${k.hint})`] as const)
        : (teams.data ?? []).map((t) => [t.name, t.name] as const);
    return (
      <select id={id} value={form.value} onChange={(e) => onChange(e.target.value)}>
        <option value="*">{each}</option>
        {options.map(([value, name]) => (
          <option key={value} value={value}>
            {name}
          </option>
        ))}
      </select>
    );
  }
  return <input id={id} required value={form.value} onChange={(e) => onChange(e.target.value)} placeholder={`* (${each.toLowerCase()}) or a name`} />;
}

function CreateLimit() {
  const id = useId();
  const create = useSend<RateLimitBody, RateLimit>("POST", "/api/limits");
  const [form, setForm] = useState<LimitForm>(EMPTY_LIMIT);
  const [problem, setProblem] = useState<string | null>(null);
  const set = (name: keyof LimitForm) => (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const checked = limitBody(form);
    if ("error" in checked) return setProblem(checked.error);
    setProblem(null);
    create.mutate(checked.body, { onSuccess: () => setForm({ ...EMPTY_LIMIT, scope: form.scope, value: form.value }) });
  };
  return (
    <form className="form form-grid" onSubmit={submit} aria-label="Add a rate limit" noValidate>
      <Field label="Limit" htmlFor={`${id}-scope`}>
        <select id={`${id}-scope`} value={form.scope} onChange={(e) => setForm({ ...form, scope: e.target.value as LimitForm["scope"], value: "*" })}>
          {SCOPES.map(([s, name]) => (
            <option key={s} value={s}>
              {name}
            </option>
          ))}
        </select>
      </Field>
      <Field label="Which" htmlFor={`${id}-value`}>
        <ScopeValue form={form} id={`${id}-value`} onChange={(value) => setForm({ ...form, value })} />
      </Field>
      <Field label="Requests / min" htmlFor={`${id}-rpm`}>
        <input id={`${id}-rpm`} inputMode="numeric" value={form.requests} onChange={set("requests")} placeholder="60" />
      </Field>
      <Field label="Input tokens / min" htmlFor={`${id}-itpm`}>
        <input id={`${id}-itpm`} inputMode="numeric" value={form.inputTokens} onChange={set("inputTokens")} />
      </Field>
      <Field label="Output tokens / min" htmlFor={`${id}-otpm`}>
        <input id={`${id}-otpm`} inputMode="numeric" value={form.outputTokens} onChange={set("outputTokens")} />
      </Field>
      <Field label="Limit name" htmlFor={`${id}-name`} hint="Optional">
        <input id={`${id}-name`} maxLength={200} value={form.name} onChange={set("name")} />
      </Field>
      <FormEnd pending={create.isPending} label="Add rate limit" busyLabel="Adding…" problem={problem} error={create.error} />
    </form>
  );
}

export function RateLimits({ tz }: { tz: string }) {
  const { admin } = useAccess();
  const limits = useOptional<RateLimit[]>("/api/limits");
  const keyLabels = useKeyLabels(admin);
  return (
    <Loaded query={limits} what="rate limits">
      {(rows) =>
        rows === null ? (
          <Empty title="Rate limits are not available on this gateway.">Upgrade spendgate to a version with rate limits; the rest of this page works without them.</Empty>
        ) : (
          <>
            {rows.length === 0 ? (
              <Empty title="No rate limits.">A rate limit caps requests or tokens a minute, e.g. 60 requests a minute for each key; calls over it get 429 with retry-after.</Empty>
            ) : (
              <div className="table-scroll" tabIndex={0} role="region" aria-label="Rate limits, scroll sideways">
                <table className="table table-compact" data-testid="limits">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Limit</th>
                      <th scope="col">Busiest now</th>
                      <th scope="col" className="num">
                        Refused
                      </th>
                      <th scope="col">Created</th>
                      {admin && (
                        <th scope="col">
                          <span className="sr-only">Actions</span>
                        </th>
                      )}
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((r) => (
                      <tr key={r.id} data-limit-id={r.id}>
                        <td>{r.name}</td>
                        <td>{r.description}</td>
                        <td>{busiest(r, keyLabels)}</td>
                        <td className="num">{formatInt(refusals(r))}</td>
                        <td className="nowrap">{formatDateTime(r.created_at, tz)}</td>
                        {admin && (
                          <td>
                            <DeleteLimit limit={r} />
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {admin && (
              <details className="add-channel">
                <summary>Add a rate limit</summary>
                <CreateLimit />
              </details>
            )}
          </>
        )
      }
    </Loaded>
  );
}
