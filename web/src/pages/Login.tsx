import { useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { ApiError, describeError } from "../api/client";
import { useApi } from "../api/context";
import type { Me } from "../api/types";
import { Notice } from "../components/ui";

/** Sign in (team mode only; a local single-user gateway never shows this page). */
export function Login() {
  const api = useApi();
  const client = useQueryClient();
  const id = useId();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await api.post<Pick<Me, "user" | "csrf_token">>("/api/auth/login", { username, password });
      api.csrfToken = answer.csrf_token;
      client.setQueryData<Me>(["me"], { mode: "team", user: answer.user, csrf_token: answer.csrf_token });
      await client.invalidateQueries({ queryKey: ["me"] });
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "That username and password do not match. Check both, or ask an admin to reset your password (spendgate users)."
          : describeError(err),
      );
      setBusy(false);
    }
  };

  return (
    <main className="login" id="main">
      <form className="card login-card" onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-title`}>
        <div className="brand brand-large">
          <img src="/favicon.svg" alt="" width={32} height={32} />
          <span>spendgate</span>
        </div>
        <h1 id={`${id}-title`}>Sign in</h1>
        <div className="field">
          <label htmlFor={`${id}-user`}>Username</label>
          <input id={`${id}-user`} name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-password`}>Password</label>
          <input
            id={`${id}-password`}
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {error && <Notice tone="danger">{error}</Notice>}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
