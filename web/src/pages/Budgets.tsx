import { useId, useState, type FormEvent } from "react";
import { describeError } from "../api/client";
import { useBreakdown, useBudgets, useForecast, useKeyLabels, useKeys, useSend, useTeams } from "../api/hooks";
import type { Budget, BudgetForecast } from "../api/types";
import { Empty, Loaded } from "../components/states";
import { Badge, Card, Field, FormEnd, Notice, PageTitle, Progress } from "../components/ui";
import { ADMIN_ONLY, useAccess } from "../lib/access";
import { useFilters } from "../lib/filters";
import { formatDateTime, formatInt } from "../lib/format";
import { formatUsd, parseNanos, usdNumber } from "../lib/money";
import { budgetForm, budgetPatch, type BudgetForm, type BudgetPatch } from "../lib/edits";
import { Alerts } from "../components/Alerts";
import { RateLimits } from "../components/RateLimits";

type Scope = Budget["scope"];
const SCOPES: Array<[Scope, string]> = [
  ["global", "All calls"],
  ["team", "A team"],
  ["key", "A key"],
  ["user", "A user"],
  ["project", "A project"],
  ["tag", "A tag"],
];

const PER: Record<Budget["period"], string> = { daily: "a day", weekly: "a week", monthly: "a month", none: "in total" };

interface BudgetBody {
  scope: Scope;
  value: string | null;
  limit_usd: string;
  period: Budget["period"];
  name?: string;
  thresholds: number[];
}

function ScopeValue({ scope, id, value, onChange }: { scope: Scope; id: string; value: string; onChange: (v: string) => void }) {
  const teams = useTeams();
  const keys = useKeys();
  const seen = useBreakdown({ period: "90d", by: scope === "global" ? "model" : scope, limit: 200 }, { enabled: scope !== "global" && scope !== "key", poll: false });
  if (scope === "global") return <input id={id} disabled value="every call" readOnly />;
  if (scope === "key") {
    return (
      <select id={id} required value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">Choose a key</option>
        {(keys.data ?? [])
          .filter((k) => k.status === "active")
          .map((k) => (
            <option key={k.id} value={k.id}>
              {k.label} ({k.hint})
            </option>
          ))}
      </select>
    );
  }
  const known = new Set<string>(scope === "team" ? (teams.data ?? []).map((t) => t.name) : []);
  for (const row of seen.data?.data ?? []) if (row.key) known.add(row.key);
  const listId = `${id}-list`;
  return (
    <>
      <input id={id} required list={listId} value={value} onChange={(e) => onChange(e.target.value)} autoComplete="off" />
      <datalist id={listId}>
        {[...known].sort().map((v) => (
          <option key={v} value={v} />
        ))}
      </datalist>
    </>
  );
}

