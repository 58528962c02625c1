import { formatUsd } from "../lib/money";

interface Item {
  name?: string | number;
  value?: number | string | (number | string)[];
  color?: string;
  dataKey?: string | number | ((obj: unknown) => unknown);
  payload?: Record<string, unknown>;
}

/** The charts' tooltip: series in draw order with exact-looking dollar figures. */
export function MoneyTooltip({ active, payload, label, total }: { active?: boolean; payload?: Item[]; label?: string | number; total?: boolean }) {
  if (!active || !payload || payload.length === 0) return null;
  const items = payload.filter((p) => typeof p.value === "number" && p.value > 0).reverse();
  const sum = payload.reduce((acc, p) => acc + (typeof p.value === "number" ? p.value : 0), 0);
  return (
    <div className="chart-tooltip">
      {label !== undefined && <div className="chart-tooltip-title">{String(label)}</div>}
      <ul>
        {items.map((p) => (
          <li key={String(p.name)}>
            <span className="swatch" style={{ background: p.color }} aria-hidden="true" />
            <span className="chart-tooltip-name">{String(p.name)}</span>
            <span className="num">{formatUsd(BigInt(Math.round(Number(p.value) * 1e9)))}</span>
          </li>
        ))}
      </ul>
      {total && items.length > 1 && (
        <div className="chart-tooltip-total">
          Total <span className="num">{formatUsd(BigInt(Math.round(sum * 1e9)))}</span>
        </div>
      )}
    </div>
  );
}
