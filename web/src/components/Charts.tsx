import { useTranslation } from "@/lib/i18n";

export interface DaySeries {
  day: string;
  succeeded: number;
  failed: number;
  other: number;
}

/** Stacked bars per day, hand-drawn SVG: no chart library for two small charts. */
export function TasksPerDayChart({ data }: { data: DaySeries[] }) {
  const { t } = useTranslation();
  const width = 640;
  const height = 200;
  const pad = { l: 32, r: 8, t: 8, b: 28 };
  const max = Math.max(1, ...data.map((d) => d.succeeded + d.failed + d.other));
  const bw = data.length ? (width - pad.l - pad.r) / data.length : 0;
  const y = (v: number) => ((height - pad.t - pad.b) * v) / max;
  const ticks = [0, Math.round(max / 2), max];
  return (
    <figure className="grid grid-cols-1 gap-2">
      <svg viewBox={`0 0 ${width} ${height}`} className="h-auto w-full" role="img" aria-label={t("tasks.chart_per_day")}>
        {ticks.map((v) => (
          <g key={v}>
            <line x1={pad.l} x2={width - pad.r} y1={height - pad.b - y(v)} y2={height - pad.b - y(v)} className="stroke-border" strokeDasharray="3 3" />
            <text x={pad.l - 6} y={height - pad.b - y(v) + 4} textAnchor="end" className="fill-muted-foreground text-[10px]">{v}</text>
          </g>
        ))}
        {data.map((d, i) => {
          // A bar is at most 40 units wide, centred in its day's slot, so one day does not fill the chart.
          const w = Math.max(2, Math.min(40, bw * 0.7));
          const x = pad.l + i * bw + (bw - w) / 2;
          let base = height - pad.b;
          const parts = [
            { v: d.succeeded, c: "fill-success" },
            { v: d.failed, c: "fill-destructive" },
            { v: d.other, c: "fill-muted-foreground/50" },
          ];
          return (
            <g key={d.day}>
              <title>{`${d.day}: ${t("task_status.succeeded")} ${d.succeeded}, ${t("task_status.failed")} ${d.failed}, ${t("tasks.other")} ${d.other}`}</title>
              {parts.map((p, j) => {
                const h = y(p.v);
                base -= h;
                return <rect key={j} x={x} y={base} width={w} height={h} className={p.c} rx={1.5} />;
              })}
              {(data.length <= 10 || i % Math.ceil(data.length / 8) === 0) && (
                <text x={x + w / 2} y={height - 10} textAnchor="middle" className="fill-muted-foreground text-[10px]">{d.day.slice(5)}</text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption className="flex flex-wrap gap-4 text-xs text-muted-foreground">
        <span className="flex items-center gap-1"><span className="h-2.5 w-2.5 rounded-sm bg-success" />{t("task_status.succeeded")}</span>
        <span className="flex items-center gap-1"><span className="h-2.5 w-2.5 rounded-sm bg-destructive" />{t("task_status.failed")}</span>
        <span className="flex items-center gap-1"><span className="h-2.5 w-2.5 rounded-sm bg-muted-foreground/50" />{t("tasks.other")}</span>
      </figcaption>
    </figure>
  );
}

/** Horizontal bars: one per label (e.g. average duration per kind or provider). */
export function BarList({ items, format, label }: { items: { label: string; value: number }[]; format: (v: number) => string; label: string }) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return (
    <ul className="grid grid-cols-1 gap-2" aria-label={label}>
      {items.map((i) => (
        <li key={i.label} className="grid grid-cols-1 gap-1 text-sm">
          <div className="flex justify-between gap-2">
            <span className="truncate">{i.label}</span>
            <span className="tabular-nums text-muted-foreground">{format(i.value)}</span>
          </div>
          <div className="h-2 rounded-full bg-secondary">
            <div className="h-2 rounded-full bg-primary" style={{ width: `${(100 * i.value) / max}%` }} />
          </div>
        </li>
      ))}
    </ul>
  );
}
