/**
 * A set of concrete topic names that answers "which topics match this filter?" by walking
 * the filter's levels (the retained-message index: subscribe-time lookups must not scan all).
 */

interface Level {
  children: Map<string, Level> | undefined;
  /** Set when a topic ends at this level. */
  topic: string | undefined;
}

export class TopicSet {
  private readonly root: Level = { children: undefined, topic: undefined };
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(topic: string): void {
    let n = this.root;
    for (const level of topic.split('/')) {
      n.children ??= new Map();
      let next = n.children.get(level);
      if (!next) {
        next = { children: undefined, topic: undefined };
        n.children.set(level, next);
      }
      n = next;
    }
    if (n.topic === undefined) this.count++;
    n.topic = topic;
  }

  delete(topic: string): void {
    const levels = topic.split('/');
    const path: Level[] = [this.root];
    let n: Level | undefined = this.root;
    for (const level of levels) {
      n = n.children?.get(level);
      if (!n) return;
      path.push(n);
    }
    if (n.topic === undefined) return;
    n.topic = undefined;
    this.count--;
    for (let i = levels.length; i > 0; i--) {
      const child = path[i]!;
      if (child.topic !== undefined || child.children?.size) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
  }

  /** Every topic matching `filter`; wildcards at the first level skip `$` topics [MQTT-4.7.2-1]. */
  match(filter: string, out: string[] = []): string[] {
    this.walk(this.root, filter.split('/'), 0, out);
    return out;
  }

  private walk(n: Level, f: string[], i: number, out: string[]): void {
    if (i === f.length) {
      if (n.topic !== undefined) out.push(n.topic);
      return;
    }
    const level = f[i]!;
    if (!n.children) return;
    if (level === '#') {
      if (n.topic !== undefined && i > 0) out.push(n.topic); // "a/#" matches "a" too
      for (const [name, child] of n.children) if (i > 0 || !name.startsWith('$')) this.collect(child, out);
      return;
    }
    if (level === '+') {
      for (const [name, child] of n.children) if (i > 0 || !name.startsWith('$')) this.walk(child, f, i + 1, out);
      return;
    }
    const child = n.children.get(level);
    if (child) this.walk(child, f, i + 1, out);
  }

  private collect(n: Level, out: string[]): void {
    if (n.topic !== undefined) out.push(n.topic);
    if (n.children) for (const child of n.children.values()) this.collect(child, out);
  }
}
