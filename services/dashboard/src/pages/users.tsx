import { useState } from 'preact/hooks';
import { call, get, seg, type Paged } from '../api';
import { useAction, useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header, Pager } from '../ui/table';

interface User {
  user_id: string;
  is_superuser?: boolean;
}

const LIMIT = 50;

/** The users of an authenticator that keeps its own (`password_based:built_in_database` by default): list, add, delete. */
export function UsersPage() {
  const chain = useLoad(() => get<{ id: string }[]>('/authentication').catch(() => [] as { id: string }[]), []);
  const [id, setId] = useState('password_based:built_in_database');
  const [page, setPage] = useState(1);
  const [form, setForm] = useState({ user_id: '', password: '', is_superuser: false });
  const list = useLoad(() => get<Paged<User>>(`/authentication/${seg(id)}/users`, { page, limit: LIMIT }), [id, page]);
  const { error, act } = useAction(list);
  const ids = (chain.data ?? []).map((a) => a.id).filter((x) => x.endsWith(':built_in_database'));
  return (
    <div>
      <Header title="Authentication users">
        <select value={id} onChange={(e) => (setId((e.target as HTMLSelectElement).value), setPage(1))}>
          {[...new Set([id, ...ids])].map((x) => (
            <option key={x} value={x}>
              {x}
            </option>
          ))}
        </select>
      </Header>
      <form
        class="inline"
        onSubmit={(e) => {
          e.preventDefault();
          void act(() => call('POST', `/authentication/${seg(id)}/users`, form)).then(() => setForm({ user_id: '', password: '', is_superuser: false }));
        }}
      >
        <input placeholder="user id" value={form.user_id} onInput={(e) => setForm({ ...form, user_id: (e.target as HTMLInputElement).value })} />
        <input placeholder="password" type="password" value={form.password} onInput={(e) => setForm({ ...form, password: (e.target as HTMLInputElement).value })} />
        <label>
          <input type="checkbox" checked={form.is_superuser} onChange={(e) => setForm({ ...form, is_superuser: (e.target as HTMLInputElement).checked })} /> superuser
        </label>
        <button type="submit">Add user</button>
      </form>
      <ErrorLine error={error ?? list.error} />
      <DataTable
        rows={list.data?.data ?? []}
        columns={[
          { key: 'user_id', title: 'User ID', value: (u) => u.user_id },
          { key: 'su', title: 'Superuser', value: (u) => u.is_superuser },
          { key: 'x', title: '', value: () => '', render: (u) => <button onClick={() => void act(() => call('DELETE', `/authentication/${seg(id)}/users/${seg(u.user_id)}`))}>Delete</button> },
        ]}
        rowKey={(u) => u.user_id}
        empty={list.loading ? 'loading…' : 'no users'}
      />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}
