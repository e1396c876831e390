import type { Message } from '@tributary/mqtt';
import type { SubscriptionOptions } from './router';

export type SharedStrategy = 'random' | 'round_robin' | 'round_robin_per_group' | 'sticky' | 'hash_clientid' | 'hash_topic';

/** `$share/<group>/<filter>` or `$queue/<filter>` (= `$share/$queue/<filter>`), parsed. */
export interface SharedFilter {
  group: string;
  filter: string;
}

/** Parses a shared-subscription filter; undefined when `topic` is not one; null when malformed. */
export function parseShared(topic: string): SharedFilter | null | undefined {
  if (topic.startsWith('$queue/')) {
    const filter = topic.slice('$queue/'.length);
    return filter ? { group: '$queue', filter } : null;
  }
  if (!topic.startsWith('$share/')) return undefined;
  const slash = topic.indexOf('/', '$share/'.length);
  if (slash < 0) return null;
  const group = topic.slice('$share/'.length, slash);
  const filter = topic.slice(slash + 1);
  // The ShareName must not be empty nor contain "/", "+" or "#" [MQTT-4.8.2-1], [MQTT-4.8.2-2].
  if (!group || group.includes('+') || group.includes('#') || !filter) return null;
  return { group, filter };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** The members of one shared-subscription group on one filter, and its dispatch state. */
export class SharedGroup {
  readonly members = new Map<string, SubscriptionOptions>();
  private ids: string[] = [];
  private next = 0;
  private stickyMember: string | undefined;

  constructor(
    readonly group: string,
    readonly filter: string,
    /** `$share/<group>/<filter>` (a `$queue/<filter>` subscription is `$share/$queue/<filter>`). */
    readonly key: string,
  ) {}

  add(clientId: string, options: SubscriptionOptions): void {
    if (!this.members.has(clientId)) this.ids.push(clientId);
    this.members.set(clientId, options);
  }

  remove(clientId: string): void {
    if (!this.members.delete(clientId)) return;
    this.ids = this.ids.filter((id) => id !== clientId);
    if (this.stickyMember === clientId) this.stickyMember = undefined;
  }

  /**
   * Picks the member that gets `msg`. `usable(id)` says whether a member can take it now
   * (connected); when none can, any member is picked so a persistent session queues it.
   */
  pick(strategy: SharedStrategy, msg: Message, usable: (clientId: string) => boolean, exclude?: string): string | undefined {
    const ids = exclude ? this.ids.filter((id) => id !== exclude) : this.ids;
    if (ids.length === 0) return undefined;
    const live = ids.filter(usable);
    const pool = live.length ? live : ids;
    switch (strategy) {
      case 'random':
        return pool[Math.floor(Math.random() * pool.length)];
      case 'sticky':
        if (!this.stickyMember || !pool.includes(this.stickyMember)) this.stickyMember = pool[Math.floor(Math.random() * pool.length)];
        return this.stickyMember;
      case 'hash_clientid':
        return pool[hash(msg.from) % pool.length];
      case 'hash_topic':
        return pool[hash(msg.topic) % pool.length];
      default:
        // round_robin and round_robin_per_group are the same on one node.
        return pool[this.next++ % pool.length];
    }
  }
}
