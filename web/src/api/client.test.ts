import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError, describeError, withQuery } from "./client";

type Seen = { url: string; init: RequestInit };

function fakeFetch(status: number, body: unknown): Seen[] {
  const seen: Seen[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    seen.push({ url, init });
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  });
  return seen;
}

afterEach(() => vi.unstubAllGlobals());

describe("Api", () => {
  it("sends the CSRF token on mutations only, with same-origin credentials", async () => {
    const seen = fakeFetch(200, { ok: true });
    const api = new Api();
    api.csrfToken = "tok";
    await api.get("/api/keys", { active: true, team: null });
    await api.post("/api/keys", { label: "x" });
    expect(seen[0]!.url).toBe("/api/keys?active=true");
    expect((seen[0]!.init.headers as Record<string, string>)["X-CSRF-Token"]).toBeUndefined();
    expect((seen[1]!.init.headers as Record<string, string>)["X-CSRF-Token"]).toBe("tok");
    expect(seen[1]!.init.credentials).toBe("same-origin");
    expect(seen[1]!.init.body).toBe('{"label":"x"}');
  });

  it("turns the management API's error body into an ApiError", async () => {
    fakeFetch(409, { error: { code: "conflict", message: "team Legal exists" } });
    const error = await new Api().post("/api/teams", { name: "Legal" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 409, code: "conflict", message: "team Legal exists" });
  });

  it("asks for sign-in again on 401, except from the auth endpoints", async () => {
    fakeFetch(401, { error: { code: "unauthenticated", message: "sign in" } });
    const api = new Api();
    const onUnauthorized = vi.fn();
    api.onUnauthorized = onUnauthorized;
    await api.get("/api/keys").catch(() => undefined);
    await api.post("/api/auth/login", {}).catch(() => undefined);
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it("explains network failures", async () => {
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("Failed to fetch");
    });
    const error = await new Api().get("/health").catch((e: unknown) => e);
    expect(describeError(error)).toContain("cannot reach the gateway");
  });
});

it("builds query strings without empty values", () => {
  expect(withQuery("/x", { a: "1", b: "", c: null, d: undefined, e: 0 })).toBe("/x?a=1&e=0");
  expect(withQuery("/x")).toBe("/x");
});
