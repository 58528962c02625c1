import { useBreakdown, useForecast, useHealth, useKeyLabels, useSummary, useTeams, useTimeseries } from "../api/hooks";
import type { Breakdown, Forecast, Health, Summary } from "../api/types";
import { CostByDimension } from "../charts/CostByModel";
import { CostOverTime } from "../charts/CostOverTime";
import { Donut } from "../charts/Donut";
import { FilterBar } from "../components/FilterBar";
import { Link } from "../components/Link";
import { Empty, Loaded } from "../components/states";
import { Badge, Card, PageTitle, Progress } from "../components/ui";
import { useAccess } from "../lib/access";
import { useFilters } from "../lib/filters";
import { formatChange, formatDateTime, formatInt, formatMs, formatRatio, formatTokens } from "../lib/format";
import { formatUsd, parseNanos } from "../lib/money";
import { analyticsParams, granularityFor, PERIOD_LABELS, previousLabel } from "../lib/period";
import { budgetTitle, forecastBars, label, tokenTotal } from "../lib/shape";

function HealthBadges({ health, summary }: { health: Health | undefined; summary: Summary | undefined }) {
  const lost = health?.recording.lost ?? 0;
  const spooled = health?.recording.spooled ?? 0;
  const unpriced = summary?.unpriced_calls ?? 0;
  if (!lost && !spooled && !unpriced && health?.database.ok !== false) return null;
  return (
    <div className="badges" aria-label="Data quality">
      {lost > 0 && (
        <Badge tone="danger" testId="badge-lost">
          {formatInt(lost)} call record{lost === 1 ? "" : "s"} lost since the gateway started: totals are low. See GET /health and the gateway log.
        </Badge>
      )}
      {spooled > 0 && (
        <Badge tone="warn" testId="badge-spooled">
          {formatInt(spooled)} record{spooled === 1 ? "" : "s"} waiting in the spool for the database
        </Badge>
      )}
      {health && !health.database.ok && (
        <Badge tone="danger" testId="badge-database">
          Database unavailable: {health.database.error ?? "unknown error"}
        </Badge>
      )}
      {unpriced > 0 && (
        <Badge tone="warn" testId="badge-unpriced">
          <Link to="/requests?pricing_status=unpriced">
            {formatInt(unpriced)} unpriced call{unpriced === 1 ? "" : "s"} in this period
          </Link>{" "}
          (unknown model: add it to a price file, then run spendgate db reprice)
        </Badge>
      )}
    </div>
  );
}

function Hero({ summary, period, previous }: { summary: Summary; period: string; previous: string }) {
  const change = summary.change.cost_pct;
  const direction = change === null ? "flat" : Number(change) > 0 ? "up" : Number(change) < 0 ? "down" : "flat";
  return (
    <div className="hero" data-testid="hero">
      <p className="hero-label">Spend · {period}</p>
      <p className="hero-figure num" data-testid="spend-total" data-value={summary.cost_usd}>
        {formatUsd(summary.cost_usd)}
      </p>
      <p className={`hero-change change-${direction}`} data-testid="spend-change">
        {change === null ? (
          <>
            Nothing was spent in the {previous} ({formatUsd(summary.previous.cost_usd)}), so there is no change to show.
          </>
        ) : (
          <>
            <span aria-hidden="true">{direction === "up" ? "▲" : direction === "down" ? "▼" : "■"}</span> {formatChange(change)} vs the {previous} (
            {formatUsd(summary.previous.cost_usd)})
          </>
        )}
      </p>
    </div>
  );
}

function Kpi({ name, value, detail, testId, raw }: { name: string; value: string; detail?: string; testId: string; raw?: string | number | null }) {
  return (
    <div className="kpi" data-testid={testId} data-value={raw ?? undefined}>
      <dt>{name}</dt>
      <dd>
        <span className="kpi-value num">{value}</span>
        {detail && <span className="kpi-detail">{detail}</span>}
      </dd>
    </div>
  );
}

