// The one way the dashboard talks to the gateway: same-origin fetch of the public
// JSON API, the session cookie sent along, and X-CSRF-Token on every mutation.

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query: Query = {}): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") q.set(name, String(value));
  }
  const text = q.toString();
  return text ? `${path}?${text}` : path;
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText || "error"}`;
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } | string };
    if (body && typeof body.error === "object" && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // Not JSON (a proxy in front of the gateway, say): keep the status line.
  }
  return new ApiError(response.status, code, message);
}

export class Api {
  csrfToken: string | null = null;
  /** Called when the API answers 401, so the app can show the login page. */
  onUnauthorized: (() => void) | null = null;

  constructor(private readonly base: string = "") {}

  async request<T>(method: string, path: string, options: { query?: Query; body?: unknown; raw?: BodyInit; contentType?: string } = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD" && this.csrfToken) headers["X-CSRF-Token"] = this.csrfToken;
    let body: BodyInit | undefined;
    if (options.raw !== undefined) {
      body = options.raw;
      headers["Content-Type"] = options.contentType ?? "application/octet-stream";
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    let response: Response;
    try {
      response = await fetch(this.base + withQuery(path, options.query), {
        method,
        headers,
        body,
        credentials: "same-origin",
      });
    } catch {
      throw new ApiError(0, "network", "cannot reach the gateway: is `spendgate serve` still running?");
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (response.status === 401 && !path.startsWith("/api/auth/")) this.onUnauthorized?.();
      throw error;
    }
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  post<T>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.request<T>("POST", path, { body: body ?? {}, query });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, { body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }

  delete<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("DELETE", path, { query });
  }
}

/** What to tell a person for an error: the API's own message says how to fix it. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return error.message;
    if (error.status === 503) return `${error.message} (the gateway or its database is not ready; it retries by itself)`;
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}
