import { Cell, Pie, PieChart, ResponsiveContainer, Tooltip } from "recharts";
import type { Breakdown, Team } from "../api/types";
import { formatRatio } from "../lib/format";
import { formatUsd } from "../lib/money";
import { donutSlices } from "../lib/shape";
import { MoneyTooltip } from "./ChartTooltip";

/** A donut of spend shares with a legend that is also the readable table. */
export function Donut({ breakdown, teams = [], title }: { breakdown: Breakdown; teams?: Team[]; title: string }) {
  const slices = donutSlices(breakdown, teams);
  return (
    <figure className="chart donut" aria-label={title}>
      <div className="donut-chart" aria-hidden="true">
        <ResponsiveContainer width="100%" height={200}>
          <PieChart>
            <Pie data={slices} dataKey="value" nameKey="name" innerRadius="58%" outerRadius="92%" paddingAngle={1} isAnimationActive={false} stroke="none">
              {slices.map((s) => (
                <Cell key={s.name} fill={s.color} />
              ))}
            </Pie>
            <Tooltip content={<MoneyTooltip />} isAnimationActive={false} />
          </PieChart>
        </ResponsiveContainer>
      </div>
      <table className="legend-table">
        <caption className="sr-only">{title}</caption>
        <thead className="sr-only">
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Spend</th>
            <th scope="col">Share</th>
          </tr>
        </thead>
        <tbody>
          {slices.map((s) => (
            <tr key={s.name}>
              <th scope="row">
                <span className="swatch" style={{ background: s.color }} aria-hidden="true" />
                {s.name}
              </th>
              <td className="num">{formatUsd(s.costUsd)}</td>
              <td className="num muted">{formatRatio(s.share)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
