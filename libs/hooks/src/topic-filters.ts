import { topicMatches } from '@tributary/mqtt';

/**
 * The topic filters of a message hook, compiled for the hot path: exact names and `prefix/#`
 * filters are string comparisons (a `$delayed/#` hook costs one startsWith per publish); other
 * wildcards use MQTT matching.
 */
export class TopicFilters {
  private readonly exact = new Set<string>();
  private readonly prefixes: string[] = [];
  private readonly wild: string[] = [];

  constructor(filters: readonly string[]) {
    for (const f of filters) {
      const plainPrefix = f.endsWith('/#') && !/[+#]/.test(f.slice(0, -2));
      if (!/[+#]/.test(f)) this.exact.add(f);
      else if (plainPrefix) {
        // `a/#` matches `a` too [MQTT-4.7.1-2]; a prefix starting with `$` is a literal level, not a wildcard.
        this.exact.add(f.slice(0, -2));
        this.prefixes.push(f.slice(0, -1));
      } else this.wild.push(f);
    }
  }

  matches(topic: string): boolean {
    if (this.exact.has(topic)) return true;
    for (let i = 0; i < this.prefixes.length; i++) if (topic.startsWith(this.prefixes[i]!)) return true;
    for (let i = 0; i < this.wild.length; i++) if (topicMatches(this.wild[i]!, topic)) return true;
    return false;
  }
}
