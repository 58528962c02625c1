import { useEffect, useState, type ReactNode } from "react";
import { useIsFetching, useQueryClient } from "@tanstack/react-query";
import { useContext } from "react";
import type { Me } from "../api/types";
import { formatAge } from "../lib/format";
import { INTERVALS, LiveContext } from "../lib/live";
import { useLocation } from "../lib/router";
import { applyTheme, currentTheme, type Theme } from "../lib/theme";
import { Link } from "./Link";

export const NAV = [
  { to: "/", label: "Overview" },
  { to: "/requests", label: "Requests" },
  { to: "/keys", label: "Keys & teams" },
  { to: "/budgets", label: "Budgets & alerts" },
  { to: "/log", label: "Log a call" },
  { to: "/data", label: "Import & export" },
] as const;

function useLastUpdated(): number {
  const client = useQueryClient();
  const [at, setAt] = useState(0);
  useEffect(() => {
    return client.getQueryCache().subscribe((event) => {
      if (event.type === "updated" && event.action.type === "success") setAt(Date.now());
    });
  }, [client]);
  return at;
}

function LiveStatus() {
  const { live, setLive, interval, setInterval } = useContext(LiveContext);
  const fetching = useIsFetching();
  const updated = useLastUpdated();
  const [, tick] = useState(0);
  useEffect(() => {
    const timer = window.setInterval(() => tick((n) => n + 1), 5_000);
    return () => window.clearInterval(timer);
  }, []);
  return (
    <div className="live">
      <label className="switch">
        <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} />
        <span>Live</span>
      </label>
      <label className="sr-only" htmlFor="refresh-interval">
        Refresh every
      </label>
      <select id="refresh-interval" className="live-interval" value={interval} disabled={!live} onChange={(e) => setInterval(Number(e.target.value))}>
        {INTERVALS.map((ms) => (
          <option key={ms} value={ms}>
            every {ms < 60_000 ? `${ms / 1000} s` : `${ms / 60_000} min`}
          </option>
        ))}
      </select>
      <span className="live-age" aria-live="off" data-testid="updated">
        {fetching > 0 ? "updating…" : updated ? `updated ${formatAge(Date.now() - updated)}` : ""}
      </span>
    </div>
  );
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(currentTheme);
  const next: Theme = theme === "dark" ? "light" : "dark";
  return (
    <button
      type="button"
      className="btn btn-quiet theme-toggle"
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme`}
      onClick={() => {
        applyTheme(next);
        setTheme(next);
      }}
    >
      <span aria-hidden="true">{theme === "dark" ? "☀" : "☾"}</span>
    </button>
  );
}

export function Layout({ me, onLogout, children }: { me: Me; onLogout: () => void; children: ReactNode }) {
  const { pathname } = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [pathname]);
  const current = (to: string) => (to === "/" ? pathname === "/" : pathname === to || pathname.startsWith(`${to}/`));
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand" aria-label="spendgate overview">
          <img src="/favicon.svg" alt="" width={24} height={24} />
          <span>spendgate</span>
        </Link>
        <button
          type="button"
          className="btn btn-quiet menu-button"
          aria-expanded={menuOpen}
          aria-controls="nav"
          onClick={() => setMenuOpen(!menuOpen)}
        >
          Menu
        </button>
        <div className="topbar-tools">
          <LiveStatus />
          <ThemeToggle />
          {me.mode === "team" && me.user && (
            <div className="user">
              <span className="user-name" title={`role: ${me.user.role}`} data-testid="user">
                {me.user.username}
              </span>
              <button type="button" className="btn btn-quiet" onClick={onLogout}>
                Log out
              </button>
            </div>
          )}
        </div>
      </header>
      <nav id="nav" className={`nav ${menuOpen ? "nav-open" : ""}`} aria-label="Pages">
        <ul>
          {NAV.map((item) => (
            <li key={item.to}>
              <Link to={item.to} aria-current={current(item.to) ? "page" : undefined}>
                {item.label}
              </Link>
            </li>
          ))}
          {me.mode === "team" && me.user && (
            <li className="nav-user">
              <span>
                Signed in as <strong>{me.user.username}</strong>
              </span>
              <button type="button" className="btn btn-small" onClick={onLogout}>
                Log out
              </button>
            </li>
          )}
        </ul>
      </nav>
      <main id="main" className="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
