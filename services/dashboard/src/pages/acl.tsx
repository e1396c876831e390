import { useState } from 'preact/hooks';
import { call, get, seg, type Paged } from '../api';
import { useAction, useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header, Pager } from '../ui/table';

/** One rule of the built-in database source (EMQX's shape). */
interface Rule {
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
  qos?: number[];
  retain?: boolean | 'all';
}

const PATH = '/authorization/sources/built_in_database/rules/users';
const LIMIT = 50;

/** The built-in authorization rules per username: list, add one rule to a user, delete a user's rules. */
export function AclPage() {
  const [page, setPage] = useState(1);
  const [form, setForm] = useState<{ username: string } & Rule>({ username: '', permission: 'allow', action: 'all', topic: '' });
  const list = useLoad(() => get<Paged<{ username: string; rules: Rule[] }>>(PATH, { page, limit: LIMIT }), [page]);
  const { error, act } = useAction(list);
  const add = async (): Promise<void> => {
    const { username, ...rule } = form;
    const existing = list.data?.data.find((r) => r.username === username)?.rules;
    if (existing) await call('PUT', `${PATH}/${seg(username)}`, { rules: [...existing, rule] });
    else await call('POST', PATH, [{ username, rules: [rule] }]);
  };
  const set = (k: string) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  return (
    <div>
      <Header title="Authorization rules (built-in database, by username)" />
      <form class="inline" onSubmit={(e) => (e.preventDefault(), void act(add))}>
        <input placeholder="username" value={form.username} onInput={set('username')} />
        <select value={form.permission} onChange={set('permission')}>
          <option>allow</option>
          <option>deny</option>
        </select>
        <select value={form.action} onChange={set('action')}>
          <option>all</option>
          <option>publish</option>
          <option>subscribe</option>
        </select>
        <input placeholder="topic filter" value={form.topic} onInput={set('topic')} />
        <button type="submit">Add rule</button>
      </form>
      <ErrorLine error={error ?? list.error} />
      <DataTable
        rows={list.data?.data ?? []}
        columns={[
          { key: 'username', title: 'Username', value: (r) => r.username },
          { key: 'rules', title: 'Rules', value: (r) => r.rules.map((x) => `${x.permission} ${x.action} ${x.topic}`).join('; ') },
          { key: 'x', title: '', value: () => '', render: (r) => <button onClick={() => void act(() => call('DELETE', `${PATH}/${seg(r.username)}`))}>Delete</button> },
        ]}
        rowKey={(r) => r.username}
        empty={list.loading ? 'loading…' : 'no rules'}
      />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}
