import { QoS, TopicTrie } from '@tributary/mqtt';

/** Options of one subscription (MQTT 5.0 §3.8.3.1; 3.x clients use the defaults). */
export interface SubscriptionOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  /** MQTT 5.0 Subscription Identifier. */
  subscriptionId?: number;
}

/** Everything one subscriber has that matches a topic (several when its filters overlap). */
export interface Route {
  clientId: string;
  subscriptions: SubscriptionOptions[];
}

const CACHE_LIMIT = 10_000;

/**
 * The topic → subscriber table. Matching walks a trie; the routes of recently published
 * topics are cached until the next subscription change, so steady traffic on the same topics
 * costs one map lookup per message.
 */
export class Router {
  private readonly trie = new TopicTrie<SubscriptionOptions>();
  private readonly filterRefs = new Map<string, number>();
  private readonly cache = new Map<string, readonly Route[]>();

  /** Number of (client, filter) subscriptions. */
  get subscriptionCount(): number {
    return this.trie.size;
  }

  /** Number of distinct filters. */
  get filterCount(): number {
    return this.filterRefs.size;
  }

  subscribe(clientId: string, filter: string, options: SubscriptionOptions): void {
    if (this.trie.set(filter, clientId, options)) this.filterRefs.set(filter, (this.filterRefs.get(filter) ?? 0) + 1);
    this.cache.clear();
  }

  /** Returns true when the subscription existed. */
  unsubscribe(clientId: string, filter: string): boolean {
    if (!this.trie.delete(filter, clientId)) return false;
    const refs = (this.filterRefs.get(filter) ?? 1) - 1;
    if (refs === 0) this.filterRefs.delete(filter);
    else this.filterRefs.set(filter, refs);
    this.cache.clear();
    return true;
  }

  /** The subscribers of `topic`, one Route per client with all its matching subscriptions. */
  routes(topic: string): readonly Route[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const byClient = new Map<string, Route>();
    this.trie.match(topic, (clientId, options) => {
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
