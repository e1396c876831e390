import { topicMatches } from '@tributary/mqtt';
import { all, call, CtlError, Target } from './ctl-http';

/**
 * The inspection commands of `tributary ctl`, EMQX 5's `emqx ctl` names and output
 * (clients, subscriptions, topics, retainer, broker, listeners), over the HTTP API's EMQX shapes.
 */

/** One command group: its usage lines (command, description) and what it does with its words. */
export interface CtlGroup {
  usage: ReadonlyArray<readonly [string, string]>;
  run(t: Target, args: string[]): Promise<string>;
}

/** EMQX's usage table: the command and a description, two columns. */
export function usageTable(rows: ReadonlyArray<readonly [string, string]>): string {
  const w = Math.max(...rows.map(([c]) => c.length));
  return rows.map(([c, d]) => `  ${c.padEnd(w)}  # ${d}\n`).join('');
}

/** The client object of GET /clients (the fields the CLI line shows). */
interface ApiClient {
  clientid: string;
  username: string | null;
  ip_address: string;
  port: number;
  clean_start: boolean;
  keepalive: number;
  expiry_interval: number;
  subscriptions_cnt?: number;
  inflight_cnt?: number;
  awaiting_rel_cnt?: number;
  send_msg?: number;
  mqueue_len?: number;
  mqueue_dropped?: number;
  connected: boolean;
  created_at?: string;
  connected_at?: string;
  disconnected_at?: string;
}

const ms = (t: string | undefined): string => String(t === undefined ? 'undefined' : Date.parse(t));

/** EMQX's `Client(...)` line. */
export function clientLine(c: ApiClient): string {
  const fields: [string, unknown][] = [
    ['username', c.username ?? 'undefined'],
    ['peername', `${c.ip_address}:${c.port}`],
    ['clean_start', c.clean_start],
    ['keepalive', c.keepalive],
    ['session_expiry_interval', c.expiry_interval],
    ['subscriptions', c.subscriptions_cnt ?? 0],
    ['inflight', c.inflight_cnt ?? 0],
    ['awaiting_rel', c.awaiting_rel_cnt ?? 0],
    ['delivered_msgs', c.send_msg ?? 0],
    ['enqueued_msgs', c.mqueue_len ?? 0],
    ['dropped_msgs', c.mqueue_dropped ?? 0],
    ['connected', c.connected],
    ['created_at', ms(c.created_at)],
    ['connected_at', ms(c.connected_at)],
  ];
  if (c.disconnected_at) fields.push(['disconnected_at', ms(c.disconnected_at)]);
  return `Client(${c.clientid}, ${fields.map(([k, v]) => `${k}=${String(v)}`).join(', ')})\n`;
}

interface ApiSubscription {
  clientid?: string;
  topic: string;
  qos: number;
  nl?: number;
  rap?: number;
  rh?: number;
}

/** EMQX's `cid -> topic:t qos:0 nl:0 rh:0 rap:0` line. */
export function subscriptionLine(cid: string, s: ApiSubscription): string {
  return `${cid} -> topic:${s.topic} qos:${s.qos} nl:${s.nl ?? 0} rh:${s.rh ?? 0} rap:${s.rap ?? 0}\n`;
}

/** `<name padded to 30> : <value>`, sorted by name; non-numbers (node) left out. */
export function nameValueLines(o: Record<string, unknown>): string {
  return Object.keys(o)
    .filter((k) => typeof o[k] === 'number')
    .sort()
    .map((k) => `${k.padEnd(30)} : ${String(o[k])}\n`)
    .join('');
}

/** EMQX's uptime: "2 days, 3 hours, 4 minutes, 5 seconds", leading zero units left out. */
export function uptimeText(msUp: number): string {
  let s = Math.floor(msUp / 1000);
  const parts: string[] = [];
  for (const [unit, n] of [['days', 86400], ['hours', 3600], ['minutes', 60]] as const) {
    const q = Math.floor(s / n);
    s -= q * n;
    if (q > 0 || parts.length) parts.push(`${q} ${unit}`);
  }
  parts.push(`${s} seconds`);
  return parts.join(', ');
}

