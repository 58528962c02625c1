import { useId, useState, type FormEvent } from "react";
import { describeError } from "../api/client";
import { useBreakdown, useSend, useTeams } from "../api/hooks";
import type { Call } from "../api/types";
import { Link } from "../components/Link";
import { Card, Field, Notice, PageTitle } from "../components/ui";
import { ADMIN_ONLY, useAccess } from "../lib/access";
import { formatInt } from "../lib/format";
import { formatUsd } from "../lib/money";

const TOKEN_FIELDS = [
  ["input_tokens", "Input tokens"],
  ["output_tokens", "Output tokens"],
  ["cache_read_input_tokens", "Cache read tokens"],
  ["cache_creation_5m_input_tokens", "Cache write tokens (5 min)"],
  ["cache_creation_1h_input_tokens", "Cache write tokens (1 hour)"],
  ["web_search_requests", "Web searches"],
] as const;

type TokenName = (typeof TOKEN_FIELDS)[number][0];
const SUGGESTED = ["claude-opus-4-7", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"];

/** Log a call made outside the gateway (the seed's manual mode); it is priced like any other. */
export function LogCall() {
  const { admin } = useAccess();
  const id = useId();
  const send = useSend<Record<string, unknown>, Call>("POST", "/api/requests");
  const models = useBreakdown({ period: "90d", by: "model", limit: 100 }, { poll: false });
  const teams = useTeams();
  const [model, setModel] = useState("");
  const [tokens, setTokens] = useState<Record<TokenName, string>>({
    input_tokens: "",
    output_tokens: "",
    cache_read_input_tokens: "",
    cache_creation_5m_input_tokens: "",
    cache_creation_1h_input_tokens: "",
    web_search_requests: "",
  });
  const [at, setAt] = useState("");
  const [user, setUser] = useState("");
  const [project, setProject] = useState("");
  const [team, setTeam] = useState("");
  const [note, setNote] = useState("");
  const [logged, setLogged] = useState<Call | null>(null);
  const known = [...new Set([...(models.data?.data ?? []).map((r) => r.key).filter((k): k is string => !!k), ...SUGGESTED])];

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const body: Record<string, unknown> = { model: model.trim() };
    for (const [name] of TOKEN_FIELDS) body[name] = Number(tokens[name] || 0);
    if (at) body.at = new Date(at).toISOString();
    if (user.trim()) body.user = user.trim();
    if (project.trim()) body.project = project.trim();
    if (team) body.team = team;
    if (note.trim()) body.note = note.trim();
    send.mutate(body, { onSuccess: setLogged });
  };

  return (
    <>
      <PageTitle title="Log a call by hand" />
      <div className="grid-2 grid-log">
        <Card title="The call">
          <form className="form form-grid" onSubmit={submit} aria-label="Log a call">
            <Field label="Model" htmlFor={`${id}-model`} hint="As the API names it">
              <input id={`${id}-model`} required list={`${id}-models`} value={model} onChange={(e) => setModel(e.target.value)} autoComplete="off" />
              <datalist id={`${id}-models`}>
                {known.map((m) => (
                  <option key={m} value={m} />
                ))}
              </datalist>
            </Field>
            {TOKEN_FIELDS.map(([name, text]) => (
              <Field key={name} label={text} htmlFor={`${id}-${name}`}>
                <input
                  id={`${id}-${name}`}
                  type="number"
                  min={0}
                  step={1}
                  inputMode="numeric"
                  value={tokens[name]}
                  placeholder="0"
                  onChange={(e) => setTokens({ ...tokens, [name]: e.target.value })}
                />
              </Field>
            ))}
            <Field label="When" htmlFor={`${id}-at`} hint="Empty: now. Your browser's time zone.">
              <input id={`${id}-at`} type="datetime-local" value={at} onChange={(e) => setAt(e.target.value)} />
            </Field>
            <Field label="User" htmlFor={`${id}-user`}>
              <input id={`${id}-user`} value={user} onChange={(e) => setUser(e.target.value)} />
            </Field>
            <Field label="Project" htmlFor={`${id}-project`}>
              <input id={`${id}-project`} value={project} onChange={(e) => setProject(e.target.value)} />
            </Field>
            <Field label="Team" htmlFor={`${id}-team`}>
              <select id={`${id}-team`} value={team} onChange={(e) => setTeam(e.target.value)}>
                <option value="">No team</option>
                {(teams.data ?? []).map((t) => (
                  <option key={t.id} value={t.name}>
                    {t.name}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Note" htmlFor={`${id}-note`}>
              <input id={`${id}-note`} maxLength={2000} value={note} onChange={(e) => setNote(e.target.value)} />
            </Field>
            <div className="form-actions">
              <button type="submit" className="btn btn-primary" disabled={send.isPending || !admin}>
                {send.isPending ? "Logging…" : "Log call"}
              </button>
            </div>
            {!admin && <Notice tone="info">{ADMIN_ONLY}</Notice>}
            {send.error && <Notice tone="danger">{describeError(send.error)}</Notice>}
          </form>
        </Card>
        <Card title="Result">
          {logged ? (
            <div data-testid="logged">
              <p className="hero-figure num">{logged.cost_usd === null ? "unpriced" : formatUsd(logged.cost_usd)}</p>
              <p>
                {logged.model}: {formatInt(logged.input_tokens)} input, {formatInt(logged.output_tokens)} output tokens.{" "}
                {logged.cost_usd === null && "The price book does not know this model; add it to a price file and run spendgate db reprice."}
              </p>
              <p>
                <Link to={`/requests/${encodeURIComponent(logged.id)}`}>See the call and its cost breakdown</Link>
              </p>
            </div>
          ) : (
            <p className="muted">
              Calls made outside the gateway (another tool, a console session) can be logged here. They are priced with the same price book and count in
              analytics, exports and forecasts; budget counters only count calls made through the gateway.
            </p>
          )}
        </Card>
      </div>
    </>
  );
}
