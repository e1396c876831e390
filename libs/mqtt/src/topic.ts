/** Topic names and filters: validation and matching (MQTT 3.1.1 §4.7, 5.0 §4.7). */

export type TopicProblem = 'empty' | 'wildcard-in-name' | 'bad-wildcard' | 'too-many-levels' | 'null-character' | 'too-long';

const PLUS = 0x2b;
const HASH = 0x23;
const SLASH = 0x2f;

function levelCount(s: string): number {
  let n = 1;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === SLASH) n++;
  return n;
}

/** A topic name as used in PUBLISH: no wildcards [MQTT-3.3.2-2], not empty [MQTT-4.7.3-1]. */
export function checkTopicName(topic: string, maxLevels = 65535): TopicProblem | null {
  if (topic.length === 0) return 'empty';
  if (topic.length > 65535) return 'too-long';
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return 'wildcard-in-name';
    if (c === 0) return 'null-character'; // [MQTT-4.7.3-2]
  }
  if (maxLevels < 65535 && levelCount(topic) > maxLevels) return 'too-many-levels';
  return null;
}

/**
 * A topic filter as used in SUBSCRIBE: `#` only last and alone in its level [MQTT-4.7.1-2],
 * `+` alone in its level [MQTT-4.7.1-3].
 */
export function checkTopicFilter(filter: string, maxLevels = 65535): TopicProblem | null {
  if (filter.length === 0) return 'empty';
  if (filter.length > 65535) return 'too-long';
  let levels = 1;
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === SLASH) levels++;
    else if (c === 0) return 'null-character';
    else if (c === PLUS || c === HASH) {
      const before = i === 0 || filter.charCodeAt(i - 1) === SLASH;
      const after = i === filter.length - 1 || filter.charCodeAt(i + 1) === SLASH;
      if (!before || !after) return 'bad-wildcard';
      if (c === HASH && i !== filter.length - 1) return 'bad-wildcard';
    }
  }
  if (levels > maxLevels) return 'too-many-levels';
  return null;
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

/**
 * Does `filter` match `topic`? Wildcards at the first level do not match topics that start
 * with `$` [MQTT-4.7.2-1].
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === 0x24 /* $ */ && (filter.charCodeAt(0) === PLUS || filter.charCodeAt(0) === HASH)) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