/** RFC3339 in local time with the offset, e.g. 2024-01-01T12:34:56+08:00 (with `ms`: 12:34:56.789+08:00). */
export function localRfc3339(d: Date, ms = false): string {
  const off = -d.getTimezoneOffset();
  const p = (n: number): string => String(Math.abs(Math.trunc(n))).padStart(2, '0');
  const local = new Date(d.getTime() + off * 60_000).toISOString().slice(0, ms ? 23 : 19);
  return `${local}${off >= 0 ? '+' : '-'}${p(off / 60)}:${p(off % 60)}`;
}

/** The argument, or a CtlError with the command's usage. */
export const need = (v: string | undefined, usage: string): string => {
  if (v === undefined) throw new CtlError(`usage: tributary ctl ${usage}`);
  return v;
};
const enc = encodeURIComponent;
/** The CtlError of an unknown subcommand. */
export const unknown = (group: string, args: string[]): never => {
  throw new CtlError(`unknown command "${[group, ...args].join(' ')}" (tributary ctl ${group} --help)`);
};

const clients: CtlGroup = {
  usage: [
    ['clients list', 'List all clients'],
    ['clients show <ClientId>', 'Show a client'],
    ['clients kick <ClientId>', 'Kick out a client'],
  ],
  async run(t, [sub, id]) {
    if (sub === 'list') {
      const cs = await all<ApiClient>(t, '/clients');
      return cs.length ? cs.map(clientLine).join('') : 'No clients.\n';
    }
    if (sub === 'show') return clientLine((await call(t, 'GET', `/clients/${enc(need(id, 'clients show <ClientId>'))}`)) as ApiClient);
    if (sub === 'kick') {
      await call(t, 'DELETE', `/clients/${enc(need(id, 'clients kick <ClientId>'))}`);
      return 'ok\n';
    }
    return unknown('clients', [sub ?? '']);
  },
};

const subscriptions: CtlGroup = {
  usage: [
    ['subscriptions list', 'List all subscriptions'],
    ['subscriptions show <ClientId>', 'Show subscriptions of a client'],
    ['subscriptions add <ClientId> <Topic> <QoS>', 'Add a static subscription manually'],
    ['subscriptions del <ClientId> <Topic>', 'Delete a static subscription manually'],
  ],
  async run(t, [sub, cid, topic, qos]) {
    if (sub === 'list') {
      const ss = await all<ApiSubscription & { clientid: string }>(t, '/subscriptions');
      return ss.map((s) => subscriptionLine(s.clientid, s)).join('');
    }
    if (sub === 'show') {
      const c = need(cid, 'subscriptions show <ClientId>');
      const ss = (await call(t, 'GET', `/clients/${enc(c)}/subscriptions`)) as ApiSubscription[];
      return ss.map((s) => subscriptionLine(c, s)).join('');
    }
    if (sub === 'add') {
      const usage = 'subscriptions add <ClientId> <Topic> <QoS>';
      const q = Number(need(qos, usage));
      if (![0, 1, 2].includes(q)) throw new CtlError('QoS must be 0, 1 or 2');
      await call(t, 'POST', `/clients/${enc(need(cid, usage))}/subscribe`, { topic: need(topic, usage), qos: q });
      return 'ok\n';
    }
    if (sub === 'del') {
      const usage = 'subscriptions del <ClientId> <Topic>';
      await call(t, 'POST', `/clients/${enc(need(cid, usage))}/unsubscribe`, { topic: need(topic, usage) });
      return 'ok\n';
    }
    return unknown('subscriptions', [sub ?? '']);
  },
};

