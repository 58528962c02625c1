// Data hooks: one per question the dashboard asks the public API. Answers are
// polled while live refresh is on, and kept on screen while new ones load.

import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { UseQueryResult } from "@tanstack/react-query";
import { useContext } from "react";
import { ApiError, type Query } from "./client";
import { useApi } from "./context";
import type {
  Breakdown,
  Budget,
  Call,
  CallPage,
  Forecast,
  Health,
  Me,
  ProxyKey,
  Row,
  Summary,
  Team,
  Timeseries,
} from "./types";
import { LiveContext } from "../lib/live";

/** The polling interval while live refresh is on, else false. */
function usePoll(): number | false {
  const { live, interval } = useContext(LiveContext);
  return live ? interval : false;
}

function useGet<T>(path: string, query: Query = {}, options: { poll?: boolean; enabled?: boolean } = {}): UseQueryResult<T, Error> {
  const api = useApi();
  const interval = usePoll();
  return useQuery<T, Error>({
    queryKey: [path, query],
    queryFn: () => api.get<T>(path, query),
    refetchInterval: options.poll === false ? false : interval,
    placeholderData: keepPreviousData,
    enabled: options.enabled ?? true,
  });
}

export const useSummary = (q: Query) => useGet<Summary>("/api/analytics/summary", q);
export const useTimeseries = (q: Query) => useGet<Timeseries>("/api/analytics/timeseries", q);
export const useBreakdown = (q: Query, options: { enabled?: boolean; poll?: boolean } = {}) =>
  useGet<Breakdown>("/api/analytics/breakdown", q, options);
export const useForecast = (q: Query) => useGet<Forecast>("/api/analytics/forecast", q);
export const useHealth = () => useGet<Health>("/health");
export const useTeams = () => useGet<Team[]>("/api/teams", {}, { poll: false });
export const useKeys = (options: { enabled?: boolean } = {}) =>
  useGet<ProxyKey[]>("/api/keys", {}, { poll: false, ...options });
export const useBudgets = () => useGet<Budget[]>("/api/budgets");
export const useCalls = (q: Query, poll: boolean) => useGet<CallPage>("/api/requests", q, { poll });
export const useCall = (id: string) => useGet<Call>(`/api/requests/${encodeURIComponent(id)}`, {}, { poll: false });

/**
 * An endpoint that may not exist on this gateway version (rate limits, alerts):
 * a 404 or 405 answers `null` instead of an error.
 */
export function useOptional<T = Row[]>(path: string, query: Query = {}): UseQueryResult<T | null, Error> {
  const api = useApi();
  const interval = usePoll();
  return useQuery<T | null, Error>({
    queryKey: [path, query, "optional"],
    queryFn: async () => {
      try {
        return await api.get<T>(path, query);
      } catch (error) {
        if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return null;
        throw error;
      }
    },
    refetchInterval: interval,
    placeholderData: keepPreviousData,
  });
}

/** The signed-in user and mode; a gateway without accounts is in local mode. */
export function useMe(): UseQueryResult<Me, Error> {
  const api = useApi();
  return useQuery<Me, Error>({
    queryKey: ["me"],
    queryFn: async () => {
      try {
        const me = await api.get<Me>("/api/auth/me");
        api.csrfToken = me.csrf_token;
        return me;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
          api.csrfToken = null;
          return { mode: "local", user: null, csrf_token: null };
        }
        throw error;
      }
    },
    staleTime: 60_000,
    retry: 1,
  });
}

type Method = "POST" | "PUT" | "PATCH" | "DELETE";

/** A mutation of the management API; refreshes every cached answer when it succeeds. */
export function useSend<TBody = unknown, TResult = unknown>(method: Method, path: string | ((body: TBody) => string)) {
  const api = useApi();
  const client = useQueryClient();
  return useMutation<TResult, Error, TBody>({
    mutationFn: (body: TBody) => {
      const url = typeof path === "function" ? path(body) : path;
      return api.request<TResult>(method, url, method === "DELETE" ? {} : { body: body ?? {} });
    },
    onSuccess: () => {
      void client.invalidateQueries({ predicate: (q) => q.queryKey[0] !== "me" });
    },
  });
}

/** Key labels by id, for naming key budgets (keys are listed for admins only). */
export function useKeyLabels(admin: boolean): Map<string, string> {
  const keys = useKeys({ enabled: admin });
  return new Map((keys.data ?? []).map((k) => [k.id, k.label]));
}