function Kpis({ summary }: { summary: Summary }) {
  const tokens = tokenTotal(summary);
  return (
    <dl className="kpis">
      <Kpi name="Calls" testId="kpi-calls" raw={summary.calls} value={formatInt(summary.calls)} detail={summary.change.calls_pct === null ? "none in the previous period" : `${formatChange(summary.change.calls_pct)} vs previous`} />
      <Kpi
        name="Tokens"
        testId="kpi-tokens"
        raw={tokens}
        value={formatTokens(tokens)}
        detail={`in ${formatTokens(summary.input_tokens)} · out ${formatTokens(summary.output_tokens)} · cache ${formatTokens(summary.cache_read_input_tokens + summary.cache_creation_input_tokens)}`}
      />
      <Kpi name="Avg cost per call" testId="kpi-avg-cost" raw={summary.avg_cost_per_call_usd} value={formatUsd(summary.avg_cost_per_call_usd ?? "0")} />
      <Kpi
        name="Latency p50 / p95"
        testId="kpi-latency"
        raw={summary.latency_ms.p50}
        value={`${formatMs(summary.latency_ms.p50)} / ${formatMs(summary.latency_ms.p95)}`}
        detail={summary.ttft_ms.count ? `first token p50 ${formatMs(summary.ttft_ms.p50)}` : undefined}
      />
      <Kpi name="Error rate" testId="kpi-error-rate" raw={summary.error_rate} value={formatRatio(summary.error_rate)} detail={`${formatInt(summary.errors)} errors`} />
      <Kpi name="Cache savings" testId="kpi-cache-savings" raw={summary.cache_savings_usd} value={formatUsd(summary.cache_savings_usd)} detail="vs paying full input price" />
    </dl>
  );
}

