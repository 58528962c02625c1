import { useId, useState, type FormEvent } from "react";
import { describeError } from "../api/client";
import { useBreakdown, useKeys, useSend, useTeams } from "../api/hooks";
import type { IssuedKey, ProxyKey, Team } from "../api/types";
import { FilterBar } from "../components/FilterBar";
import { Empty, Loaded } from "../components/states";
import { Badge, Card, CopyButton, Field, Modal, Notice, PageTitle } from "../components/ui";
import { ADMIN_ONLY, useAccess } from "../lib/access";
import { useFilters } from "../lib/filters";
import { formatDateTime, formatInt, formatRatio } from "../lib/format";
import { formatUsd } from "../lib/money";
import { analyticsParams, PERIOD_LABELS } from "../lib/period";
import { PALETTE } from "../lib/shape";
import { isHexColor, keyForm, keyFormProblem, keyPatch, teamPatch, type KeyForm, type KeyPatch, type TeamPatch } from "../lib/edits";

/** A key's swatch: its own colour, else its team's. */
function keyColor(key: ProxyKey, teamColors: Map<string, string | null>): string | null {
  return key.color ?? (key.team ? (teamColors.get(key.team) ?? null) : null);
}

type Attribution = Pick<KeyForm, "team" | "user" | "project" | "tags" | "expires">;

