import { useState } from 'preact/hooks';
import { get, seg, type Paged } from '../api';
import { onLink } from '../router';
import { useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header, Pager, type Column } from '../ui/table';

/** EMQX's subscription item. */
export interface Subscription {
  topic: string;
  clientid?: string;
  node?: string;
  qos: number;
  nl?: number;
  rap?: number;
  rh?: number;
}

/** The columns of a subscription list (also on the client detail page). */
export const SUB_COLUMNS: Column<Subscription>[] = [
  { key: 'topic', title: 'Topic', value: (s) => s.topic },
  { key: 'qos', title: 'QoS', value: (s) => s.qos },
  { key: 'nl', title: 'No local', value: (s) => s.nl },
  { key: 'rap', title: 'Retain as published', value: (s) => s.rap },
  { key: 'rh', title: 'Retain handling', value: (s) => s.rh },
];

const LIMIT = 50;

/** Every subscription, filtered by client id or by a filter matching the subscribed topics. */
export function SubscriptionsPage() {
  const [page, setPage] = useState(1);
  const [clientid, setClientid] = useState('');
  const [match, setMatch] = useState('');
  const list = useLoad(
    () => get<Paged<Subscription>>('/subscriptions', { page, limit: LIMIT, clientid: clientid || undefined, match_topic: match || undefined }),
    [page, clientid, match],
    5000,
  );
  const columns: Column<Subscription>[] = [
    {
      key: 'clientid',
      title: 'Client ID',
      value: (s) => s.clientid,
      render: (s) => (
        <a href={`/clients/${seg(s.clientid ?? '')}`} onClick={onLink}>
          {s.clientid}
        </a>
      ),
    },
    ...SUB_COLUMNS,
  ];
  return (
    <div>
      <Header title="Subscriptions">
        <input placeholder="client id" value={clientid} onInput={(e) => (setClientid((e.target as HTMLInputElement).value), setPage(1))} />
        <input placeholder="matching topic filter" value={match} onInput={(e) => (setMatch((e.target as HTMLInputElement).value), setPage(1))} />
      </Header>
      <ErrorLine error={list.error} />
      <DataTable rows={list.data?.data ?? []} columns={columns} rowKey={(s) => `${s.clientid}\u0000${s.topic}`} empty={list.loading ? 'loading…' : 'no subscriptions'} />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}
