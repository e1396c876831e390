import { get } from '../api';
import { useLoad } from '../ui/hooks';
import { DataTable, ErrorLine, Header } from '../ui/table';

/** EMQX's listener item (the fields shown). */
export interface Listener {
  id: string;
  type: string;
  name?: string;
  enable?: boolean;
  bind: string;
  status?: { running?: boolean; current_connections?: number; max_connections?: number | string };
  websocket?: { mqtt_path?: string };
  path?: string;
}

/** GET /listeners (a plain list, or EMQX's by-type list of {type, listeners}). */
export async function listeners(): Promise<Listener[]> {
  const out = await get<unknown>('/listeners');
  if (!Array.isArray(out)) return [];
  return out.flatMap((x: { listeners?: Listener[] } & Listener) => (Array.isArray(x.listeners) ? x.listeners : [x]));
}

/** The listeners and their connection counts. */
export function ListenersPage() {
  const list = useLoad(listeners, [], 5000);
  return (
    <div>
      <Header title="Listeners" />
      <ErrorLine error={list.error} />
      <DataTable
        rows={list.data ?? []}
        columns={[
          { key: 'id', title: 'ID', value: (l) => l.id },
          { key: 'type', title: 'Type', value: (l) => l.type },
          { key: 'bind', title: 'Bind', value: (l) => l.bind },
          { key: 'enable', title: 'Enabled', value: (l) => l.enable },
          { key: 'running', title: 'Running', value: (l) => l.status?.running },
          { key: 'conns', title: 'Connections', value: (l) => l.status?.current_connections },
          { key: 'max', title: 'Max connections', value: (l) => l.status?.max_connections },
        ]}
        rowKey={(l) => l.id}
        empty={list.loading ? 'loading…' : 'no listeners'}
      />
    </div>
  );
}
