import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';

/** One column: its header, how to read a row's value (for sorting) and how to show it. */
export interface Column<T> {
  key: string;
  title: string;
  value(row: T): string | number | boolean | null | undefined;
  render?(row: T): ComponentChildren;
}

/** Props of DataTable. */
export interface TableProps<T> {
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey(row: T): string;
  empty?: string;
  testId?: string;
}

/** A table whose headers sort the rows shown (click again to reverse). */
export function DataTable<T>(p: TableProps<T>) {
  const [sort, setSort] = useState<{ key: string; dir: 1 | -1 } | undefined>(undefined);
  const rows = useMemo(() => {
    if (!sort) return p.rows;
    const col = p.columns.find((c) => c.key === sort.key);
    if (!col) return p.rows;
    return [...p.rows].sort((a, b) => {
      const x = col.value(a);
      const y = col.value(b);
      if (x === y) return 0;
      if (x === undefined || x === null) return 1;
      if (y === undefined || y === null) return -1;
      return (x < y ? -1 : 1) * sort.dir;
    });
  }, [p.rows, p.columns, sort]);
  const click = (key: string): void => setSort((s) => (s && s.key === key ? { key, dir: s.dir === 1 ? -1 : 1 } : { key, dir: 1 }));
  return (
    <table class="table" data-testid={p.testId}>
      <thead>
        <tr>
          {p.columns.map((c) => (
            <th key={c.key} onClick={() => click(c.key)} class="sortable" title="sort">
              {c.title}
              {sort?.key === c.key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 ? (
          <tr>
            <td colSpan={p.columns.length} class="muted">
              {p.empty ?? 'nothing here'}
            </td>
          </tr>
        ) : (
          rows.map((r) => (
            <tr key={p.rowKey(r)}>
              {p.columns.map((c) => (
                <td key={c.key}>{c.render ? c.render(r) : fmt(c.value(r))}</td>
              ))}
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}

/** Shows a cell value: booleans as yes/no, nothing as a dash. */
export function fmt(v: unknown): string {
  if (v === undefined || v === null || v === '') return '–';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

/** Previous/next paging for EMQX's {page, hasnext}; nothing until the first page arrived. */
export function Pager(p: { page: number; limit: number; meta: { hasnext: boolean; count?: number } | undefined; onPage(n: number): void }) {
  if (!p.meta) return null;
  const { hasnext, count } = p.meta;
  const pages = count !== undefined ? Math.max(1, Math.ceil(count / p.limit)) : undefined;
  return (
    <div class="pager">
      <button disabled={p.page <= 1} onClick={() => p.onPage(p.page - 1)}>
        ‹ prev
      </button>
      <span>
        page {p.page}
        {pages !== undefined ? ` of ${pages}` : ''}
        {count !== undefined ? ` (${count} in all)` : ''}
      </span>
      <button disabled={!hasnext} onClick={() => p.onPage(p.page + 1)}>
        next ›
      </button>
    </div>
  );
}

/** A page's title row with optional controls on the right. */
export function Header(p: { title: string; children?: ComponentChildren }) {
  return (
    <div class="page-head">
      <h1>{p.title}</h1>
      <div class="controls">{p.children}</div>
    </div>
  );
}

/** An error line, or nothing. */
export function ErrorLine(p: { error: string | undefined }) {
  return p.error ? <p class="error" role="alert">{p.error}</p> : null;
}