/** The attribution fields of the create and edit key forms (team, user, project, tags, expiry). */
function KeyAttribution({
  id,
  form,
  set,
  teams,
  editing,
}: {
  id: string;
  form: Attribution;
  set: (name: keyof Attribution) => (e: { target: { value: string } }) => void;
  teams: Team[];
  editing: boolean;
}) {
  return (
    <>
      <Field label="Team" htmlFor={`${id}-team`}>
        <select id={`${id}-team`} value={form.team} onChange={set("team")}>
          <option value="">No team</option>
          {teams.map((t) => (
            <option key={t.id} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
      </Field>
      <Field label="User" htmlFor={`${id}-user`}>
        <input id={`${id}-user`} maxLength={200} value={form.user} onChange={set("user")} />
      </Field>
      <Field label="Project" htmlFor={`${id}-project`}>
        <input id={`${id}-project`} maxLength={200} value={form.project} onChange={set("project")} />
      </Field>
      <Field label="Tags" htmlFor={`${id}-tags`} hint={editing ? "Comma separated; replaces the key's tags" : "Comma separated"}>
        <input id={`${id}-tags`} value={form.tags} onChange={set("tags")} />
      </Field>
      <Field label="Expires" htmlFor={`${id}-expires`} hint={editing ? "End of that day; empty: never" : "Optional, end of that day"}>
        <input id={`${id}-expires`} type="date" value={form.expires} onChange={set("expires")} />
      </Field>
    </>
  );
}

/** Edit a key's label, colour and attribution (never its secret), in a dialog. */
function EditKey({ apiKey, teams, onDone }: { apiKey: ProxyKey; teams: Team[]; onDone: () => void }) {
  const id = useId();
  const save = useSend<KeyPatch, ProxyKey>("PATCH", `/api/keys/${apiKey.id}`);
  const [form, setForm] = useState<KeyForm>(() => keyForm(apiKey));
  const [problem, setProblem] = useState<string | null>(null);
  const set = (name: keyof KeyForm) => (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value });
  const teamColor = teams.find((t) => t.name === form.team)?.color ?? null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const wrong = keyFormProblem(form);
    setProblem(wrong);
    if (wrong) return;
    const patch = keyPatch(apiKey, form);
    if (Object.keys(patch).length === 0) return onDone();
    save.mutate(patch, { onSuccess: onDone });
  };
  return (
    <form className="form form-grid" onSubmit={submit} aria-label={`Edit key ${apiKey.label}`} noValidate>
      <Field label="Label" htmlFor={`${id}-label`}>
        <input id={`${id}-label`} required maxLength={200} value={form.label} onChange={set("label")} />
      </Field>
      <Field label="Colour" htmlFor={`${id}-color`} hint={form.color ? "The key's own colour" : "None: the team's colour is shown"}>
        <div className="color-row">
          <input
            id={`${id}-color`}
            type="color"
            value={isHexColor(form.color) ? form.color : (teamColor ?? PALETTE[0])}
            onChange={set("color")}
            disabled={!form.color}
            aria-describedby={`${id}-own`}
          />
          <label className="switch" id={`${id}-own`}>
            <input type="checkbox" checked={form.color !== ""} onChange={(e) => setForm({ ...form, color: e.target.checked ? (apiKey.color ?? teamColor ?? PALETTE[0]) : "" })} />
            <span>Own colour</span>
          </label>
        </div>
      </Field>
      <KeyAttribution id={id} form={form} set={set} teams={teams} editing />
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save key"}
        </button>
        <button type="button" className="btn" onClick={onDone}>
          Cancel
        </button>
      </div>
      {problem && <Notice tone="danger">{problem}</Notice>}
      {save.error && <Notice tone="danger">{describeError(save.error)}</Notice>}
    </form>
  );
}

/** Rename or recolour a team, in a dialog. */
function EditTeam({ team, onDone }: { team: Team; onDone: () => void }) {
  const id = useId();
  const save = useSend<TeamPatch, Team>("PATCH", `/api/teams/${encodeURIComponent(team.id)}`);
  const [name, setName] = useState(team.name);
  const [color, setColor] = useState(team.color ?? PALETTE[0]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const patch = teamPatch(team, { name, color });
    if (Object.keys(patch).length === 0) return onDone();
    save.mutate(patch, { onSuccess: onDone });
  };
  return (
    <form className="form form-inline" onSubmit={submit} aria-label={`Edit team ${team.name}`}>
      <Field label="Name" htmlFor={`${id}-name`}>
        <input id={`${id}-name`} required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field label="Colour" htmlFor={`${id}-color`}>
        <input id={`${id}-color`} type="color" value={color} onChange={(e) => setColor(e.target.value)} />
      </Field>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={save.isPending}>
          {save.isPending ? "Saving…" : "Save team"}
        </button>
        <button type="button" className="btn" onClick={onDone}>
          Cancel
        </button>
      </div>
      <p className="hint">Budgets and rate limits on the team follow a new name; calls already recorded keep the old one.</p>
      {save.error && <Notice tone="danger">{describeError(save.error)}</Notice>}
    </form>
  );
}

/** The secret of a new or rotated key, shown exactly once. */
function IssuedDialog({ issued, onClose }: { issued: IssuedKey | null; onClose: () => void }) {
  const id = useId();
  return (
    <Modal open={issued !== null} title="Copy the new key now" onClose={onClose}>
      {issued && (
        <>
          <p>
            This is the only time <strong>{issued.label}</strong> is shown. spendgate keeps only a hash; if the key is lost, rotate it.
          </p>
          <div className="copy-row">
            <label htmlFor={id} className="sr-only">
              New proxy key
            </label>
            <input id={id} className="secret" readOnly value={issued.key} data-testid="issued-key" onFocus={(e) => e.target.select()} />
            <CopyButton text={issued.key} targetId={id} />
          </div>
          <p className="hint">
            Use it as the API key with the base URL of this gateway, e.g. <code>ANTHROPIC_BASE_URL={window.location.origin}</code> and{" "}
            <code>ANTHROPIC_API_KEY=&lt;this key&gt;</code>.
          </p>
          <div className="form-actions">
            <button type="button" className="btn btn-primary" onClick={onClose}>
              I have stored it
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}

interface KeyBody {
  label: string;
  team?: string;
  user?: string;
  project?: string;
  tags: string[];
  expires_at?: string;
}

function CreateKey({ teams, onIssued }: { teams: Team[]; onIssued: (key: IssuedKey) => void }) {
  const id = useId();
  const create = useSend<KeyBody, IssuedKey>("POST", "/api/keys");
  const [form, setForm] = useState({ label: "", team: "", user: "", project: "", tags: "", expires: "" });
  const set = (name: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [name]: e.target.value });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const body: KeyBody = {
      label: form.label.trim(),
      tags: form.tags.split(",").map((t) => t.trim()).filter(Boolean),
    };
    if (form.team) body.team = form.team;
    if (form.user.trim()) body.user = form.user.trim();
    if (form.project.trim()) body.project = form.project.trim();
    if (form.expires) body.expires_at = new Date(`${form.expires}T23:59:59`).toISOString();
    create.mutate(body, {
      onSuccess: (issued) => {
        onIssued(issued);
        setForm({ label: "", team: form.team, user: "", project: "", tags: "", expires: "" });
      },
    });
  };
  return (
    <form className="form form-grid" onSubmit={submit} aria-label="Create a key">
      <Field label="Label" htmlFor={`${id}-label`} hint="Who or what uses it, e.g. alice laptop">
        <input id={`${id}-label`} required maxLength={200} value={form.label} onChange={set("label")} />
      </Field>
      <KeyAttribution id={id} form={form} set={set} teams={teams} editing={false} />
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={create.isPending}>
          {create.isPending ? "Creating…" : "Create key"}
        </button>
        {create.error && <Notice tone="danger">{describeError(create.error)}</Notice>}
      </div>
    </form>
  );
}

function KeyActions({ apiKey, teams, onIssued }: { apiKey: ProxyKey; teams: Team[]; onIssued: (key: IssuedKey) => void }) {
  const [editing, setEditing] = useState(false);
  const revoke = useSend<void, ProxyKey>("POST", `/api/keys/${apiKey.id}/revoke`);
  const rotate = useSend<void, IssuedKey>("POST", `/api/keys/${apiKey.id}/rotate`);
  const [confirm, setConfirm] = useState<"" | "revoke" | "rotate">("");
  if (apiKey.status !== "active") return <span className="muted small">{apiKey.rotated_to ? "rotated" : apiKey.status}</span>;
  const run = async () => {
    // mutateAsync, not mutate callbacks: the refreshed list hides this row (the key is no
    // longer active) and a per-call callback of an unmounted row would never run.
    try {
      if (confirm === "revoke") await revoke.mutateAsync();
      if (confirm === "rotate") onIssued(await rotate.mutateAsync());
      setConfirm("");
    } catch {
      // Shown below from the mutation's error.
    }
  };
  const error = revoke.error ?? rotate.error;
  return (
    <div className="row-actions">
      <button type="button" className="btn btn-small" onClick={() => setEditing(true)} aria-label={`Edit ${apiKey.label}`}>
        Edit
      </button>
      <Modal open={editing} title={`Edit ${apiKey.label}`} onClose={() => setEditing(false)}>
        <EditKey apiKey={apiKey} teams={teams} onDone={() => setEditing(false)} />
      </Modal>
      <button type="button" className="btn btn-small" onClick={() => setConfirm("rotate")} aria-label={`Rotate ${apiKey.label}`}>
        Rotate
      </button>
      <button type="button" className="btn btn-small btn-danger" onClick={() => setConfirm("revoke")} aria-label={`Revoke ${apiKey.label}`}>
        Revoke
      </button>
      {error && <Notice tone="danger">{describeError(error)}</Notice>}
      <Modal open={confirm !== ""} title={confirm === "revoke" ? `Revoke ${apiKey.label}?` : `Rotate ${apiKey.label}?`} onClose={() => setConfirm("")}>
        <p>
          {confirm === "revoke"
            ? "Calls with this key are refused from now on. This cannot be undone."
            : "A new key with the same settings is issued and this one is revoked at once. Update every place that uses it."}
        </p>
        <div className="form-actions">
          <button type="button" className="btn" onClick={() => setConfirm("")}>
            Cancel
          </button>
          <button type="button" className={`btn ${confirm === "revoke" ? "btn-danger" : "btn-primary"}`} onClick={() => void run()} disabled={revoke.isPending || rotate.isPending}>
            {confirm === "revoke" ? "Revoke key" : "Rotate key"}
          </button>
        </div>
      </Modal>
    </div>
  );
}

function KeysTable({ keys, teams, onIssued }: { keys: ProxyKey[]; teams: Team[]; onIssued: (key: IssuedKey) => void }) {
  const [filters] = useFilters();
  const usage = useBreakdown({ ...analyticsParams({ ...filters, key: null }), by: "key", limit: 1000 });
  const [showRevoked, setShowRevoked] = useState(false);
  const byKey = new Map((usage.data?.data ?? []).map((r) => [r.key, r]));
  const colors = new Map(teams.map((t) => [t.name, t.color]));
  const shown = keys.filter((k) => showRevoked || k.status === "active");
  return (
    <>
      <label className="switch">
        <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.target.checked)} />
        <span>Show revoked and expired keys ({formatInt(keys.length - keys.filter((k) => k.status === "active").length)})</span>
      </label>
      {shown.length === 0 ? (
        <Empty title="No active keys.">Create one above; calls made with it are attributed to its team, user and project.</Empty>
      ) : (
        <div className="table-scroll" tabIndex={0} role="region" aria-label="Keys, scrolls sideways">
          <table className="table table-cards" data-testid="keys-table">
            <thead>
              <tr>
                <th scope="col">Label</th>
                <th scope="col">Key</th>
                <th scope="col">Team</th>
                <th scope="col">User / project</th>
                <th scope="col">Created</th>
                <th scope="col" className="num">
                  Spend ({PERIOD_LABELS[filters.period].toLowerCase()})
                </th>
                <th scope="col" className="num">
                  Calls
                </th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((k) => {
                const used = byKey.get(k.id);
                return (
                  <tr key={k.id} data-key-id={k.id}>
                    <th scope="row">
                      <span className="swatch" data-testid="key-swatch" data-color={keyColor(k, colors) ?? ""} style={{ background: keyColor(k, colors) ?? "transparent" }} aria-hidden="true" />
                      {k.label}
                    </th>
                    <td data-label="Key">
                      <code>{k.hint}</code>
                    </td>
                    <td data-label="Team">{k.team ?? <span className="muted">—</span>}</td>
                    <td data-label="User / project">{[k.user, k.project].filter(Boolean).join(" / ") || <span className="muted">—</span>}</td>
                    <td className="nowrap" data-label="Created">
                      {formatDateTime(k.created_at, filters.tz)}
                    </td>
                    <td className="num" data-testid="key-spend" data-label="Spend">
                      {used ? formatUsd(used.cost_usd) : "$0.00"}
                      {used?.share && <span className="muted small"> · {formatRatio(used.share)}</span>}
                    </td>
                    <td className="num" data-label="Calls">
                      {formatInt(used?.calls ?? 0)}
                    </td>
                    <td data-label="Status">
                      <Badge tone={k.status === "active" ? "ok" : "info"}>{k.status}</Badge>
                    </td>
                    <td>
                      <KeyActions apiKey={k} teams={teams} onIssued={onIssued} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Teams({ teams }: { teams: Team[] }) {
  const id = useId();
  const [filters] = useFilters();
  const usage = useBreakdown({ ...analyticsParams({ ...filters, team: null }), by: "team", limit: 1000 });
  const create = useSend<{ name: string; color: string }, Team>("POST", "/api/teams");
  const remove = useSend<string, unknown>("DELETE", (name) => `/api/teams/${encodeURIComponent(name)}`);
  const [name, setName] = useState("");
  const [editing, setEditing] = useState<Team | null>(null);
  const [color, setColor] = useState<string>(PALETTE[teams.length % PALETTE.length]!);
  const spend = new Map((usage.data?.data ?? []).map((r) => [r.key, r]));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate({ name: name.trim(), color }, { onSuccess: () => (setName(""), setColor(PALETTE[(teams.length + 1) % PALETTE.length]!)) });
  };
  return (
    <>
      {teams.length === 0 ? (
        <Empty title="No teams yet.">Teams group keys; their colour is used in the charts.</Empty>
      ) : (
        <ul className="team-list" data-testid="teams">
          {teams.map((t) => (
            <li key={t.id}>
              <span className="swatch swatch-large" style={{ background: t.color ?? "transparent" }} aria-hidden="true" />
              <span className="team-name">{t.name}</span>
              <span className="num muted">{formatUsd(spend.get(t.name)?.cost_usd ?? "0")}</span>
              <button type="button" className="btn btn-small btn-quiet" aria-label={`Edit team ${t.name}`} onClick={() => setEditing(t)}>
                Edit
              </button>
              <button
                type="button"
                className="btn btn-small btn-quiet"
                aria-label={`Delete team ${t.name}`}
                onClick={() => window.confirm(`Delete team ${t.name}? Its keys stay, without a team.`) && remove.mutate(t.name)}
              >
                Delete
              </button>
            </li>
          ))}
        </ul>
      )}
      <form className="form form-inline" onSubmit={submit} aria-label="Create a team">
        <Field label="New team" htmlFor={`${id}-name`}>
          <input id={`${id}-name`} required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field label="Colour" htmlFor={`${id}-color`}>
          <input id={`${id}-color`} type="color" value={color} onChange={(e) => setColor(e.target.value)} />
        </Field>
        <div className="form-actions">
          <button type="submit" className="btn" disabled={create.isPending}>
            Add team
          </button>
        </div>
      </form>
      {(create.error || remove.error) && <Notice tone="danger">{describeError(create.error ?? remove.error)}</Notice>}
      <Modal open={editing !== null} title={`Edit team ${editing?.name ?? ""}`} onClose={() => setEditing(null)}>
        {editing && <EditTeam team={editing} onDone={() => setEditing(null)} />}
      </Modal>
    </>
  );
}

export function Keys() {
  const { admin } = useAccess();
  return admin ? <ManageKeys /> : <ViewTeams />;
}

/** Viewers see the teams; keys (and their secrets' hints) are for admins. */
function ViewTeams() {
  const teams = useTeams();
  const [filters] = useFilters();
  const usage = useBreakdown({ ...analyticsParams({ ...filters, team: null }), by: "team", limit: 1000 });
  const spend = new Map((usage.data?.data ?? []).map((r) => [r.key, r]));
  return (
    <>
      <PageTitle title="Keys & teams" />
      <FilterBar dimensions={false} />
      <Notice tone="info">{ADMIN_ONLY} Proxy keys are listed for admins only.</Notice>
      <Card title="Teams">
        <Loaded query={teams} what="teams" empty={(t) => (t.length ? null : <Empty title="No teams yet." />)}>
          {(t) => (
            <ul className="team-list" data-testid="teams">
              {t.map((team) => (
                <li key={team.id}>
                  <span className="swatch swatch-large" style={{ background: team.color ?? "transparent" }} aria-hidden="true" />
                  <span className="team-name">{team.name}</span>
                  <span className="num muted">{formatUsd(spend.get(team.name)?.cost_usd ?? "0")}</span>
                </li>
              ))}
            </ul>
          )}
        </Loaded>
      </Card>
    </>
  );
}

function ManageKeys() {
  const keys = useKeys();
  const teams = useTeams();
  const [issued, setIssued] = useState<IssuedKey | null>(null);
  return (
    <>
      <PageTitle title="Keys & teams" />
      <FilterBar dimensions={false} />
      <div className="grid-2 grid-keys">
        <Card title="Create a proxy key">
          <CreateKey teams={teams.data ?? []} onIssued={setIssued} />
        </Card>
        <Card title="Teams">
          <Loaded query={teams} what="teams">
            {(t) => <Teams teams={t} />}
          </Loaded>
        </Card>
      </div>
      <Card title="Proxy keys">
        <Loaded query={keys} what="keys">
          {(k) => <KeysTable keys={k} teams={teams.data ?? []} onIssued={setIssued} />}
        </Loaded>
      </Card>
      <IssuedDialog issued={issued} onClose={() => setIssued(null)} />
    </>
  );
}
