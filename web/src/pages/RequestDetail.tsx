import type { ReactNode } from "react";
import { useCall } from "../api/hooks";
import type { Call } from "../api/types";
import { Link } from "../components/Link";
import { Loaded } from "../components/states";
import { Badge, Card, PageTitle } from "../components/ui";
import { useFilters } from "../lib/filters";
import { formatDateTime, formatInt, formatMs } from "../lib/format";
import { formatUsd, nanosToUsd } from "../lib/money";
import { useLocation } from "../lib/router";

const PARTS: Array<[key: string, name: string, tokens: (c: Call) => number | null, rate: string | null]> = [
  ["input", "Input", (c) => c.input_tokens, "input"],
  ["output", "Output", (c) => c.output_tokens, "output"],
  ["cache_write_5m", "Cache write (5 min)", (c) => c.cache_creation_5m_input_tokens, "cache_write_5m"],
  ["cache_write_1h", "Cache write (1 hour)", (c) => c.cache_creation_1h_input_tokens, "cache_write_1h"],
  ["cache_read", "Cache read", (c) => c.cache_read_input_tokens, "cache_read"],
  ["web_search", "Web search", (c) => c.web_search_requests, null],
];

function CostBreakdown({ call }: { call: Call }) {
  const b = call.cost_breakdown;
  if (!b) {
    return (
      <p>
        <Badge tone="warn">Unpriced</Badge> The price book has no price for <code>{call.model ?? "this model"}</code>. Add it to a price file (see
        docs/pricing.md) and run <code>spendgate db reprice</code>.
      </p>
    );
  }
  return (
    <>
      <table className="table table-compact" data-testid="cost-breakdown">
        <thead>
          <tr>
            <th scope="col">Part</th>
            <th scope="col" className="num">
              Tokens
            </th>
            <th scope="col" className="num">
              Rate per MTok
            </th>
            <th scope="col" className="num">
              Cost
            </th>
          </tr>
        </thead>
        <tbody>
          {PARTS.map(([key, name, tokens, rate]) => {
            const nanos = Number(b[key] ?? 0);
            const count = tokens(call) ?? 0;
            if (!nanos && !count) return null;
            return (
              <tr key={key}>
                <th scope="row">{name}</th>
                <td className="num">{formatInt(count)}</td>
                <td className="num">{rate && b.rates?.[rate] ? `$${b.rates[rate]}` : key === "web_search" ? "$10 / 1k" : "—"}</td>
                <td className="num">{formatUsd(nanosToUsd(nanos), { places: 6 })}</td>
              </tr>
            );
          })}
        </tbody>
        <tfoot>
          <tr>
            <th scope="row">Total</th>
            <td />
            <td />
            <td className="num" data-testid="detail-cost">
              {formatUsd(call.cost_usd, { places: 6 })}
            </td>
          </tr>
        </tfoot>
      </table>
      <p className="hint">
        Priced as <code>{b.model_priced}</code>
        {b.tier ? `, ${b.tier} tier` : ""}
        {b.factor && b.factor !== "1" ? `, ×${b.factor}` : ""} from price book {b.price_book_version}.
        {call.cache_savings_usd && ` Caching saved ${formatUsd(call.cache_savings_usd)}.`}
        {b.notes?.length ? ` ${b.notes.join(" ")}` : ""}
      </p>
    </>
  );
}

function Facts({ call, tz }: { call: Call; tz: string }) {
  const facts: Array<[string, ReactNode]> = [
    ["Time", formatDateTime(call.created_at, tz)],
    ["Status", `${call.status_code ?? "—"}${call.complete ? "" : " (stream cut before the end)"}`],
    ["Model", call.model === call.model_requested || !call.model_requested ? call.model : `${call.model} (asked for ${call.model_requested})`],
    ["Endpoint", `${call.method} ${call.endpoint}${call.stream ? " (stream)" : ""}`],
    ["Source", call.source],
    ["Key", call.key_label ? `${call.key_label} (${call.key_id})` : (call.key_id ?? "—")],
    ["Team", call.team ?? "—"],
    ["User", call.user ?? "—"],
    ["Project", call.project ?? "—"],
    ["Session", call.session_id ?? "—"],
    ["Tags", call.tags.length ? call.tags.join(", ") : "—"],
    ["Latency", formatMs(call.latency_ms)],
    ["Time to first token", formatMs(call.ttft_ms)],
    ["Stop reason", call.stop_reason ?? "—"],
    ["Request id", call.request_id ?? "—"],
    ["Client", call.user_agent ?? "—"],
  ];
  if (call.error_type || call.error_message) facts.splice(2, 0, ["Error", `${call.error_type ?? ""} ${call.error_message ?? ""}`.trim()]);
  if (call.note) facts.push(["Note", call.note]);
  return (
    <dl className="facts">
      {facts.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function RequestDetail({ id }: { id: string }) {
  const [filters] = useFilters();
  const { search } = useLocation();
  const call = useCall(id);
  return (
    <>
      <PageTitle title="Request">
        <Link to={`/requests${search}`} keepFilters={false}>
          ← Back to the request log
        </Link>
      </PageTitle>
      <Loaded query={call} what="the call">
        {(c) => (
          <div className="grid-2 grid-detail">
            <Card title={`Call ${c.id.slice(0, 8)}`}>
              <Facts call={c} tz={filters.tz} />
            </Card>
            <div className="stack">
              <Card title="Cost breakdown">
                <CostBreakdown call={c} />
              </Card>
              <Card title="Raw usage (as Anthropic returned it)">
                <pre className="code" data-testid="raw-usage" tabIndex={0}>
                  {JSON.stringify(c.usage, null, 2)}
                </pre>
              </Card>
            </div>
          </div>
        )}
      </Loaded>
    </>
  );
}
