import { get } from '../api';
import { useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header } from '../ui/table';

/** A sink as GET /actions shows it (EMQX's fields). */
interface Sink {
  id: string;
  type: string;
  name: string;
  connector?: string;
  status: string;
  metrics: Record<string, number>;
}

/** A connector as GET /connectors shows it. */
interface Connector {
  id: string;
  type: string;
  name: string;
  status: string;
}

/** A connector status as a coloured badge (connected, connecting, disconnected). */
function Status(p: { status: string }) {
  return <span class={`badge ${p.status}`}>{p.status}</span>;
}

/**
 * Sinks (actions.<type>.<name>) with their connector's status and their counters: queuing (in
 * the durable buffer), success, failed, dropped; and the connectors. Refreshed every 5 s.
 */
export function SinksPage() {
  const sinks = useLoad(() => get<Sink[]>('/actions'), [], 5000);
  const connectors = useLoad(() => get<Connector[]>('/connectors'), [], 5000);
  const m = (s: Sink, k: string): number | undefined => s.metrics[k];
  return (
    <div>
      <Header title="Sinks" />
      <ErrorLine error={sinks.error ?? connectors.error} />
      <DataTable
        testId="sinks"
        rows={sinks.data ?? []}
        columns={[
          { key: 'id', title: 'ID', value: (s) => s.id },
          { key: 'connector', title: 'Connector', value: (s) => s.connector },
          { key: 'status', title: 'Status', value: (s) => s.status, render: (s) => <Status status={s.status} /> },
          { key: 'queuing', title: 'Queuing', value: (s) => m(s, 'queuing') },
          { key: 'success', title: 'Success', value: (s) => m(s, 'success') },
          { key: 'failed', title: 'Failed', value: (s) => m(s, 'failed') },
          { key: 'dropped', title: 'Dropped', value: (s) => m(s, 'dropped') },
          { key: 'retried', title: 'Retried', value: (s) => m(s, 'retried') },
        ]}
        rowKey={(s) => s.id}
        empty={sinks.loading ? 'loading…' : 'no sinks configured (actions.<type>.<name>, docs/rules-sinks.md)'}
      />
      <h2>Connectors</h2>
      <DataTable
        testId="connectors"
        rows={connectors.data ?? []}
        columns={[
          { key: 'id', title: 'ID', value: (c) => c.id },
          { key: 'type', title: 'Type', value: (c) => c.type },
          { key: 'status', title: 'Status', value: (c) => c.status, render: (c) => <Status status={c.status} /> },
        ]}
        rowKey={(c) => c.id}
        empty={connectors.loading ? 'loading…' : 'no connectors configured'}
      />
    </div>
  );
}
