/**
 * A topic-filter trie: filters are inserted level by level; `match(topic)` walks only the
 * branches that can match (exact level, `+`, `#`), so matching never scans all filters.
 */

interface Node<V> {
  children: Map<string, Node<V>> | undefined;
  /** Values stored at the filter that ends here. */
  values: Map<string, V> | undefined;
}

function node<V>(): Node<V> {
  return { children: undefined, values: undefined };
}

export class TopicTrie<V> {
  private readonly root: Node<V> = node();
  private count = 0;

  /** Number of (filter, id) entries. */
  get size(): number {
    return this.count;
  }

  /** Stores `value` under `id` at `filter`; returns true when the (filter, id) pair is new. */
  set(filter: string, id: string, value: V): boolean {
    let n = this.root;
    for (const level of filter.split('/')) {
      n.children ??= new Map();
      let next = n.children.get(level);
      if (!next) {
        next = node();
        n.children.set(level, next);
      }
      n = next;
    }
    n.values ??= new Map();
    const isNew = !n.values.has(id);
    n.values.set(id, value);
    if (isNew) this.count++;
    return isNew;
  }

  get(filter: string, id: string): V | undefined {
    let n: Node<V> | undefined = this.root;
    for (const level of filter.split('/')) {
      n = n.children?.get(level);
      if (!n) return undefined;
    }
    return n.values?.get(id);
  }

  /** Removes (filter, id); prunes empty branches. Returns true when something was removed. */
  delete(filter: string, id: string): boolean {
    const levels = filter.split('/');
    const path: Node<V>[] = [this.root];
    let n: Node<V> | undefined = this.root;
    for (const level of levels) {
      n = n.children?.get(level);
      if (!n) return false;
      path.push(n);
    }
    if (!n.values?.delete(id)) return false;
    this.count--;
    if (n.values.size === 0) n.values = undefined;
    for (let i = levels.length; i > 0; i--) {
      const child = path[i]!;
      if (child.values || child.children?.size) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  /** Calls `visit(id, value, filter)` for every entry whose filter matches `topic`. */
  match(topic: string, visit: (id: string, value: V) => void): void {
    const levels = topic.split('/');
    // [MQTT-4.7.2-1]: wildcards at the first level do not match $-topics.
    this.walk(this.root, levels, 0, topic.charCodeAt(0) === 0x24, visit);
  }

  private walk(n: Node<V>, levels: string[], i: number, dollar: boolean, visit: (id: string, value: V) => void): void {
    const children = n.children;
    if (!children) return;
    if (!dollar) {
      const hash = children.get('#');
      if (hash?.values) for (const [id, v] of hash.values) visit(id, v);
    }
    if (i === levels.length) return;
    const exact = children.get(levels[i]!);
    if (exact) this.visitOrDescend(exact, levels, i + 1, visit);
    if (!dollar) {
      const plus = children.get('+');
      if (plus) this.visitOrDescend(plus, levels, i + 1, visit);
    }
  }

  private visitOrDescend(n: Node<V>, levels: string[], next: number, visit: (id: string, value: V) => void): void {
    if (next === levels.length && n.values) for (const [id, v] of n.values) visit(id, v);
    this.walk(n, levels, next, false, visit);
  }
}
