import { describe, expect, it } from "vitest";
import type { Budget, ProxyKey, Team } from "../api/types";
import { budgetForm, budgetPatch, endOfLocalDay, isHexColor, keyForm, keyFormProblem, keyPatch, localDate, parseTags, parseThresholds, plainUsd, teamPatch } from "./edits";

const key: ProxyKey = {
  id: "k1",
  hint: "sg-...abcd",
  label: "alice laptop",
  color: "#3b82f6",
  team: "Engineering",
  team_id: "t1",
  user: "alice",
  project: null,
  tags: ["cli", "eval"],
  upstream: "server",
  status: "active",
  created_at: "2026-11-01T10:00:00Z",
  expires_at: null,
  revoked_at: null,
  rotated_to: null,
};

const budget: Budget = {
  id: "b1",
  name: "Eng monthly",
  scope: "team",
  scope_value: "Engineering",
  period: "monthly",
  limit_usd: "250.505000000",
  thresholds: [50, 80, 100],
  created_at: "2026-11-01T10:00:00Z",
  period_start: null,
  resets_at: null,
  spent_usd: "1.000000000",
  reserved_usd: "0.000000000",
  remaining_usd: "249.505000000",
  percent_used: 0.4,
  calls: 3,
  refused: 0,
  exhausted: false,
};

describe("colours, tags and thresholds", () => {
  it("accepts only #rrggbb colours", () => {
    expect(isHexColor("#3B82f6")).toBe(true);
    expect(isHexColor(" #3b82f6 ")).toBe(true);
    for (const bad of ["3b82f6", "#3b82f", "#3b82f6a", "red", "#ggg000", ""]) expect(isHexColor(bad)).toBe(false);
  });

  it("splits tags on commas and drops empty ones", () => {
    expect(parseTags(" cli, eval,, ci ,")).toEqual(["cli", "eval", "ci"]);
    expect(parseTags("")).toEqual([]);
  });

  it("reads thresholds as sorted, distinct whole percentages", () => {
    expect(parseThresholds("100, 50,80, 50")).toEqual({ thresholds: [50, 80, 100] });
    expect(parseThresholds("")).toEqual({ thresholds: [] });
    for (const bad of ["0", "1001", "50, high", "12.5", "-5"]) {
      const parsed = parseThresholds(bad);
      expect("error" in parsed && parsed.error).toMatch(/whole percentages from 1 to 1000/);
    }
  });
});

describe("plainUsd", () => {
  it("drops trailing zeros and keeps every digit the API gave", () => {
    expect(plainUsd("25.000000000")).toBe("25");
    expect(plainUsd("250.505000000")).toBe("250.505");
    expect(plainUsd("0.000000001")).toBe("0.000000001");
    expect(plainUsd("0E-9")).toBe("0");
    expect(plainUsd("1234567.890000000")).toBe("1234567.89");
  });
});

describe("dates for the expiry input", () => {
  it("round-trips a local date through the end of that day", () => {
    expect(localDate(endOfLocalDay("2027-03-31"))).toBe("2027-03-31");
    expect(localDate(endOfLocalDay("2026-12-31"))).toBe("2026-12-31");
    expect(localDate(null)).toBe("");
  });
});

describe("keyPatch", () => {
  it("sends nothing when nothing changed", () => {
    expect(keyPatch(key, keyForm(key))).toEqual({});
  });

  it("sends only the changed fields, normalised", () => {
    const form = { ...keyForm(key), label: "  alice desktop ", color: "#10B981", tags: "cli, eval" };
    expect(keyPatch(key, form)).toEqual({ label: "alice desktop", color: "#10b981" });
  });

  it("clears with null: colour, team, user, expiry", () => {
    const expiring = { ...key, expires_at: endOfLocalDay("2027-01-15") };
    const form = { ...keyForm(expiring), color: "", team: "", user: " ", expires: "" };
    expect(keyPatch(expiring, form)).toEqual({ color: null, team: null, user: null, expires_at: null });
  });

  it("sets tags as a whole and an expiry at the end of the chosen day", () => {
    const form = { ...keyForm(key), tags: "ci", project: "apollo", expires: "2027-06-30" };
    expect(keyPatch(key, form)).toEqual({ tags: ["ci"], project: "apollo", expires_at: endOfLocalDay("2027-06-30") });
  });

  it("says what is wrong before sending", () => {
    expect(keyFormProblem({ ...keyForm(key), label: "  " })).toMatch(/label/);
    expect(keyFormProblem({ ...keyForm(key), color: "blue" })).toMatch(/#rrggbb/);
    expect(keyFormProblem({ ...keyForm(key), color: "" })).toBeNull();
  });
});

describe("teamPatch", () => {
  const team: Team = { id: "t1", name: "Engineering", color: "#3b82f6", created_at: "2026-11-01T10:00:00Z" };
  it("sends a new name and colour only when they change", () => {
    expect(teamPatch(team, { name: "Engineering", color: "#3B82F6" })).toEqual({});
    expect(teamPatch(team, { name: " Platform ", color: "#10b981" })).toEqual({ name: "Platform", color: "#10b981" });
    expect(teamPatch({ ...team, color: null }, { name: "Engineering", color: "#10b981" })).toEqual({ color: "#10b981" });
  });
});

describe("budgetPatch", () => {
  it("fills the form with the exact limit, not the rounded display", () => {
    expect(budgetForm(budget)).toEqual({ name: "Eng monthly", limit: "250.505", thresholds: "50, 80, 100" });
    expect(budgetPatch(budget, budgetForm(budget))).toEqual({ patch: {} });
  });

  it("sends only what changed", () => {
    const form = { name: "Eng", limit: "$1,000.50", thresholds: "90, 50" };
    expect(budgetPatch(budget, form)).toEqual({ patch: { name: "Eng", limit_usd: "1000.50", thresholds: [50, 90] } });
    expect(budgetPatch(budget, { ...budgetForm(budget), limit: "250.5050" })).toEqual({ patch: {} });
  });

  it("says what to fix", () => {
    expect(budgetPatch(budget, { ...budgetForm(budget), name: " " })).toEqual({ error: "A budget needs a name." });
    const bad = budgetPatch(budget, { ...budgetForm(budget), limit: "lots" });
    expect("error" in bad && bad.error).toMatch(/e\.g\. 250 or 12\.50/);
    const levels = budgetPatch(budget, { ...budgetForm(budget), thresholds: "50, 0" });
    expect("error" in levels && levels.error).toMatch(/1 to 1000/);
  });
});
