import { useState } from 'preact/hooks';
import { call, get, seg, type Paged } from '../api';
import { useAction, useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header, Pager } from '../ui/table';

interface Ban {
  as: string;
  who: string;
  by?: string;
  reason?: string;
  at?: string;
  until?: string;
}

const LIMIT = 50;
const KINDS = ['clientid', 'username', 'peerhost', 'clientid_re', 'username_re', 'peerhost_net'];

/** Bans (GET/POST /banned, DELETE /banned/:as/:who). */
export function BannedPage() {
  const [page, setPage] = useState(1);
  const [form, setForm] = useState({ as: 'clientid', who: '', reason: '' });
  const list = useLoad(() => get<Paged<Ban>>('/banned', { page, limit: LIMIT }), [page]);
  const { error, act } = useAction(list);
  const set = (k: string) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <div>
      <Header title="Banned" />
      <form class="inline" onSubmit={(e) => (e.preventDefault(), void act(() => call('POST', '/banned', form)))}>
        <select value={form.as} onChange={set('as')}>
          {KINDS.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
        <input placeholder="who" value={form.who} onInput={set('who')} />
        <input placeholder="reason" value={form.reason} onInput={set('reason')} />
        <button type="submit">Ban</button>
      </form>
      <ErrorLine error={error ?? list.error} />
      <DataTable
        rows={list.data?.data ?? []}
        columns={[
          { key: 'as', title: 'As', value: (b) => b.as },
          { key: 'who', title: 'Who', value: (b) => b.who },
          { key: 'by', title: 'By', value: (b) => b.by },
          { key: 'reason', title: 'Reason', value: (b) => b.reason },
          { key: 'at', title: 'At', value: (b) => b.at },
          { key: 'until', title: 'Until', value: (b) => b.until },
          { key: 'x', title: '', value: () => '', render: (b) => <button onClick={() => void act(() => call('DELETE', `/banned/${seg(b.as)}/${seg(b.who)}`))}>Lift</button> },
        ]}
        rowKey={(b) => `${b.as}\u0000${b.who}`}
        empty={list.loading ? 'loading…' : 'no bans'}
      />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}
