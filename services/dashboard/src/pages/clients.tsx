import { useState } from 'preact/hooks';
import { call, get, seg, type Paged } from '../api';
import { onLink, navigate } from '../router';
import { useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, fmt, Header, Pager, type Column } from '../ui/table';
import { SUB_COLUMNS, type Subscription } from './subscriptions';

/** The fields of EMQX's client object the dashboard shows. */
export interface Client {
  clientid: string;
  username: string | null;
  ip_address?: string;
  port?: number;
  proto_ver?: number;
  connected?: boolean;
  keepalive?: number;
  clean_start?: boolean;
  connected_at?: string;
  created_at?: string;
  subscriptions_cnt?: number;
  mqueue_len?: number;
  mqueue_max?: number;
  mqueue_dropped?: number;
  inflight_cnt?: number;
  listener?: string;
  [k: string]: unknown;
}

const LIMIT = 20;

const COLUMNS: Column<Client>[] = [
  {
    key: 'clientid',
    title: 'Client ID',
    value: (c) => c.clientid,
    render: (c) => (
      <a href={`/clients/${seg(c.clientid)}`} onClick={onLink} data-testid="client-link">
        {c.clientid}
      </a>
    ),
  },
  { key: 'username', title: 'Username', value: (c) => c.username },
  { key: 'ip', title: 'IP address', value: (c) => (c.ip_address ? `${c.ip_address}:${c.port ?? ''}` : undefined) },
  { key: 'state', title: 'Connected', value: (c) => c.connected },
  { key: 'proto', title: 'MQTT', value: (c) => c.proto_ver },
  { key: 'subs', title: 'Subscriptions', value: (c) => c.subscriptions_cnt },
  { key: 'mqueue', title: 'Queue', value: (c) => c.mqueue_len },
  { key: 'connected_at', title: 'Connected at', value: (c) => c.connected_at },
];

/** The clients list: search by client id or username (substring), sortable columns, paging. */
export function ClientsPage() {
  const [page, setPage] = useState(1);
  const [q, setQ] = useState('');
  const [field, setField] = useState<'like_clientid' | 'like_username'>('like_clientid');
  const list = useLoad(() => get<Paged<Client>>('/clients', { page, limit: LIMIT, [field]: q || undefined }), [page, q, field], 5000);
  return (
    <div>
      <Header title="Clients">
        <select value={field} onChange={(e) => setField((e.target as HTMLSelectElement).value as typeof field)}>
          <option value="like_clientid">client id</option>
          <option value="like_username">username</option>
        </select>
        <input
          placeholder="search"
          data-testid="client-search"
          value={q}
          onInput={(e) => {
            setQ((e.target as HTMLInputElement).value);
            setPage(1);
          }}
        />
        <button onClick={list.reload}>Refresh</button>
      </Header>
      <ErrorLine error={list.error} />
      <DataTable testId="clients" rows={list.data?.data ?? []} columns={COLUMNS} rowKey={(c) => c.clientid} empty={list.loading ? 'loading…' : 'no clients'} />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}

const DETAIL_FIELDS: [string, string][] = [
  ['clientid', 'Client ID'],
  ['username', 'Username'],
  ['connected', 'Connected'],
  ['ip_address', 'IP address'],
  ['port', 'Port'],
  ['listener', 'Listener'],
  ['proto_name', 'Protocol'],
  ['proto_ver', 'Version'],
  ['keepalive', 'Keep-alive (s)'],
  ['clean_start', 'Clean start'],
  ['expiry_interval', 'Session expiry (s)'],
  ['connected_at', 'Connected at'],
  ['created_at', 'Session created at'],
  ['subscriptions_cnt', 'Subscriptions'],
  ['inflight_cnt', 'In flight'],
  ['mqueue_len', 'Queue depth'],
  ['mqueue_max', 'Queue max'],
  ['mqueue_dropped', 'Queue dropped'],
  ['recv_msg', 'Messages received'],
  ['send_msg', 'Messages sent'],
];

/** One client: its fields, queue depth, subscriptions, and a kick button (DELETE /clients/:id). */
export function ClientDetailPage(p: { clientid: string }) {
  const c = useLoad(() => get<Client>(`/clients/${seg(p.clientid)}`), [p.clientid], 5000);
  const subs = useLoad(() => get<Subscription[]>(`/clients/${seg(p.clientid)}/subscriptions`), [p.clientid], 5000);
  const [error, setError] = useState<string | undefined>(undefined);
  const kick = async (): Promise<void> => {
    if (!confirm(`Kick ${p.clientid}?`)) return;
    try {
      await call('DELETE', `/clients/${seg(p.clientid)}`);
      navigate('/clients');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div>
      <Header title={`Client ${p.clientid}`}>
        <a href="/clients" onClick={onLink}>
          ‹ all clients
        </a>
        <button class="danger" data-testid="kick" onClick={kick} disabled={!c.data}>
          Kick
        </button>
      </Header>
      <ErrorLine error={error ?? c.error} />
      {c.data ? (
        <dl class="fields" data-testid="client-detail">
          {DETAIL_FIELDS.map(([k, t]) => (
            <div key={k}>
              <dt>{t}</dt>
              <dd data-field={k}>{fmt(c.data![k])}</dd>
            </div>
          ))}
        </dl>
      ) : null}
      <h2>Subscriptions</h2>
      <ErrorLine error={subs.error} />
      <DataTable testId="client-subscriptions" rows={subs.data ?? []} columns={SUB_COLUMNS} rowKey={(s) => s.topic} empty="no subscriptions" />
    </div>
  );
}
