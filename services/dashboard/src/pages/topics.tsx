import { useState } from 'preact/hooks';
import { ApiFailure, call, get, seg, type Paged } from '../api';
import { useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header, Pager } from '../ui/table';

const LIMIT = 50;

/** The route table (GET /topics): each topic filter with a subscriber, and the node routing it. */
export function TopicsPage() {
  const [page, setPage] = useState(1);
  const [topic, setTopic] = useState('');
  const list = useLoad(() => get<Paged<{ topic: string; node?: string }>>('/topics', { page, limit: LIMIT, topic: topic || undefined }), [page, topic], 5000);
  return (
    <div>
      <Header title="Topics">
        <input placeholder="topic" value={topic} onInput={(e) => (setTopic((e.target as HTMLInputElement).value), setPage(1))} />
      </Header>
      <ErrorLine error={list.error} />
      <DataTable
        rows={list.data?.data ?? []}
        columns={[
          { key: 'topic', title: 'Topic', value: (t) => t.topic },
          { key: 'node', title: 'Node', value: (t) => t.node },
        ]}
        rowKey={(t) => `${t.topic}\u0000${t.node}`}
        empty={list.loading ? 'loading…' : 'no topics'}
      />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}

/** EMQX's retained message item (payload base64). */
interface Retained {
  topic: string;
  msgid?: string;
  qos: number;
  payload?: string;
  publish_at?: string;
  from_clientid?: string;
}

/** /retainer/messages, or EMQX's /mqtt/retainer/messages when the short path is unknown. */
async function retained(page: number, topic: string): Promise<Paged<Retained> & { base: string }> {
  for (const base of ['/retainer', '/mqtt/retainer']) {
    try {
      return { ...(await get<Paged<Retained>>(`${base}/messages`, { page, limit: LIMIT, topic: topic || undefined })), base };
    } catch (e) {
      if (!(e instanceof ApiFailure && e.status === 404 && e.code === 'NOT_FOUND') || base !== '/retainer') throw e;
    }
  }
  throw new Error('unreachable');
}

/** Shows a base64 payload as text when it is printable, else its size. */
function payloadText(b64: string | undefined): string {
  if (!b64) return '';
  try {
    const bin = atob(b64);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    return text.length > 120 ? `${text.slice(0, 120)}…` : text;
  } catch {
    return `(${Math.floor((b64.length * 3) / 4)} bytes)`;
  }
}

/** Retained messages, with delete. */
export function RetainedPage() {
  const [page, setPage] = useState(1);
  const [topic, setTopic] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const list = useLoad(() => retained(page, topic), [page, topic], 10000);
  const del = async (t: string): Promise<void> => {
    try {
      await call('DELETE', `${list.data?.base ?? '/retainer'}/message/${seg(t)}`);
      list.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div>
      <Header title="Retained messages">
        <input placeholder="topic" value={topic} onInput={(e) => (setTopic((e.target as HTMLInputElement).value), setPage(1))} />
      </Header>
      <ErrorLine error={error ?? list.error} />
      <DataTable
        rows={list.data?.data ?? []}
        columns={[
          { key: 'topic', title: 'Topic', value: (r) => r.topic },
          { key: 'qos', title: 'QoS', value: (r) => r.qos },
          { key: 'payload', title: 'Payload', value: (r) => payloadText(r.payload) },
          { key: 'from', title: 'From', value: (r) => r.from_clientid },
          { key: 'at', title: 'Published at', value: (r) => r.publish_at },
          { key: 'x', title: '', value: () => '', render: (r) => <button onClick={() => void del(r.topic)}>Delete</button> },
        ]}
        rowKey={(r) => r.topic}
        empty={list.loading ? 'loading…' : 'no retained messages'}
      />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}
