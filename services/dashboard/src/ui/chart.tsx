/** A small inline SVG line chart of one series (no chart library). */
export function LineChart(p: { title: string; points: readonly { t: number; v: number }[]; color?: string }) {
  const W = 320;
  const H = 110;
  const pad = 4;
  const last = p.points.length ? p.points[p.points.length - 1]!.v : undefined;
  if (p.points.length < 2) {
    return (
      <div class="card chart" data-testid={`chart-${p.title}`}>
        <div class="chart-title">
          {p.title} <b>{last ?? '–'}</b>
        </div>
        <div class="muted no-data">no data yet</div>
      </div>
    );
  }
  const t0 = p.points[0]!.t;
  const t1 = p.points[p.points.length - 1]!.t;
  const max = Math.max(1, ...p.points.map((x) => x.v));
  const x = (t: number): number => pad + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * pad);
  const y = (v: number): number => H - pad - (v / max) * (H - 2 * pad);
  const d = p.points.map((pt, i) => `${i ? 'L' : 'M'}${x(pt.t).toFixed(1)},${y(pt.v).toFixed(1)}`).join(' ');
  const color = p.color ?? '#2f6fdf';
  return (
    <div class="card chart" data-testid={`chart-${p.title}`}>
      <div class="chart-title">
        {p.title} <b>{last}</b> <span class="muted">max {max}</span>
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} width="100%" height={H} role="img" aria-label={p.title}>
        <path d={`${d} L${x(t1).toFixed(1)},${H - pad} L${x(t0).toFixed(1)},${H - pad} Z`} fill={color} opacity="0.12" />
        <path d={d} fill="none" stroke={color} stroke-width="2" />
      </svg>
    </div>
  );
}
