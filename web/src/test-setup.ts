import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// jsdom has no layout: charts' ResponsiveContainer needs a ResizeObserver to exist.
class NoResize {
  observe(): void {}
  unobserve(): void {}
  disconnect(): void {}
}
if (!("ResizeObserver" in globalThis)) {
  (globalThis as unknown as { ResizeObserver: typeof NoResize }).ResizeObserver = NoResize;
}

afterEach(() => cleanup());
