// Edit forms ↔ PATCH bodies for keys, teams and budgets. Pure functions, tested in
// edits.test.ts: a PATCH carries only what the person changed, so an edit never
// rewrites a field behind their back (a limit shown rounded to cents, say).

import type { Budget, ProxyKey, Team } from "../api/types";
import { NANOS_PER_USD, parseNanos } from "./money";

const HEX = /^#[0-9a-f]{6}$/i;

/** Whether `value` is a `#rrggbb` colour, the only form the API takes. */
export function isHexColor(value: string): boolean {
  return HEX.test(value.trim());
}

/** "cli, eval,, ci" → ["cli", "eval", "ci"]. */
export function parseTags(text: string): string[] {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

/** "50, 80,100" → [50, 80, 100], or a message that says what to write. */
export function parseThresholds(text: string): { thresholds: number[] } | { error: string } {
  const parts = text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  const thresholds: number[] = [];
  for (const part of parts) {
    const n = Number(part);
    if (!/^\d+$/.test(part) || n < 1 || n > 1000) {
      return { error: `Thresholds are whole percentages from 1 to 1000, separated by commas (e.g. 50, 80, 100); "${part}" is not one.` };
    }
    if (!thresholds.includes(n)) thresholds.push(n);
  }
  return { thresholds: thresholds.sort((a, b) => a - b) };
}

/** A decimal USD string without trailing zeros, for an input: "25.500000000" → "25.5". */
export function plainUsd(usd: string): string {
  const nanos = parseNanos(usd);
  const sign = nanos < 0n ? "-" : "";
  const abs = nanos < 0n ? -nanos : nanos;
  const whole = abs / NANOS_PER_USD;
  const frac = (abs % NANOS_PER_USD).toString().padStart(9, "0").replace(/0+$/, "");
  return `${sign}${whole}${frac ? `.${frac}` : ""}`;
}

/** The local calendar date (YYYY-MM-DD) of an instant, for a date input; "" for none. */
export function localDate(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The end of a local calendar day as an instant: a key "expiring on" a date works all that day. */
export function endOfLocalDay(date: string): string {
  return new Date(`${date}T23:59:59`).toISOString();
}

export interface KeyForm {
  label: string;
  /** "" for no colour of its own (the team's colour is shown instead). */
  color: string;
  team: string;
  user: string;
  project: string;
  tags: string;
  /** YYYY-MM-DD, "" for never. */
  expires: string;
}

export interface KeyPatch {
  label?: string;
  color?: string | null;
  team?: string | null;
  user?: string | null;
  project?: string | null;
  tags?: string[];
  expires_at?: string | null;
}

export function keyForm(key: ProxyKey): KeyForm {
  return {
    label: key.label,
    color: key.color ?? "",
    team: key.team ?? "",
    user: key.user ?? "",
    project: key.project ?? "",
    tags: key.tags.join(", "),
    expires: localDate(key.expires_at),
  };
}

/** The PATCH body for what changed between `key` and `form` (empty: nothing to send). */
export function keyPatch(key: ProxyKey, form: KeyForm): KeyPatch {
  const patch: KeyPatch = {};
  const label = form.label.trim();
  if (label !== key.label) patch.label = label;
  const color = form.color.trim().toLowerCase() || null;
  if (color !== (key.color ?? null)) patch.color = color;
  const team = form.team || null;
  if (team !== key.team) patch.team = team;
  const user = form.user.trim() || null;
  if (user !== key.user) patch.user = user;
  const project = form.project.trim() || null;
  if (project !== key.project) patch.project = project;
  const tags = parseTags(form.tags);
  if (tags.join("\n") !== key.tags.join("\n")) patch.tags = tags;
  if (form.expires !== localDate(key.expires_at)) patch.expires_at = form.expires ? endOfLocalDay(form.expires) : null;
  return patch;
}

/** What is wrong with a key form before it is sent, or null. */
export function keyFormProblem(form: KeyForm): string | null {
  if (!form.label.trim()) return "A key needs a label.";
  if (form.color && !isHexColor(form.color)) return "Colours are written #rrggbb, e.g. #3b82f6.";
  return null;
}

export interface TeamPatch {
  name?: string;
  color?: string;
}

export function teamPatch(team: Team, form: { name: string; color: string }): TeamPatch {
  const patch: TeamPatch = {};
  const name = form.name.trim();
  if (name && name !== team.name) patch.name = name;
  const color = form.color.trim().toLowerCase();
  if (color && color !== (team.color ?? "")) patch.color = color;
  return patch;
}

export interface BudgetForm {
  name: string;
  limit: string;
  thresholds: string;
}

export interface BudgetPatch {
  name?: string;
  limit_usd?: string;
  thresholds?: number[];
}

export function budgetForm(budget: Budget): BudgetForm {
  return { name: budget.name, limit: plainUsd(budget.limit_usd), thresholds: budget.thresholds.join(", ") };
}

const USD_INPUT = /^\$?\d+(\.\d+)?$/;

/** The PATCH body for what changed, or a message that says what to fix. */
export function budgetPatch(budget: Budget, form: BudgetForm): { patch: BudgetPatch } | { error: string } {
  const patch: BudgetPatch = {};
  const name = form.name.trim();
  if (!name) return { error: "A budget needs a name." };
  if (name !== budget.name) patch.name = name;
  const limit = form.limit.trim().replace(/,/g, "");
  if (!USD_INPUT.test(limit)) return { error: `Write the limit in dollars, e.g. 250 or 12.50; "${form.limit}" is not an amount.` };
  if (parseNanos(limit.replace(/^\$/, "")) !== parseNanos(budget.limit_usd)) patch.limit_usd = limit.replace(/^\$/, "");
  const parsed = parseThresholds(form.thresholds);
  if ("error" in parsed) return parsed;
  if (parsed.thresholds.join(",") !== budget.thresholds.join(",")) patch.thresholds = parsed.thresholds;
  return { patch };
}
