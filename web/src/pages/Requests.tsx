import { useEffect, useId, useMemo, useState } from "react";
import { useCalls } from "../api/hooks";
import type { Call } from "../api/types";
import { FilterBar } from "../components/FilterBar";
import { Link } from "../components/Link";
import { Empty, Loaded } from "../components/states";
import { Badge, Card, PageTitle } from "../components/ui";
import { useFilters, useParam } from "../lib/filters";
import { formatInt, formatMs, formatShortDateTime, formatTokens } from "../lib/format";
import { formatUsd } from "../lib/money";
import { rangeParams } from "../lib/period";
import { navigate, useLocation } from "../lib/router";
import { useDebounced } from "../lib/useDebounced";

const PAGE_SIZE = 50;

function TextFilter({ name, label }: { name: string; label: string }) {
  const id = useId();
  const [value, setValue] = useParam(name);
  const [draft, setDraft] = useState(value);
  const settled = useDebounced(draft);
  useEffect(() => setDraft(value), [value]);
  useEffect(() => {
    if (settled !== value) setValue(settled.trim());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [settled]);
  return (
    <div className="filter">
      <label htmlFor={id}>{label}</label>
      <input id={id} type="search" value={draft} placeholder="any" onChange={(e) => setDraft(e.target.value)} />
    </div>
  );
}

function SelectFilter({ name, label, options }: { name: string; label: string; options: Array<[string, string]> }) {
  const id = useId();
  const [value, setValue] = useParam(name);
  return (
    <div className="filter">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => setValue(e.target.value)}>
        <option value="">Any</option>
        {options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </div>
  );
}

function StatusCell({ call }: { call: Call }) {
  const code = call.status_code;
  const ok = code !== null && code < 400 && call.complete;
  return (
    <>
      <Badge tone={ok ? "ok" : "danger"}>
        {code ?? "—"}
        {!call.complete && code !== null && code < 400 ? " cut" : ""}
      </Badge>
      {call.error_type && <div className="muted small">{call.error_type.replace(/_/g, " ")}</div>}
    </>
  );
}

function CallRow({ call, tz, search }: { call: Call; tz: string; search: string }) {
  // The detail page keeps every list filter in its query, so "back" restores the list.
  const href = `/requests/${encodeURIComponent(call.id)}${search}`;
  return (
    <tr className="row-link" data-call-id={call.id} onClick={(e) => !(e.target instanceof HTMLAnchorElement) && navigate(href)}>
      <td className="nowrap" data-label="Time">
        <Link to={href} keepFilters={false}>
          {formatShortDateTime(call.created_at, tz)}
        </Link>
      </td>
      <td data-testid="call-key" data-label="Key / team">
        <div>{call.key_label ?? (call.source === "proxy" ? "server key" : call.source)}</div>
        {call.team && <div className="muted small">{call.team}</div>}
      </td>
      <td data-testid="call-user" data-label="User">{call.user ?? <span className="muted">—</span>}</td>
      <td data-label="Project">{call.project ?? <span className="muted">—</span>}</td>
      <td className="nowrap" data-testid="call-model" data-label="Model">
        {call.model ?? call.model_requested ?? "—"}
      </td>
      <td className="num nowrap" data-label="Tokens in / out / cache r / w" title={`input ${formatInt(call.input_tokens)}, output ${formatInt(call.output_tokens)}, cache read ${formatInt(call.cache_read_input_tokens)}, cache write ${formatInt(call.cache_creation_input_tokens)}`}>
        {formatTokens(call.input_tokens)} / {formatTokens(call.output_tokens)} / {formatTokens(call.cache_read_input_tokens)} / {formatTokens(call.cache_creation_input_tokens)}
      </td>
      <td className="num nowrap" data-testid="call-cost" data-label="Cost">
        {call.cost_usd === null ? <Badge tone="warn">unpriced</Badge> : formatUsd(call.cost_usd)}
      </td>
      <td className="num nowrap" data-label="Latency">{formatMs(call.latency_ms)}</td>
      <td className="num nowrap" data-label="TTFT">{formatMs(call.ttft_ms)}</td>
      <td data-testid="call-status" data-label="Status" data-status={call.status_code ?? ""}>
        <StatusCell call={call} />
      </td>
    </tr>
  );
}

export function Requests() {
  const [filters] = useFilters();
  const { search } = useLocation();
  const [status] = useParam("status");
  const [source] = useParam("source");
  const [user] = useParam("user");
  const [project] = useParam("project");
  const [session] = useParam("session_id");
  const [pricing] = useParam("pricing_status");
  const base = useMemo(
    () => ({ ...rangeParams(filters), status, source, user, project, session_id: session, pricing_status: pricing, limit: PAGE_SIZE }),
    [filters, status, source, user, project, session, pricing],
  );
  const baseKey = JSON.stringify(base);
  // Cursor pagination: the cursors of the pages seen so far, for going back.
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  useEffect(() => setCursors([null]), [baseKey]);
  const page = cursors.length - 1;
  const calls = useCalls({ ...base, cursor: cursors[page] ?? null }, page === 0);

  return (
    <>
      <PageTitle title="Requests" />
      <FilterBar />
      <form className="filters filters-secondary" aria-label="Request filters" onSubmit={(e) => e.preventDefault()}>
        <SelectFilter name="status" label="Status" options={[["ok", "Succeeded"], ["error", "Failed"]]} />
        <SelectFilter name="source" label="Source" options={[["proxy", "Proxy"], ["manual", "Logged by hand"], ["import", "Imported"]]} />
        <SelectFilter name="pricing_status" label="Pricing" options={[["priced", "Priced"], ["unpriced", "Unpriced"]]} />
        <TextFilter name="user" label="User" />
        <TextFilter name="project" label="Project" />
        {session && <TextFilter name="session_id" label="Session" />}
      </form>
      <Card
        title="Request log"
        actions={
          <span className="muted small" aria-live="polite">
            {page === 0 ? "Newest first" : `Page ${page + 1}`}
          </span>
        }
      >
        <Loaded
          query={calls}
          what="requests"
          empty={(p) =>
            p.data.length === 0 && page === 0 ? (
              <Empty title="No calls match these filters.">Widen the period, clear a filter, or send a call through the gateway; new calls appear here by themselves.</Empty>
            ) : null
          }
        >
          {(p) => (
            <>
              <div className="table-scroll" tabIndex={0} role="region" aria-label="Request log, scrolls sideways">
                <table className="table table-cards" data-testid="requests-table">
                  <thead>
                    <tr>
                      <th scope="col">Time ({filters.tz})</th>
                      <th scope="col">Key / team</th>
                      <th scope="col">User</th>
                      <th scope="col">Project</th>
                      <th scope="col">Model</th>
                      <th scope="col" className="num" title="input / output / cache read / cache write">
                        Tokens in / out / cache r / w
                      </th>
                      <th scope="col" className="num">
                        Cost
                      </th>
                      <th scope="col" className="num">
                        Latency
                      </th>
                      <th scope="col" className="num">
                        TTFT
                      </th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {p.data.map((call) => (
                      <CallRow key={call.id} call={call} tz={filters.tz} search={search} />
                    ))}
                  </tbody>
                </table>
              </div>
              <nav className="pager" aria-label="Pages of the request log">
                <button type="button" className="btn" disabled={page === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
                  ← Newer
                </button>
                <button type="button" className="btn" disabled={!p.next_cursor} onClick={() => setCursors([...cursors, p.next_cursor])}>
                  Older →
                </button>
              </nav>
            </>
          )}
        </Loaded>
      </Card>
    </>
  );
}
