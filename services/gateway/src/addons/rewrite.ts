import type { RewriteRule } from '../config';
import { topicMatches } from '@tributary/mqtt';
import type { HookRegistry } from '@tributary/hooks';

interface Compiled {
  filter: string;
  re: RegExp;
  dest: string;
}

/**
 * Topic rewrite with EMQX's semantics: rules are tried from the last configured to the first;
 * the first whose source_topic filter matches decides — if its regex matches, the topic becomes
 * dest_topic with $1..$9 captures and ${clientid}/${username} filled in; if not, the topic is
 * left unchanged.
 */
export class TopicRewriter {
  private readonly publish: Compiled[];
  private readonly subscribe: Compiled[];

  constructor(rules: readonly RewriteRule[]) {
    const compiled = [...rules].reverse().map((r) => ({ action: r.action, filter: r.source_topic, re: new RegExp(r.re), dest: r.dest_topic }));
    this.publish = compiled.filter((r) => r.action !== 'subscribe');
    this.subscribe = compiled.filter((r) => r.action !== 'publish');
  }

  get enabled(): boolean {
    return this.publish.length > 0 || this.subscribe.length > 0;
  }

  rewritePublish(topic: string, clientId: string, username: string | undefined): string {
    return this.publish.length ? apply(this.publish, topic, clientId, username) : topic;
  }

  rewriteSubscribe(filter: string, clientId: string, username: string | undefined): string {
    return this.subscribe.length ? apply(this.subscribe, filter, clientId, username) : filter;
  }
}

function apply(rules: Compiled[], topic: string, clientId: string, username: string | undefined): string {
  for (const rule of rules) {
    if (!(rule.filter === topic || topicMatches(rule.filter, topic))) continue;
    const m = rule.re.exec(topic);
    if (!m) return topic;
    return rule.dest
      .replace(/\$\{clientid\}/g, clientId)
      .replace(/\$\{username\}/g, username ?? '')
      .replace(/\$(\d)/g, (_, n: string) => m[Number(n)] ?? '');
  }
  return topic;
}

/** Replaces ${clientid} and ${username} (auto-subscribe topics). */
export function fillPlaceholders(template: string, clientId: string, username: string | undefined): string {
  return template.replace(/\$\{clientid\}/g, clientId).replace(/\$\{username\}/g, username ?? '');
}

/**
 * Registers topic rewrite (EMQX's emqx_rewrite) on the hooks: SUBSCRIBE and UNSUBSCRIBE filters
 * at client.subscribe/unsubscribe, published topics (wills included) at message.publish.
 */
export function registerRewrite(hooks: HookRegistry, rules: readonly RewriteRule[]): void {
  const rewriter = new TopicRewriter(rules);
  if (!rewriter.enabled) return;
  const opts = { name: 'rewrite', priority: 'rewrite' } as const;
  hooks.add('client.subscribe', opts, (c, filters) => filters.map((f) => ({ ...f, filter: rewriter.rewriteSubscribe(f.filter, c.clientId, c.username) })));
  hooks.add('client.unsubscribe', opts, (c, filters) => filters.map((f) => rewriter.rewriteSubscribe(f, c.clientId, c.username)));
  hooks.add('message.publish', opts, (m) => {
    const topic = rewriter.rewritePublish(m.topic, m.clientId, m.username);
    return topic === m.topic ? undefined : { ...m, topic };
  });
}
