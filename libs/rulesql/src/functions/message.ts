import { topicMatches } from '@tributary/mqtt';
import { isMap, type Value, type ValueMap } from '../value';
import { fail, getPath, int, list, spec, text, tryJson, type FunctionTable } from './args';
import type { FunctionContext } from './types';

/** A column of the event, or undefined when the event has none. */
function column(name: string): (args: Value[], ctx: FunctionContext) => Value {
  return (_args, ctx) => ctx.event[name];
}

// payload/1 JSON-decodes the payload; a rule calling it several times decodes once per event.
const decodedPayloads = new WeakMap<ValueMap, { raw: Value; value: Value }>();

/** The event's payload as decoded JSON (a map already decoded, e.g. by an alias, as it is). */
export function decodedPayload(event: ValueMap): Value {
  const raw = event.payload;
  if (isMap(raw) || Array.isArray(raw)) return raw;
  if (typeof raw !== 'string' && !Buffer.isBuffer(raw)) return undefined;
  const hit = decodedPayloads.get(event);
  if (hit !== undefined && hit.raw === raw) return hit.value;
  const value = tryJson(typeof raw === 'string' ? raw : raw.toString('utf8'));
  decodedPayloads.set(event, { raw, value });
  return value;
}

/** The topic of a topic-filter list element: a map with `topic`, or the filter text itself. */
function filterTopic(el: Value): string | undefined {
  if (typeof el === 'string') return el;
  if (isMap(el) && typeof el.topic === 'string') return el.topic;
  return undefined;
}

/** The first element of a topic-filter list whose topic passes `test`. */
function findFilter(name: string, filters: Value, test: (filterTopic: string) => boolean): Value {
  for (const el of list(name, filters)) {
    const t = filterTopic(el);
    if (t !== undefined && test(t)) return el;
  }
  return undefined;
}

/** Whether a found element has the QoS asked for (contains_topic/3, contains_topic_match/3). */
function hasQos(el: Value, qos: Value): boolean {
  return isMap(el) && el.qos === qos;
}

/** Message-context functions: read the event being evaluated (msgid(), topic(2), payload('a.b')...). */
export const MESSAGE_FUNCTIONS: FunctionTable = {
  msgid: spec([0], column('id')),
  qos: spec([0], column('qos')),
  flags: spec([0], (_a, ctx) => ctx.event.flags ?? {}),
  flag: spec([1], (args, ctx) => {
    const flags = ctx.event.flags;
    return isMap(flags) ? flags[text('flag', args[0])] : undefined;
  }),
  topic: spec([0, 1], (args, ctx) => {
    const topic = ctx.event.topic;
    if (args.length === 0) return topic;
    const n = int('topic', args[0]);
    if (typeof topic !== 'string') return undefined;
    const levels = topic.split('/');
    if (n < 1 || n > levels.length) fail('topic', `level ${n} out of range for ${topic}`);
    return levels[n - 1];
  }),
  clientid: spec([0], column('clientid')),
  clientip: spec([0], column('peerhost')),
  peerhost: spec([0], column('peerhost')),
  username: spec([0], column('username')),
  payload: spec([0, 1], (args, ctx) => {
    if (args.length === 0) return ctx.event.payload;
    return getPath(decodedPayload(ctx.event), text('payload', args[0]));
  }),
  contains_topic: spec([2, 3], (args) => {
    const topic = text('contains_topic', args[1]);
    const found = findFilter('contains_topic', args[0], (t) => t === topic);
    return args.length === 2 ? found !== undefined : hasQos(found, args[2]);
  }),
  contains_topic_match: spec([2, 3], (args) => {
    const topic = text('contains_topic_match', args[1]);
    const found = findFilter('contains_topic_match', args[0], (filter) => topicMatches(filter, topic));
    return args.length === 2 ? found !== undefined : hasQos(found, args[2]);
  }),
  null: spec([0], () => undefined),
  coalesce: spec([1, 2], (args) => {
    if (args.length === 2) return isNullish(args[0]) ? args[1] : args[0];
    for (const v of list('coalesce', args[0])) if (!isNullish(v)) return v;
    return undefined;
  }),
  coalesce_ne: spec([1, 2], (args) => {
    if (args.length === 2) return isBlank(args[0]) ? args[1] : args[0];
    for (const v of list('coalesce_ne', args[0])) if (!isBlank(v)) return v;
    return undefined;
  }),
};

/** undefined or JSON null (what coalesce skips). */
function isNullish(v: Value): boolean {
  return v === undefined || v === null;
}

/** undefined, JSON null or empty text (what coalesce_ne skips). */
function isBlank(v: Value): boolean {
  return v === undefined || v === null || v === '' || (Buffer.isBuffer(v) && v.length === 0);
}
