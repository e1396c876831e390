import { get } from '../api';
import { LineChart } from '../ui/chart';
import { useLoad } from '../ui/hooks';
import { Header } from '../ui/table';

/** One sample of GET /monitor (EMQX's shape: gauges, and deltas since the previous sample). */
interface Sample {
  time_stamp: number;
  connections?: number;
  live_connections?: number;
  subscriptions?: number;
  topics?: number;
  received?: number;
  sent?: number;
  dropped?: number;
}

const SERIES: { key: keyof Sample; title: string; color: string }[] = [
  { key: 'connections', title: 'connections', color: '#2f6fdf' },
  { key: 'received', title: 'messages in', color: '#1b9e5a' },
  { key: 'sent', title: 'messages out', color: '#8a4fd6' },
  { key: 'dropped', title: 'dropped', color: '#d64f4f' },
  { key: 'subscriptions', title: 'subscriptions', color: '#c58a12' },
];

/** Reads /monitor; a missing or failing endpoint is an empty series ("no data yet"), not an error page. */
async function samples(): Promise<Sample[]> {
  try {
    const out = await get<unknown>('/monitor', { latest: 600 });
    const list = Array.isArray(out) ? out : Array.isArray((out as { data?: unknown }).data) ? (out as { data: unknown[] }).data : [];
    return (list as Sample[]).filter((s) => typeof s.time_stamp === 'number').sort((a, b) => a.time_stamp - b.time_stamp);
  } catch {
    return [];
  }
}

/** GET /stats?aggregate=true: one map (older shapes answer a list per node; the first is used). */
async function stats(): Promise<Record<string, number>> {
  try {
    const out = await get<unknown>('/stats', { aggregate: 'true' });
    return (Array.isArray(out) ? out[0] : out) as Record<string, number>;
  } catch {
    return {};
  }
}

/** GET /monitor_current: rates per second now; empty when the endpoint is not there. */
async function current(): Promise<Record<string, number>> {
  try {
    return await get<Record<string, number>>('/monitor_current');
  } catch {
    return {};
  }
}

const RATES: [string, string][] = [
  ['Messages in /s', 'received_msg_rate'],
  ['Messages out /s', 'sent_msg_rate'],
  ['Dropped /s', 'dropped_msg_rate'],
];

/** One number card. */
function Stat(p: { title: string; value: number | undefined; testId: string }) {
  return (
    <div class="card stat">
      <div class="muted">{p.title}</div>
      <div class="big" data-testid={p.testId}>
        {p.value ?? '–'}
      </div>
    </div>
  );
}

/** The overview: live counts from /stats, rates from /monitor_current and charts from /monitor, refreshed every 5 s. */
export function OverviewPage() {
  const mon = useLoad(samples, [], 5000);
  const st = useLoad(stats, [], 5000);
  const cur = useLoad(current, [], 5000);
  const s = st.data ?? {};
  const r = cur.data ?? {};
  const cards: [string, string][] = [
    ['Connections', 'connections.count'],
    ['Live connections', 'live_connections.count'],
    ['Sessions', 'sessions.count'],
    ['Subscriptions', 'subscriptions.count'],
    ['Topics', 'topics.count'],
    ['Retained', 'retained.count'],
  ];
  const points = mon.data ?? [];
  return (
    <div>
      <Header title="Overview" />
      <div class="cards">
        {cards.map(([t, k]) => (
          <Stat key={k} title={t} value={s[k]} testId={`stat-${k}`} />
        ))}
        {RATES.map(([t, k]) => (
          <Stat key={k} title={t} value={r[k]} testId={`rate-${k}`} />
        ))}
      </div>
      <div class="charts">
        {SERIES.map((c) => (
          <LineChart
            key={c.key}
            title={c.title}
            color={c.color}
            points={points.filter((p) => typeof p[c.key] === 'number').map((p) => ({ t: p.time_stamp, v: p[c.key] as number }))}
          />
        ))}
      </div>
    </div>
  );
}
