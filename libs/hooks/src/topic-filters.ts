import { topicMatches } from '@tributary/mqtt';

/**
 * The topic filters of a message hook, compiled for the hot path: exact names and `prefix/#`
 * filters are string comparisons (a `$delayed/#` hook costs one startsWith per publish); other
 * wildcards use MQTT matching.
 */
export class TopicFilters {
  private readonly exact: string[] = [];
  private readonly prefixes: string[] = [];
  private readonly wild: string[] = [];

  constructor(filters: readonly string[]) {
    for (const f of filters) {
      const plainPrefix = f.endsWith('/#') && !/[+#]/.test(f.slice(0, -2));
      if (!/[+#]/.test(f)) this.exact.push(f);
      else if (plainPrefix) {
        // `a/#` matches `a` too [MQTT-4.7.1-2]; a prefix starting with `$` is a literal level, not a wildcard.
        this.exact.push(f.slice(0, -2));
        this.prefixes.push(f.slice(0, -1));
      } else this.wild.push(f);
    }
  }

  matches(topic: string): boolean {
    // Comparisons, not a Set: === fails on the length or the first differing character, a lookup hashes the whole topic.
    for (let i = 0; i < this.prefixes.length; i++) if (topic.startsWith(this.prefixes[i]!)) return true;
    for (let i = 0; i < this.exact.length; i++) if (topic === this.exact[i]) return true;
    for (let i = 0; i < this.wild.length; i++) if (topicMatches(this.wild[i]!, topic)) return true;
    return false;
  }
}
