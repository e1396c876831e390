import type { Session } from './session/session';

/**
 * The client ids of a broker's sessions in sorted order, for stable paging of GET /clients. It is
 * brought up to date only when the broker's session set changed (Broker.sessionsVersion), and
 * then by merging: the removed ids are filtered out and the new ones, sorted, merged in, O(n + k log k)
 * for k changes, never a sort of all n. A page without filters is then a slice.
 */
export class ClientIndex {
  private ids: string[] = [];
  private readonly known = new Set<string>();
  private version = -1;

  constructor(private readonly source: { sessionsVersion: number; allSessions(): IterableIterator<Session>; session(id: string): Session | undefined }) {}

  /** The sorted client ids, current. */
  sorted(): readonly string[] {
    if (this.source.sessionsVersion === this.version) return this.ids;
    this.version = this.source.sessionsVersion;
    const added: string[] = [];
    let live = 0;
    for (const s of this.source.allSessions()) {
      live++;
      if (!this.known.has(s.clientId)) added.push(s.clientId);
    }
    let kept = this.ids;
    if (this.ids.length + added.length !== live) {
      kept = this.ids.filter((id) => this.source.session(id) !== undefined);
      for (const id of this.ids) if (this.source.session(id) === undefined) this.known.delete(id);
    }
    added.sort(compare);
    for (const id of added) this.known.add(id);
    this.ids = added.length === 0 ? kept : merge(kept, added);
    return this.ids;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function merge(a: readonly string[], b: readonly string[]): string[] {
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}