function CreateBudget() {
  const id = useId();
  const create = useSend<BudgetBody, Budget>("POST", "/api/budgets");
  const [scope, setScope] = useState<Scope>("global");
  const [value, setValue] = useState("");
  const [limit, setLimit] = useState("");
  const [period, setPeriod] = useState<Budget["period"]>("monthly");
  const [name, setName] = useState("");
  const [thresholds, setThresholds] = useState("50, 80, 100");
  const [done, setDone] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    setDone(null);
    const body: BudgetBody = {
      scope,
      value: scope === "global" ? null : value.trim(),
      limit_usd: limit.trim().replace(/^\$/, ""),
      period,
      thresholds: thresholds
        .split(",")
        .map((t) => Number(t.trim()))
        .filter((n) => Number.isInteger(n) && n > 0),
    };
    if (name.trim()) body.name = name.trim();
    create.mutate(body, {
      onSuccess: (b) => {
        setDone(`Budget ${b.name} created: calls that would pass ${formatUsd(b.limit_usd)} ${PER[b.period]} are refused.`);
        setLimit("");
        setName("");
      },
    });
  };
  return (
    <form className="form form-grid" onSubmit={submit} aria-label="Create a budget">
      <Field label="Applies to" htmlFor={`${id}-scope`}>
        <select id={`${id}-scope`} value={scope} onChange={(e) => (setScope(e.target.value as Scope), setValue(""))}>
          {SCOPES.map(([s, text]) => (
            <option key={s} value={s}>
              {text}
            </option>
          ))}
        </select>
      </Field>
      <Field label={scope === "global" ? "Which" : `Which ${scope}`} htmlFor={`${id}-value`}>
        <ScopeValue scope={scope} id={`${id}-value`} value={value} onChange={setValue} />
      </Field>
      <Field label="Limit (USD)" htmlFor={`${id}-limit`} hint="A hard cap: calls over it get 429">
        <input id={`${id}-limit`} required inputMode="decimal" pattern="\$?[0-9]+(\.[0-9]+)?" value={limit} onChange={(e) => setLimit(e.target.value)} placeholder="250.00" />
      </Field>
      <Field label="Period" htmlFor={`${id}-period`}>
        <select id={`${id}-period`} value={period} onChange={(e) => setPeriod(e.target.value as Budget["period"])}>
          <option value="daily">Daily</option>
          <option value="weekly">Weekly</option>
          <option value="monthly">Monthly</option>
          <option value="none">No reset (lifetime)</option>
        </select>
      </Field>
      <Field label="Name" htmlFor={`${id}-name`} hint="Optional">
        <input id={`${id}-name`} maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label="Alert at (% of limit)" htmlFor={`${id}-thresholds`} hint="Comma separated">
        <input id={`${id}-thresholds`} value={thresholds} onChange={(e) => setThresholds(e.target.value)} />
      </Field>
      <FormEnd pending={create.isPending} label="Create budget" busyLabel="Creating…" error={create.error} done={done} />
    </form>
  );
}

function BudgetActions({ budget }: { budget: Budget }) {
  const { admin } = useAccess();
  return admin ? <EditBudget budget={budget} /> : null;
}

/** Rename a budget, change its limit or its alert thresholds; scope and period stay. */
function EditBudget({ budget }: { budget: Budget }) {
  const id = useId();
  const [open, setOpen] = useState(false);
  const [form, setForm] = useState<BudgetForm>(() => budgetForm(budget));
  const [problem, setProblem] = useState<string | null>(null);
  const save = useSend<BudgetPatch, Budget>("PATCH", `/api/budgets/${budget.id}`);
  const remove = useSend<void, unknown>("DELETE", `/api/budgets/${budget.id}`);
  const set = (name: keyof BudgetForm) => (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value });
  if (!open) {
    return (
      <div className="row-actions">
        <button type="button" className="btn btn-small" onClick={() => (setForm(budgetForm(budget)), setProblem(null), save.reset(), setOpen(true))} aria-label={`Edit ${budget.name}`}>
          Edit
        </button>
        <button
          type="button"
          className="btn btn-small btn-danger"
          aria-label={`Delete ${budget.name}`}
          onClick={() => window.confirm(`Delete the budget ${budget.name}? Calls are no longer capped by it.`) && remove.mutate()}
        >
          Delete
        </button>
        {remove.error && <Notice tone="danger">{describeError(remove.error)}</Notice>}
      </div>
    );
  }
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const checked = budgetPatch(budget, form);
    if ("error" in checked) return setProblem(checked.error);
    setProblem(null);
    if (Object.keys(checked.patch).length === 0) return setOpen(false);
    save.mutate(checked.patch, { onSuccess: () => setOpen(false) });
  };
  return (
    <form className="form form-inline" onSubmit={submit} aria-label={`Edit budget ${budget.name}`} noValidate>
      <Field label="Name" htmlFor={`${id}-name`}>
        <input id={`${id}-name`} required maxLength={200} value={form.name} onChange={set("name")} />
      </Field>
      <Field label="Limit (USD)" htmlFor={`${id}-limit`}>
        <input id={`${id}-limit`} required inputMode="decimal" value={form.limit} onChange={set("limit")} />
      </Field>
      <Field label="Alert at (% of limit)" htmlFor={`${id}-thresholds`} hint="Comma separated">
        <input id={`${id}-thresholds`} value={form.thresholds} onChange={set("thresholds")} />
      </Field>
      <div className="form-actions">
        <button type="submit" className="btn btn-small btn-primary" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save"}
        </button>
        <button type="button" className="btn btn-small" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      {problem && <Notice tone="danger">{problem}</Notice>}
      {save.error && <Notice tone="danger">{describeError(save.error)}</Notice>}
    </form>
  );
}

