import { QoS, SubscriptionOptions, TopicTrie } from '@tributary/mqtt';
import { parseShared, SharedFilter, SharedGroup } from './shared';

export const EXCLUSIVE_PREFIX = '$exclusive/';
/** Trie id suffix of exclusive subscriptions (client ids cannot contain U+0000 [MQTT-1.5.4-2]). */
const EXCLUSIVE_MARK = '\u0000';

export type { SubscriptionOptions };

/** One group per share name and filter: `$queue/f` is `$share/$queue/f` (EMQX). */
function sharedKey(s: SharedFilter): string {
  return `$share/${s.group}/${s.filter}`;
}

/** Everything one subscriber has that matches a topic (several when its filters overlap). */
export interface Route {
  clientId: string;
  subscriptions: SubscriptionOptions[];
}

const CACHE_LIMIT = 10_000;
const NO_GROUPS: readonly SharedGroup[] = [];

/**
 * The topic → subscriber table. Matching walks a trie; the routes of recently published
 * topics are cached until the next subscription change, so steady traffic on the same topics
 * costs one map lookup per message.
 */
export class Router {
  private readonly trie = new TopicTrie<SubscriptionOptions>();
  private readonly sharedTrie = new TopicTrie<SharedGroup>();
  private readonly groups = new Map<string, SharedGroup>();
  private readonly exclusive = new Map<string, string>();
  private readonly filterRefs = new Map<string, number>();
  private readonly cache = new Map<string, readonly Route[]>();
  private readonly sharedCache = new Map<string, readonly SharedGroup[]>();

  /** Number of (client, filter) subscriptions. */
  get subscriptionCount(): number {
    return this.trie.size;
  }

  /** Number of distinct filters. */
  get filterCount(): number {
    return this.filterRefs.size;
  }

  /**
   * Adds a subscription. `filter` may be a shared (`$share/g/f`, `$queue/f`) or exclusive
   * (`$exclusive/f`) subscription. Returns false when an exclusive filter is held by another client.
   */
  subscribe(clientId: string, filter: string, options: SubscriptionOptions): boolean {
    this.cache.clear();
    this.sharedCache.clear();
    const shared = parseShared(filter);
    if (shared) {
      // Keyed by group and filter, so `$queue/f` and `$share/$queue/f` are one group.
      const key = sharedKey(shared);
      let group = this.groups.get(key);
      if (!group) {
        group = new SharedGroup(shared.group, shared.filter, key);
        this.groups.set(key, group);
        this.sharedTrie.set(shared.filter, key, group);
        this.ref(key, 1);
      }
      group.add(clientId, options);
      return true;
    }
    let target = filter;
    let id = clientId;
    if (filter.startsWith(EXCLUSIVE_PREFIX)) {
      target = filter.slice(EXCLUSIVE_PREFIX.length);
      const owner = this.exclusive.get(target);
      if (owner !== undefined && owner !== clientId) return false;
      this.exclusive.set(target, clientId);
      id = clientId + EXCLUSIVE_MARK; // beside a plain subscription of the same client to the same filter
    }
    if (this.trie.set(target, id, options)) this.ref(filter, 1);
    return true;
  }

  /** Returns true when the subscription existed. */
  unsubscribe(clientId: string, filter: string): boolean {
    const shared = parseShared(filter);
    if (shared) {
      const key = sharedKey(shared);
      const group = this.groups.get(key);
      if (!group?.members.has(clientId)) return false;
      group.remove(clientId);
      if (group.members.size === 0) {
        this.groups.delete(key);
        this.sharedTrie.delete(shared.filter, key);
        this.ref(key, -1);
      }
      this.sharedCache.clear();
      return true;
    }
    let target = filter;
    let id = clientId;
    if (filter.startsWith(EXCLUSIVE_PREFIX)) {
      target = filter.slice(EXCLUSIVE_PREFIX.length);
      if (this.exclusive.get(target) !== clientId) return false;
      this.exclusive.delete(target);
      id = clientId + EXCLUSIVE_MARK;
    }
    if (!this.trie.delete(target, id)) return false;
    this.ref(filter, -1);
    this.cache.clear();
    return true;
  }

  private ref(filter: string, delta: 1 | -1): void {
    const refs = (this.filterRefs.get(filter) ?? 0) + delta;
    if (refs <= 0) this.filterRefs.delete(filter);
    else this.filterRefs.set(filter, refs);
  }

  /** The shared-subscription groups whose filter matches `topic`. */
  sharedGroups(topic: string): readonly SharedGroup[] {
    if (this.groups.size === 0) return NO_GROUPS;
    const cached = this.sharedCache.get(topic);
    if (cached) return cached;
    const out: SharedGroup[] = [];
    this.sharedTrie.match(topic, (_key, group) => out.push(group));
    if (this.sharedCache.size >= CACHE_LIMIT) this.sharedCache.clear();
    this.sharedCache.set(topic, out);
    return out;
  }

  /** The subscribers of `topic`, one Route per client with all its matching subscriptions. */
  routes(topic: string): readonly Route[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const byClient = new Map<string, Route>();
    this.trie.match(topic, (id, options) => {
      const clientId = id.endsWith(EXCLUSIVE_MARK) ? id.slice(0, -1) : id;
      const r = byClient.get(clientId);
      if (r) r.subscriptions.push(options);
      else byClient.set(clientId, { clientId, subscriptions: [options] });
    });
    const routes = [...byClient.values()];
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(topic, routes);
    return routes;
  }
}
