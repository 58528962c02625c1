import { createContext } from "react";

export const INTERVALS = [5_000, 15_000, 60_000] as const;
export const DEFAULT_INTERVAL = 15_000;

export interface Live {
  /** Whether pages poll for new data (the header's Live switch). */
  live: boolean;
  /** How often, in milliseconds. */
  interval: number;
  setLive: (live: boolean) => void;
  setInterval: (ms: number) => void;
}

export const LiveContext = createContext<Live>({
  live: true,
  interval: DEFAULT_INTERVAL,
  setLive: () => undefined,
  setInterval: () => undefined,
});

const LIVE_KEY = "spendgate.live";
const INTERVAL_KEY = "spendgate.refresh";

function read(key: string): string | null {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
}

export function storedLive(): boolean {
  return read(LIVE_KEY) !== "off";
}

export function storedInterval(): number {
  const ms = Number(read(INTERVAL_KEY));
  return (INTERVALS as readonly number[]).includes(ms) ? ms : DEFAULT_INTERVAL;
}

export function storeLive(live: boolean, interval: number): void {
  write(LIVE_KEY, live ? "on" : "off");
  write(INTERVAL_KEY, String(interval));
}