function TopList({ breakdown, filterParam, testId, noun }: { breakdown: Breakdown; filterParam: string; testId: string; noun: string }) {
  if (breakdown.data.length === 0) return <Empty title={`No ${noun} in this period.`} />;
  return (
    <table className="table table-compact" data-testid={testId}>
      <thead>
        <tr>
          <th scope="col">{noun[0]!.toUpperCase() + noun.slice(1, -1)}</th>
          <th scope="col" className="num">
            Spend
          </th>
          <th scope="col" className="num">
            Calls
          </th>
        </tr>
      </thead>
      <tbody>
        {breakdown.data.map((row) => (
          <tr key={row.key ?? "none"}>
            <th scope="row">
              {row.key ? <Link to={`/requests?${filterParam}=${encodeURIComponent(row.key)}`}>{label(row.key)}</Link> : label(row.key)}
              {row.project && filterParam === "session_id" && <span className="muted"> · {row.project}</span>}
            </th>
            <td className="num">{formatUsd(row.cost_usd)}</td>
            <td className="num">{formatInt(row.calls)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The `n` costliest rows of a breakdown. */
function costliest(b: Breakdown, n: number): Breakdown {
  const data = [...b.data].sort((x, y) => {
    const dx = parseNanos(x.cost_usd);
    const dy = parseNanos(y.cost_usd);
    return dx === dy ? 0 : dx > dy ? -1 : 1;
  });
  return { ...b, data: data.slice(0, n) };
}

function ForecastPanel({ forecast, tz }: { forecast: Forecast; tz: string }) {
  const keyLabels = useKeyLabels(useAccess().admin);
  const month = forecast.month_end;
  const rows = forecastBars(forecast).slice(1);
  return (
    <div className="forecast">
      <p className="forecast-main" data-testid="forecast-month">
        Projected month-end spend <strong className="num">{formatUsd(month.projected_usd)}</strong>{" "}
        <span className="muted">
          ({month.confidence} band {formatUsd(month.projected_low_usd)}–{formatUsd(month.projected_high_usd)}); spent so far {formatUsd(month.spent_usd)} at{" "}
          {formatUsd(month.daily_rate_usd)} a day, {month.days_left.toFixed(1)} days left.
        </span>
      </p>
      {rows.length === 0 ? (
        <p className="muted">
          No budgets yet. <Link to="/budgets">Create one</Link> to see when it would run out.
        </p>
      ) : (
        <ul className="budget-forecasts">
          {forecast.budgets.map((b, i) => {
            const bar = rows[i]!;
            return (
              <li key={b.budget_id}>
                <div className="budget-forecast-head">
                  <span>{budgetTitle(b.name, keyLabels)}</span>
                  <span className="num">
                    {formatUsd(b.projected_usd)} projected of {formatUsd(b.limit_usd)}
                  </span>
                </div>
                <Progress value={bar.projected} max={bar.limit ?? 0} label={`${b.name}: projected share of the limit`} />
                {b.projected_over_limit && (
                  <Badge tone="danger">
                    {b.exhausted_at ? `Runs out ${formatDateTime(b.exhausted_at, tz)}` : "Projected over its limit"}
                  </Badge>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <p className="hint">{month.method}</p>
    </div>
  );
}

export function Overview() {
  const [filters] = useFilters();
  const params = analyticsParams(filters);
  const summary = useSummary(params);
  const series = useTimeseries({ ...params, stack: "model", granularity: granularityFor(filters) });
  const byModel = useBreakdown({ ...params, by: "model" });
  const byTeam = useBreakdown({ ...params, by: "team" });
  const users = useBreakdown({ ...params, by: "user", limit: 5 });
  const projects = useBreakdown({ ...params, by: "project", limit: 5 });
  // The API lists sessions newest first; the costliest five of the recent ones are shown.
  const sessions = useBreakdown({ ...params, by: "session", limit: 200 });
  const forecast = useForecast(params);
  const health = useHealth();
  const teams = useTeams();
  const noSpend = (s: { cost_usd: string; calls: number }) => s.calls === 0 && parseNanos(s.cost_usd) === 0n;

  return (
    <>
      <PageTitle title="Overview" />
      <FilterBar />
      <HealthBadges health={health.data} summary={summary.data} />
      <Loaded query={summary} what="the summary">
        {(s) => (
          <Card className="card-hero">
            <div className="hero-row">
              <Hero summary={s} period={PERIOD_LABELS[filters.period]} previous={previousLabel(filters)} />
              <Kpis summary={s} />
            </div>
            {noSpend(s) && (
              <Empty title="No calls recorded in this period.">
                Send traffic through the gateway (point your SDK's base URL at this server), widen the period, or load demo data with{" "}
                <code>spendgate demo</code>.
              </Empty>
            )}
          </Card>
        )}
      </Loaded>
      <Card title="Spend over time, by model">
        <Loaded query={series} what="the timeseries">
          {(ts) => <CostOverTime series={ts} tz={filters.tz} />}
        </Loaded>
      </Card>
      <div className="grid-2">
        <Card title="Spend by model">
          <Loaded query={byModel} what="spend by model" empty={(b) => (b.data.length ? null : <Empty title="No spend in this period." />)}>
            {(b) => <CostByDimension breakdown={b} title="Spend by model" />}
          </Loaded>
        </Card>
        <Card title="Spend by team">
          <Loaded
            query={byTeam}
            what="spend by team"
            empty={(b) =>
              b.data.length ? null : (
                <Empty title="No spend in this period.">Calls are attributed to a team through their proxy key.</Empty>
              )
            }
          >
            {(b) => <Donut breakdown={b} teams={teams.data} title="Spend by team" />}
          </Loaded>
        </Card>
      </div>
      <div className="grid-3">
        <Card title="Top users">
          <Loaded query={users} what="users">
            {(b) => <TopList breakdown={b} filterParam="user" testId="top-users" noun="users" />}
          </Loaded>
        </Card>
        <Card title="Top projects">
          <Loaded query={projects} what="projects">
            {(b) => <TopList breakdown={b} filterParam="project" testId="top-projects" noun="projects" />}
          </Loaded>
        </Card>
        <Card title="Top Claude Code sessions">
          <Loaded query={sessions} what="sessions">
            {(b) => <TopList breakdown={costliest(b, 5)} filterParam="session_id" testId="top-sessions" noun="sessions" />}
          </Loaded>
        </Card>
      </div>
      <Card title="Month-end forecast and budgets">
        <Loaded query={forecast} what="the forecast">
          {(f) => <ForecastPanel forecast={f} tz={filters.tz} />}
        </Loaded>
      </Card>
    </>
  );
}
