import { Bar, BarChart, CartesianGrid, Cell, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { Breakdown } from "../api/types";
import { ChartTable } from "../components/ui";
import { formatUsd, formatUsdCompact } from "../lib/money";
import { formatRatio } from "../lib/format";
import { bars, seriesColors, shorten } from "../lib/shape";
import { MoneyTooltip } from "./ChartTooltip";

/** Horizontal bars: spend per model (or any dimension), costliest on top. */
export function CostByDimension({ breakdown, title }: { breakdown: Breakdown; title: string }) {
  const data = bars(breakdown, 8);
  const colors = seriesColors(data.map((d) => d.name));
  const height = Math.max(120, data.length * 36 + 24);
  return (
    <figure className="chart" aria-label={title}>
      <div className="chart-box" aria-hidden="true">
        <ResponsiveContainer width="100%" height={height}>
          <BarChart data={data} layout="vertical" margin={{ top: 0, right: 16, bottom: 0, left: 0 }}>
            <CartesianGrid horizontal={false} className="chart-grid" />
            <XAxis type="number" tickFormatter={formatUsdCompact} tickLine={false} axisLine={false} />
            <YAxis type="category" dataKey="name" width={140} tickLine={false} axisLine={false} tickFormatter={(name: string) => shorten(name, 17)} />
            <Tooltip content={<MoneyTooltip />} cursor={{ className: "chart-cursor" }} isAnimationActive={false} />
            <Bar dataKey="cost" name="Spend" isAnimationActive={false} radius={[0, 4, 4, 0]}>
              {data.map((d) => (
                <Cell key={d.name} fill={colors[d.name]} />
              ))}
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </div>
      <ChartTable caption={title} columns={["Name", "Spend", "Share", "Calls"]} rows={data.map((d) => [d.name, formatUsd(d.costUsd), formatRatio(d.share), String(d.calls)])} />
    </figure>
  );
}
