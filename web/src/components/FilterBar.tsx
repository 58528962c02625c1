// Period, time zone and team/key/model filters. They live in the URL and carry
// across pages; every page that shows spend reads them.

import { useId, useMemo, useState } from "react";
import { useBreakdown, useKeys, useMe, useTeams } from "../api/hooks";
import { useAccess } from "../lib/access";
import { useFilters } from "../lib/filters";
import { browserZone, localDate, PERIOD_LABELS, PERIODS, type PeriodName } from "../lib/period";

const COMMON_ZONES = ["UTC", "America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney"];

function zones(current: string): string[] {
  let all: string[] = [];
  try {
    all = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.("timeZone") ?? [];
  } catch {
    all = [];
  }
  const set = new Set([browserZone(), current, ...COMMON_ZONES, ...all]);
  return [...set];
}

/** Teams, keys and models seen in the last 90 days plus the configured ones, for the selects. */
function useChoices() {
  const seen = { period: "90d", limit: 200 };
  // Choices change rarely: loaded once per page view, not polled.
  const teamsSeen = useBreakdown({ ...seen, by: "team" }, { poll: false });
  const keysSeen = useBreakdown({ ...seen, by: "key" }, { poll: false });
  const modelsSeen = useBreakdown({ ...seen, by: "model" }, { poll: false });
  const teams = useTeams();
  const keys = useKeys({ enabled: useAccess().admin }); // keys are for admins only
  return useMemo(() => {
    const teamNames = new Set<string>();
    for (const t of teams.data ?? []) teamNames.add(t.name);
    for (const r of teamsSeen.data?.data ?? []) if (r.key) teamNames.add(r.key);
    const keyLabels = new Map<string, string>();
    for (const k of keys.data ?? []) keyLabels.set(k.id, `${k.label} (${k.hint})`);
    for (const r of keysSeen.data?.data ?? []) if (r.key && !keyLabels.has(r.key)) keyLabels.set(r.key, r.label ?? r.key);
    const models = new Set<string>();
    for (const r of modelsSeen.data?.data ?? []) if (r.key) models.add(r.key);
    return {
      teams: [...teamNames].sort(),
      keys: [...keyLabels.entries()].sort((a, b) => a[1].localeCompare(b[1])),
      models: [...models].sort(),
    };
  }, [teams.data, teamsSeen.data, keys.data, keysSeen.data, modelsSeen.data]);
}

export function FilterBar({ dimensions = true }: { dimensions?: boolean }) {
  const [filters, setFilters] = useFilters();
  const ownTeams = useMe().data?.user?.teams ?? null;
  const [open, setOpen] = useState(false);
  const choices = useChoices();
  const id = useId();
  const zoneList = useMemo(() => zones(filters.tz), [filters.tz]);
  const today = localDate(new Date(), filters.tz);
  const anyDimension = filters.team || filters.key || filters.model;

  const setPeriod = (period: PeriodName) => {
    if (period === "custom") {
      const start = new Date(Date.now() - 13 * 86400e3);
      setFilters({ period, since: filters.since ?? localDate(start, filters.tz), until: filters.until ?? today });
    } else {
      setFilters({ period, since: null, until: null });
    }
  };

  const summary = [
    filters.period === "custom" ? `${filters.since ?? "…"} – ${filters.until ?? "today"}` : PERIOD_LABELS[filters.period],
    filters.tz,
    filters.team && `team ${filters.team}`,
    filters.key && "one key",
    filters.model,
  ]
    .filter(Boolean)
    .join(" · ");

  return (
    <form className={`filters ${open ? "filters-open" : ""}`} aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      {/* Phones show one line; the filters open below it. */}
      <button type="button" className="btn btn-quiet filters-toggle" aria-expanded={open} onClick={() => setOpen(!open)}>
        <span className="filters-toggle-label">Filters</span>
        <span className="filters-toggle-summary">{summary}</span>
        <span aria-hidden="true">{open ? "▴" : "▾"}</span>
      </button>
      <div className="filter">
        <label htmlFor={`${id}-period`}>Period</label>
        <select id={`${id}-period`} value={filters.period} onChange={(e) => setPeriod(e.target.value as PeriodName)}>
          {PERIODS.map((p) => (
            <option key={p} value={p}>
              {PERIOD_LABELS[p]}
            </option>
          ))}
        </select>
      </div>
      {filters.period === "custom" && (
        <>
          <div className="filter">
            <label htmlFor={`${id}-since`}>From</label>
            <input
              id={`${id}-since`}
              type="date"
              value={filters.since ?? ""}
              max={filters.until ?? today}
              onChange={(e) => e.target.value && setFilters({ since: e.target.value })}
            />
          </div>
          <div className="filter">
            <label htmlFor={`${id}-until`}>To (inclusive)</label>
            <input
              id={`${id}-until`}
              type="date"
              value={filters.until ?? ""}
              min={filters.since ?? undefined}
              onChange={(e) => setFilters({ until: e.target.value || null })}
            />
          </div>
        </>
      )}
      <div className="filter">
        <label htmlFor={`${id}-tz`}>Time zone</label>
        <select id={`${id}-tz`} value={filters.tz} onChange={(e) => setFilters({ tz: e.target.value })}>
          {zoneList.map((z) => (
            <option key={z} value={z}>
              {z}
            </option>
          ))}
        </select>
      </div>
      {dimensions && (
        <>
          <div className="filter">
            <label htmlFor={`${id}-team`}>Team</label>
            <select id={`${id}-team`} value={filters.team ?? ""} onChange={(e) => setFilters({ team: e.target.value || null })}>
              {!ownTeams && <option value="">All teams</option>}
              {(ownTeams ?? [...new Set([...(filters.team ? [filters.team] : []), ...choices.teams])]).map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </div>
          <div className="filter">
            <label htmlFor={`${id}-key`}>Key</label>
            <select id={`${id}-key`} value={filters.key ?? ""} onChange={(e) => setFilters({ key: e.target.value || null })}>
              <option value="">All keys</option>
              {filters.key && !choices.keys.some(([k]) => k === filters.key) && <option value={filters.key}>{filters.key}</option>}
              {choices.keys.map(([k, name]) => (
                <option key={k} value={k}>
                  {name}
                </option>
              ))}
            </select>
          </div>
          <div className="filter">
            <label htmlFor={`${id}-model`}>Model</label>
            <select id={`${id}-model`} value={filters.model ?? ""} onChange={(e) => setFilters({ model: e.target.value || null })}>
              <option value="">All models</option>
              {[...new Set([...(filters.model ? [filters.model] : []), ...choices.models])].map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </div>
          {anyDimension && (
            <div className="filter filter-clear">
              <button type="button" className="btn btn-quiet" onClick={() => setFilters({ team: ownTeams?.[0] ?? null, key: null, model: null })}>
                Clear filters
              </button>
            </div>
          )}
        </>
      )}
    </form>
  );
}
