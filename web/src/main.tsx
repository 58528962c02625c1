import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import { Api, ApiError } from "./api/client";
import { ApiContext } from "./api/context";
import { App } from "./App";
import { LiveContext, storedInterval, storedLive, storeLive } from "./lib/live";
import { applyTheme, storedTheme } from "./lib/theme";
import "./styles.css";

applyTheme(storedTheme());

function Root() {
  const api = useMemo(() => new Api(), []);
  const client = useMemo(
    () =>
      new QueryClient({
        defaultOptions: {
          queries: {
            staleTime: 5_000,
            // A 4xx will not get better by asking again; a network blip might.
            retry: (count, error) => !(error instanceof ApiError && error.status >= 400 && error.status < 500) && count < 2,
            refetchOnWindowFocus: true,
          },
        },
      }),
    [],
  );
  const [live, setLiveState] = useState(storedLive);
  const [interval, setIntervalState] = useState(storedInterval);
  const liveValue = useMemo(
    () => ({
      live,
      interval,
      setLive: (on: boolean) => {
        storeLive(on, interval);
        setLiveState(on);
      },
      setInterval: (ms: number) => {
        storeLive(live, ms);
        setIntervalState(ms);
      },
    }),
    [live, interval],
  );
  return (
    <ApiContext.Provider value={api}>
      <QueryClientProvider client={client}>
        <LiveContext.Provider value={liveValue}>
          <App />
        </LiveContext.Provider>
      </QueryClientProvider>
    </ApiContext.Provider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Root />
  </StrictMode>,
);
