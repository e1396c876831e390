import { useState } from 'preact/hooks';
import { ApiFailure, call, get, seg, type Paged } from '../api';
import { useAction, useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header, Pager } from '../ui/table';

/** A rule as GET /rules shows it (EMQX's fields). */
interface Rule {
  id: string;
  name: string;
  sql: string;
  enable: boolean;
  description: string;
  actions: unknown[];
  from: string[];
}

/** A rule with its counters of GET /rules/:id/metrics. */
type RuleRow = Rule & { metrics: Record<string, number> | undefined };

const LIMIT = 20;
const DEFAULT_SQL = 'SELECT payload.x as x, clientid FROM "t/#" WHERE payload.x > 0';
const DEFAULT_CONTEXT = '{\n  "event_type": "message_publish",\n  "topic": "t/1",\n  "payload": "{\\"x\\": 1}"\n}';

/** JSON text parsed, or an Error naming the field. */
function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${field}: not JSON (${(e as Error).message})`);
  }
}

/** A page of rules with each rule's metrics (one GET /rules/:id/metrics per rule shown). */
async function loadRules(page: number): Promise<Paged<RuleRow>> {
  const list = await get<Paged<Rule>>('/rules', { page, limit: LIMIT });
  const data = await Promise.all(
    list.data.map(async (r) => {
      const m = await get<{ metrics: Record<string, number> }>(`/rules/${seg(r.id)}/metrics`).catch(() => undefined);
      return { ...r, metrics: m?.metrics };
    }),
  );
  return { ...list, data };
}

/** The result of "Test SQL": the selected data, or the API's message (412 SQL Not Match, 400 parse errors). */
type TestOutcome = { ok: true; result: unknown } | { ok: false; message: string };

/**
 * Rules (EMQX's rule engine, docs/rules.md): the list with each rule's SQL, state and
 * matched/passed/failed counters; create a rule from SQL and an actions JSON; test the SQL on a
 * context (POST /rule_test); enable, disable and delete.
 */
export function RulesPage() {
  const [page, setPage] = useState(1);
  const [form, setForm] = useState({ id: '', sql: DEFAULT_SQL, actions: '[{"function": "console"}]', description: '', context: DEFAULT_CONTEXT });
  const [test, setTest] = useState<TestOutcome | undefined>(undefined);
  const list = useLoad(() => loadRules(page), [page], 5000);
  const { error, act } = useAction(list);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement | HTMLTextAreaElement).value });

  const create = async (): Promise<void> => {
    const actions = parseJson(form.actions, 'actions');
    if (!Array.isArray(actions)) throw new Error('actions: expected a JSON array, e.g. ["http:my_sink", {"function": "console"}]');
    await call('POST', '/rules', { ...(form.id ? { id: form.id } : {}), sql: form.sql, actions, description: form.description });
    setForm({ ...form, id: '' });
  };

  const runTest = async (): Promise<void> => {
    setTest(undefined);
    try {
      const context = parseJson(form.context, 'context');
      setTest({ ok: true, result: await call('POST', '/rule_test', { sql: form.sql, context }) });
    } catch (e) {
      setTest({ ok: false, message: e instanceof ApiFailure ? `${e.status} ${e.code}: ${e.message}` : (e as Error).message });
    }
  };

  const metric = (r: RuleRow, k: string): number | undefined => r.metrics?.[k];
  return (
    <div>
      <Header title="Rules" />
      <div class="two">
        <form class="card stack" data-testid="rule-form" onSubmit={(e) => (e.preventDefault(), void act(create))}>
          <label>
            Rule ID (empty: generated)
            <input name="id" value={form.id} onInput={set('id')} placeholder="my_rule" />
          </label>
          <label>
            SQL
            <textarea name="sql" rows={5} value={form.sql} onInput={set('sql')} spellcheck={false} />
          </label>
          <label>
            Actions (JSON: "&lt;type&gt;:&lt;name&gt;" of a sink, or {'{'}"function": "republish" | "console", "args": {'{'}…{'}'}{'}'})
            <textarea name="actions" rows={3} value={form.actions} onInput={set('actions')} spellcheck={false} />
          </label>
          <label>
            Description
            <input name="description" value={form.description} onInput={set('description')} />
          </label>
          <div class="controls">
            <button type="submit">Create</button>
            <button type="button" onClick={() => void runTest()}>
              Test SQL
            </button>
          </div>
        </form>
        <div class="card stack">
          <label>
            Test context (JSON: event_type and the event's fields; missing fields come from the event's example)
            <textarea name="context" rows={7} value={form.context} onInput={set('context')} spellcheck={false} />
          </label>
          {test === undefined ? (
            <p class="muted">Test SQL runs the SQL above on this context; nothing is sent.</p>
          ) : test.ok ? (
            <pre class="output" data-testid="rule-test-result">
              {JSON.stringify(test.result, null, 2)}
            </pre>
          ) : (
            <p class="error" data-testid="rule-test-error">
              {test.message}
            </p>
          )}
        </div>
      </div>
      <ErrorLine error={error ?? list.error} />
      <h2>Rules</h2>
      <DataTable
        testId="rules"
        rows={list.data?.data ?? []}
        columns={[
          { key: 'id', title: 'ID', value: (r) => r.id },
          { key: 'sql', title: 'SQL', value: (r) => r.sql, render: (r) => <code class="sql">{r.sql}</code> },
          { key: 'actions', title: 'Actions', value: (r) => r.actions.map((a) => (typeof a === 'string' ? a : ((a as { function?: string }).function ?? '?'))).join(', ') },
          { key: 'enable', title: 'Enabled', value: (r) => r.enable },
          { key: 'matched', title: 'Matched', value: (r) => metric(r, 'matched') },
          { key: 'passed', title: 'Passed', value: (r) => metric(r, 'passed') },
          { key: 'failed', title: 'Failed', value: (r) => metric(r, 'failed') },
          {
            key: 'x',
            title: '',
            value: () => '',
            render: (r) => (
              <span class="controls">
                <button onClick={() => void act(() => call('PUT', `/rules/${seg(r.id)}`, { enable: !r.enable }))}>{r.enable ? 'Disable' : 'Enable'}</button>
                <button class="danger" onClick={() => void act(() => call('DELETE', `/rules/${seg(r.id)}`))}>
                  Delete
                </button>
              </span>
            ),
          },
        ]}
        rowKey={(r) => r.id}
        empty={list.loading ? 'loading…' : 'no rules'}
      />
      <Pager page={page} limit={LIMIT} meta={list.data?.meta} onPage={setPage} />
    </div>
  );
}
