import { render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import type { Breakdown } from "../api/types";
import { Donut } from "../charts/Donut";
import { ErrorBoundary, Loaded } from "./states";
import { Progress } from "./ui";

const zero = { calls: 1, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, cache_savings_usd: "0" };

function query<T>(data: T | undefined, error: Error | null = null) {
  return { data, error, isPending: data === undefined && !error, refetch: vi.fn() };
}

describe("Loaded", () => {
  it("says it is loading", () => {
    render(<Loaded query={query<string>(undefined)} what="spend">{(d) => d}</Loaded>);
    expect(screen.getByRole("status").textContent).toContain("Loading spend");
  });

  it("shows the API's message and a retry button on errors", () => {
    const q = query<string>(undefined, new ApiError(503, "not_ready", "the gateway is still starting; retry in a moment"));
    render(<Loaded query={q}>{(d) => d}</Loaded>);
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("The gateway is not ready");
    expect(alert.textContent).toContain("retry in a moment");
    within(alert).getByRole("button", { name: "Try again" }).click();
    expect(q.refetch).toHaveBeenCalled();
  });

  it("explains an unreachable gateway", () => {
    render(<Loaded query={query<string>(undefined, new ApiError(0, "network", "cannot reach the gateway: is `spendgate serve` still running?"))}>{(d) => d}</Loaded>);
    expect(screen.getByRole("alert").textContent).toContain("spendgate serve");
  });

  it("renders the empty state or the data", () => {
    const { rerender } = render(<Loaded query={query<string[]>([])} empty={(d) => (d.length ? null : <p>nothing yet</p>)}>{(d) => d.join(",")}</Loaded>);
    expect(screen.getByText("nothing yet")).toBeTruthy();
    rerender(<Loaded query={query<string[]>(["a", "b"])} empty={(d) => (d.length ? null : <p>nothing yet</p>)}>{(d) => d.join(",")}</Loaded>);
    expect(screen.getByText("a,b")).toBeTruthy();
  });
});

describe("Donut", () => {
  it("lists every slice with its exact spend and share", () => {
    const breakdown: Breakdown = {
      by: "team",
      data: [
        { ...zero, key: "Engineering", cost_usd: "11.130572470", share: "0.6" },
        { ...zero, key: "Legal", cost_usd: "6.2914465", share: "0.4" },
      ],
    };
    render(<Donut breakdown={breakdown} title="Spend by team" teams={[{ id: "t", name: "Legal", color: "#123456", created_at: "" }]} />);
    const table = screen.getByRole("table", { name: "Spend by team" });
    const rows = within(table).getAllByRole("row").slice(1);
    expect(rows.map((r) => r.textContent)).toEqual(["Engineering$11.1363.9%", "Legal$6.2936.1%"]);
  });
});

describe("Progress", () => {
  it("exposes its value to assistive technology", () => {
    render(<Progress value={80} max={100} label="team:Legal" />);
    const bar = screen.getByRole("progressbar", { name: "team:Legal" });
    expect(bar.getAttribute("aria-valuenow")).toBe("80");
    expect(bar.className).toContain("progress-warn");
  });
});

describe("ErrorBoundary", () => {
  it("shows what broke instead of a blank page", () => {
    const Broken = () => {
      throw new Error("not a dollar amount: abc");
    };
    const quiet = vi.spyOn(console, "error").mockImplementation(() => undefined);
    render(
      <ErrorBoundary resetKey="/">
        <Broken />
      </ErrorBoundary>,
    );
    quiet.mockRestore();
    const alert = screen.getByRole("alert");
    expect(alert.textContent).toContain("This page failed to show");
    expect(alert.textContent).toContain("not a dollar amount: abc");
  });
});
