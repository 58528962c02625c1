import { useId, useState, type FormEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { describeError, withQuery } from "../api/client";
import { useApi } from "../api/context";
import { FilterBar } from "../components/FilterBar";
import { Card, Field, Notice, PageTitle } from "../components/ui";
import { ADMIN_ONLY, useAccess } from "../lib/access";
import { useFilters } from "../lib/filters";
import { formatInt } from "../lib/format";
import { analyticsParams, localDate, PERIOD_LABELS, rangeParams } from "../lib/period";

interface ImportResult {
  files: number;
  responses: number;
  new: number;
  unpriced: number;
}

function Export() {
  const id = useId();
  const [filters] = useFilters();
  const [format, setFormat] = useState<"csv" | "json" | "ndjson">("csv");
  const [month, setMonth] = useState(() => localDate(new Date(), filters.tz).slice(0, 7));
  const calls = withQuery("/api/export", { format, ...rangeParams(filters) });
  const analytics = analyticsParams(filters);
  const focus = withQuery("/api/export/focus", { period: analytics.period, since: analytics.since, until: analytics.until });
  const chargeback = (kind: "csv" | "json") => withQuery("/api/export/chargeback", { month, tz: filters.tz, format: kind });
  const scope = [PERIOD_LABELS[filters.period].toLowerCase(), filters.team && `team ${filters.team}`, filters.key && `key ${filters.key}`, filters.model]
    .filter(Boolean)
    .join(", ");
  return (
    <div className="stack">
      <section aria-labelledby={`${id}-calls`}>
        <h3 id={`${id}-calls`}>Calls</h3>
        <p className="muted">Every recorded call in the filters above ({scope}), oldest first, streamed.</p>
        <div className="form form-inline">
          <Field label="Format" htmlFor={`${id}-format`}>
            <select id={`${id}-format`} value={format} onChange={(e) => setFormat(e.target.value as typeof format)}>
              <option value="csv">CSV (flat columns)</option>
              <option value="json">JSON (full call objects)</option>
              <option value="ndjson">NDJSON (one call per line)</option>
            </select>
          </Field>
          <div className="form-actions">
            <a className="btn btn-primary" href={calls} download data-testid="export-calls">
              Download calls
            </a>
          </div>
        </div>
      </section>
      <section aria-labelledby={`${id}-chargeback`}>
        <h3 id={`${id}-chargeback`}>Team chargeback</h3>
        <p className="muted">One calendar month per team, rounded to the cent so the lines add up to the total.</p>
        <div className="form form-inline">
          <Field label="Month" htmlFor={`${id}-month`}>
            <input id={`${id}-month`} type="month" value={month} onChange={(e) => setMonth(e.target.value)} />
          </Field>
          <div className="form-actions">
            <a className="btn" href={chargeback("csv")} download>
              CSV
            </a>
            <a className="btn" href={chargeback("json")} download>
              JSON
            </a>
          </div>
        </div>
      </section>
      <section aria-labelledby={`${id}-focus`}>
        <h3 id={`${id}-focus`}>FOCUS for finance tools</h3>
        <p className="muted">FinOps Open Cost and Usage Specification CSV for the period above, one row per day, model, key, team, user and project.</p>
        <a className="btn" href={focus} download>
          Download FOCUS CSV
        </a>
      </section>
    </div>
  );
}

function Import() {
  const { admin } = useAccess();
  const id = useId();
  const api = useApi();
  const client = useQueryClient();
  const [files, setFiles] = useState<File[]>([]);
  const [user, setUser] = useState("");
  const [team, setTeam] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ImportResult | null>(null);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    const total: ImportResult = { files: 0, responses: 0, new: 0, unpriced: 0 };
    try {
      for (const file of files) {
        const answer = await api.request<ImportResult>("POST", "/api/import/claude-code", {
          raw: file,
          contentType: "application/x-ndjson",
          query: { filename: file.name, user: user.trim() || null, team: team.trim() || null },
        });
        total.files += 1;
        total.responses += answer.responses;
        total.new += answer.new;
        total.unpriced += answer.unpriced;
      }
      setResult(total);
      await client.invalidateQueries({ predicate: (q) => q.queryKey[0] !== "me" });
    } catch (err) {
      setError(`${describeError(err)}${total.files ? ` (${total.files} file(s) were imported before this one)` : ""}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="form stack" onSubmit={(e) => void submit(e)} aria-label="Import Claude Code transcripts">
      <p className="muted">
        Claude Code keeps a transcript of every session in <code>~/.claude/projects/*/*.jsonl</code>. Import them to see usage that did not go through
        the gateway. Importing the same file again adds nothing. From a shell, <code>spendgate import claude-code</code> reads them all at once.
      </p>
      <Field label="Transcript files (.jsonl)" htmlFor={`${id}-files`}>
        <input id={`${id}-files`} type="file" accept=".jsonl,application/x-ndjson,application/json" multiple required onChange={(e) => setFiles([...(e.target.files ?? [])])} />
      </Field>
      <div className="form-grid">
        <Field label="Attribute to user" htmlFor={`${id}-user`} hint="Optional">
          <input id={`${id}-user`} value={user} onChange={(e) => setUser(e.target.value)} />
        </Field>
        <Field label="Attribute to team" htmlFor={`${id}-team`} hint="Optional">
          <input id={`${id}-team`} value={team} onChange={(e) => setTeam(e.target.value)} />
        </Field>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy || files.length === 0 || !admin}>
          {busy ? "Importing…" : "Import"}
        </button>
      </div>
      {!admin && <Notice tone="info">{ADMIN_ONLY}</Notice>}
      {error && <Notice tone="danger">{error}</Notice>}
      {result && (
        <Notice tone="ok">
          Read {formatInt(result.files)} file{result.files === 1 ? "" : "s"}: {formatInt(result.responses)} responses, {formatInt(result.new)} new
          {result.unpriced ? `, ${formatInt(result.unpriced)} unpriced (unknown model)` : ""}.
        </Notice>
      )}
    </form>
  );
}

export function Data() {
  return (
    <>
      <PageTitle title="Import & export" />
      <FilterBar />
      <div className="grid-2">
        <Card title="Export">
          <Export />
        </Card>
        <Card title="Import Claude Code usage">
          <Import />
        </Card>
      </div>
    </>
  );
}
