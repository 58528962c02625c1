import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import type { Team, Timeseries } from "../api/types";
import { ChartTable } from "../components/ui";
import { formatUsd, formatUsdCompact } from "../lib/money";
import { seriesColors, stackSeries } from "../lib/shape";
import { MoneyTooltip } from "./ChartTooltip";

/** Spend per bucket, stacked by model (or whatever the series were split by). */
export function CostOverTime({ series, tz, teams = [], height = 280 }: { series: Timeseries; tz: string; teams?: Team[]; height?: number }) {
  const { rows, keys } = stackSeries(series, tz);
  const colors = seriesColors(keys, teams);
  return (
    <figure className="chart" aria-label={`Spend per ${series.granularity}, stacked by ${series.stack ?? "total"}`}>
      <div className="chart-box" aria-hidden="true">
        <ResponsiveContainer width="100%" height={height}>
          <BarChart data={rows} margin={{ top: 8, right: 8, bottom: 0, left: 0 }} barCategoryGap="15%">
            <CartesianGrid vertical={false} className="chart-grid" />
            <XAxis dataKey="label" tickLine={false} axisLine={false} minTickGap={16} interval="preserveStartEnd" />
            <YAxis tickFormatter={formatUsdCompact} tickLine={false} axisLine={false} width={56} />
            <Tooltip content={<MoneyTooltip total />} cursor={{ className: "chart-cursor" }} isAnimationActive={false} />
            <Legend iconType="circle" iconSize={8} />
            {keys.map((key) => (
              <Bar key={key} dataKey={key} name={key} stackId="cost" fill={colors[key]} isAnimationActive={false} />
            ))}
          </BarChart>
        </ResponsiveContainer>
      </div>
      <ChartTable
        caption={`Spend per ${series.granularity}`}
        columns={["Period", "Total", ...keys]}
        rows={rows.map((r) => [r.label, formatUsd(BigInt(Math.round(r.total * 1e9))), ...keys.map((k) => formatUsd(BigInt(Math.round(Number(r[k] ?? 0) * 1e9))))])}
      />
    </figure>
  );
}