const topics: CtlGroup = {
  usage: [
    ['topics list', 'List all topics'],
    ['topics show <Topic>', 'Show a topic'],
  ],
  async run(t, [sub, topic]) {
    const line = (r: { topic: string; node?: string; session?: string }): string => `${r.topic} -> ${r.node ?? r.session ?? ''}\n`;
    if (sub === 'list') return (await all<{ topic: string; node?: string }>(t, '/topics')).map(line).join('');
    if (sub === 'show') return ((await call(t, 'GET', `/topics/${enc(need(topic, 'topics show <Topic>'))}`)) as { topic: string; node?: string }[]).map(line).join('');
    return unknown('topics', [sub ?? '']);
  },
};

const retainer: CtlGroup = {
  usage: [
    ['retainer info', 'Show the count of retained messages'],
    ['retainer topics', 'Show all topics of retained messages'],
    ['retainer clean', 'Clean all retained messages'],
    ['retainer clean <Topic>', 'Clean retained messages by the specified topic filter'],
  ],
  async run(t, [sub, filter]) {
    const list = (): Promise<{ topic: string }[]> => all<{ topic: string }>(t, '/retainer/messages');
    if (sub === 'info') return `Number of retained messages: ${(await list()).length}\n`;
    if (sub === 'topics') return (await list()).map((m) => `${m.topic}\n`).join('');
    if (sub === 'clean') {
      const gone = (await list()).filter((m) => filter === undefined || topicMatches(filter, m.topic));
      for (const m of gone) await call(t, 'DELETE', `/retainer/message/${enc(m.topic)}`);
      return `Cleaned ${gone.length} retained messages\n`;
    }
    return unknown('retainer', [sub ?? '']);
  },
};

const broker: CtlGroup = {
  usage: [
    ['broker', 'Show broker version, uptime and description'],
    ['broker stats', 'Show broker statistics of clients, topics, subscribers'],
    ['broker metrics', 'Show broker metrics'],
  ],
  async run(t, [sub]) {
    if (sub === undefined) {
      const nodes = (await call(t, 'GET', '/nodes')) as { version: string; uptime: number }[];
      const n = nodes[0];
      if (!n) throw new CtlError('GET /nodes returned no node');
      const rows: [string, string][] = [
        ['sysdescr', 'Tributary'],
        ['version', n.version],
        ['datetime', localRfc3339(new Date())],
        ['uptime', uptimeText(n.uptime)],
      ];
      return rows.map(([k, v]) => `${k.padEnd(10)}: ${v}\n`).join('');
    }
    if (sub === 'stats' || sub === 'metrics') return nameValueLines((await call(t, 'GET', `/${sub}?aggregate=true`)) as Record<string, unknown>);
    return unknown('broker', [sub]);
  },
};

interface ApiListener {
  id: string;
  bind: string;
  acceptors?: number;
  proxy_protocol?: boolean;
  max_connections?: number | string;
  status?: { running?: boolean; current_connections?: number; max_connections?: number | string };
}

const listeners: CtlGroup = {
  usage: [['listeners', 'List listeners']],
  async run(t, [sub]) {
    if (sub !== undefined) return unknown('listeners', [sub]);
    const ls = (await call(t, 'GET', '/listeners')) as ApiListener[];
    return ls
      .map((l) => {
        const rows: [string, unknown][] = [
          ['listen_on', l.bind],
          ['acceptors', l.acceptors ?? 1],
          ['proxy_protocol', l.proxy_protocol ?? false],
          ['running', l.status?.running ?? false],
          ['current_conn', l.status?.current_connections ?? 0],
          ['max_conns', l.status?.max_connections ?? l.max_connections ?? 'infinity'],
        ];
        return `${l.id}\n${rows.map(([k, v]) => `  ${k.padEnd(15)}: ${String(v)}\n`).join('')}`;
      })
      .join('');
  },
};

/** The EMQX inspection groups, by their first word. */
export const OPS_GROUPS: Readonly<Record<string, CtlGroup>> = { clients, subscriptions, topics, retainer, broker, listeners };
