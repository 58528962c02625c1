import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { useApi } from "./api/context";
import { useMe } from "./api/hooks";
import { Layout } from "./components/Layout";
import { ErrorBoundary, ErrorState, Loading } from "./components/states";
import { AccessContext } from "./lib/access";
import { matchRoute, navigate, useLocation } from "./lib/router";
import { Budgets } from "./pages/Budgets";
import { Data } from "./pages/Data";
import { Keys } from "./pages/Keys";
import { LogCall } from "./pages/LogCall";
import { Login } from "./pages/Login";
import { NotFound } from "./pages/NotFound";
import { Overview } from "./pages/Overview";
import { RequestDetail } from "./pages/RequestDetail";
import { Requests } from "./pages/Requests";

// Keep in step with CLIENT_ROUTES in src/spendgate/api/dashboard.py.
const ROUTES = ["/", "/requests", "/requests/:id", "/keys", "/budgets", "/log", "/data", "/login"] as const;

function Page({ route, params }: { route: string; params: Record<string, string> }) {
  switch (route) {
    case "/":
      return <Overview />;
    case "/requests":
      return <Requests />;
    case "/requests/:id":
      return <RequestDetail id={params.id ?? ""} />;
    case "/keys":
      return <Keys />;
    case "/budgets":
      return <Budgets />;
    case "/log":
      return <LogCall />;
    case "/data":
      return <Data />;
    default:
      return <NotFound />;
  }
}

export function App() {
  const api = useApi();
  const client = useQueryClient();
  const me = useMe();
  const { pathname, search } = useLocation();

  useEffect(() => {
    api.onUnauthorized = () => void client.invalidateQueries({ queryKey: ["me"] });
    return () => {
      api.onUnauthorized = null;
    };
  }, [api, client]);

  const signedOut = me.data?.mode === "team" && !me.data.user;
  // A viewer limited to some teams sees one of them (the API answers 403 for the others).
  const ownTeams = me.data?.user?.teams ?? null;
  useEffect(() => {
    if (!ownTeams?.length || pathname === "/login") return;
    const q = new URLSearchParams(search);
    const team = q.get("team");
    if (team && ownTeams.includes(team)) return;
    q.set("team", ownTeams[0]!);
    navigate(`${pathname}?${q.toString()}`, { replace: true });
  }, [ownTeams, pathname, search]);
  useEffect(() => {
    if (signedOut && pathname !== "/login") {
      const next = pathname + search;
      navigate(`/login${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`, { replace: true });
    } else if (me.data && !signedOut && pathname === "/login") {
      navigate(new URLSearchParams(search).get("next") || "/", { replace: true });
    }
  }, [signedOut, me.data, pathname, search]);

  if (!me.data) {
    if (me.error) {
      return (
        <main className="main main-alone">
          <ErrorState error={me.error} retry={() => void me.refetch()} />
        </main>
      );
    }
    return (
      <main className="main main-alone">
        <Loading what="spendgate" />
      </main>
    );
  }
  if (signedOut) return <Login />;

  const logout = async () => {
    try {
      await api.post("/api/auth/logout");
    } finally {
      api.csrfToken = null;
      client.clear();
      await client.invalidateQueries({ queryKey: ["me"] });
      navigate("/login", { replace: true });
    }
  };

  const match = matchRoute(pathname, ROUTES);
  const access = { admin: me.data.mode === "local" || me.data.user?.role === "admin" };
  return (
    <AccessContext.Provider value={access}>
      <Layout me={me.data} onLogout={() => void logout()}>
        <ErrorBoundary resetKey={pathname}>{match ? <Page route={match.route} params={match.params} /> : <NotFound />}</ErrorBoundary>
      </Layout>
    </AccessContext.Provider>
  );
}