function BudgetRow({ budget, forecast, tz, keyLabels }: { budget: Budget; forecast: BudgetForecast | undefined; tz: string; keyLabels: Map<string, string> }) {
  const limit = usdNumber(budget.limit_usd);
  const spent = usdNumber(budget.spent_usd);
  const reserved = usdNumber(budget.reserved_usd);
  // Key budgets name a key id; show the key's label where this person may see it.
  const value = budget.scope === "key" && budget.scope_value ? (keyLabels.get(budget.scope_value) ?? budget.scope_value) : budget.scope_value;
  const scope = budget.scope === "global" ? "all calls" : `${budget.scope} ${value}`;
  const name = budget.name === `${budget.scope}:${budget.scope_value}` ? `${budget.scope}: ${value}` : budget.name;
  return (
    <li className="budget" data-testid="budget" data-budget-id={budget.id}>
      <div className="budget-head">
        <div>
          <strong>{name}</strong> <span className="muted">· {scope} · {budget.period === "none" ? "no reset" : budget.period}</span>
        </div>
        {budget.exhausted ? <Badge tone="danger">Exhausted: calls are refused</Badge> : budget.percent_used >= 80 ? <Badge tone="warn">{budget.percent_used.toFixed(0)}% used</Badge> : null}
      </div>
      <Progress value={spent} reserved={reserved} max={limit} label={`${budget.name}: share of the limit spent`} />
      <p className="budget-figures num">
        <span data-testid="budget-spent">{formatUsd(budget.spent_usd)}</span> spent
        {parseNanos(budget.reserved_usd) > 0n && <> + {formatUsd(budget.reserved_usd)} reserved by calls in flight</>} of{" "}
        <span data-testid="budget-limit">{formatUsd(budget.limit_usd)}</span> · {formatUsd(budget.remaining_usd)} left
        {budget.resets_at && <> · resets {formatDateTime(budget.resets_at, tz)}</>}
      </p>
      <p className="muted small">
        {formatInt(budget.calls)} call{budget.calls === 1 ? "" : "s"} counted · <span data-testid="budget-refused">{formatInt(budget.refused)}</span> refused
        {forecast && (
          <>
            {" "}
            · projected {formatUsd(forecast.projected_usd)} by period end
            {forecast.projected_over_limit && forecast.exhausted_at && <> · runs out {formatDateTime(forecast.exhausted_at, tz)}</>}
          </>
        )}
        {budget.thresholds.length > 0 && <> · alerts at {budget.thresholds.join("%, ")}%</>}
      </p>
      <BudgetActions budget={budget} />
    </li>
  );
}

export function Budgets() {
  const { admin } = useAccess();
  const [filters] = useFilters();
  const budgets = useBudgets();
  const forecast = useForecast({ tz: filters.tz });
  const byId = new Map((forecast.data?.budgets ?? []).map((f) => [f.budget_id, f]));
  const keyLabels = useKeyLabels(admin);
  return (
    <>
      <PageTitle title="Budgets & alerts" />
      <div className="grid-2 grid-budgets">
        <Card title="Budgets">
          <Loaded
            query={budgets}
            what="budgets"
            empty={(b) =>
              b.length ? null : (
                <Empty title="No budgets yet.">A budget is a hard cap: once spent, calls in its scope get 429 until it resets. Create one here.</Empty>
              )
            }
          >
            {(b) => (
              <ul className="budgets" data-testid="budgets">
                {b.map((budget) => (
                  <BudgetRow key={budget.id} budget={budget} forecast={byId.get(budget.id)} tz={filters.tz} keyLabels={keyLabels} />
                ))}
              </ul>
            )}
          </Loaded>
        </Card>
        <Card title="Create a budget">{admin ? <CreateBudget /> : <Notice tone="info">{ADMIN_ONLY}</Notice>}</Card>
      </div>
      <div className="grid-2">
        <Card title="Rate limits">
          <RateLimits tz={filters.tz} />
        </Card>
        <Card title="Alerts">
          <Alerts tz={filters.tz} />
        </Card>
      </div>
    </>
  );
}
