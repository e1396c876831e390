import { ValidationError, type Logger } from '@tributary/common';
import { checkTopicName, newMessage, type Message, type MessageProperties, type QoS } from '@tributary/mqtt';
import type { RuleActionSpec } from '@tributary/records';
import type { SinkBuffer } from './buffer';
import { compileTemplate, type Template } from './template';
import { isMap, jsonEncode, str, type Value, type ValueMap } from '@tributary/rulesql';

/** Where a republish action's messages go: the broker of this process, or the messages topic (the rules process). */
export interface Republisher {
  /** Resolves once the message is durable (the action then succeeded). */
  publish(msg: Message): Promise<unknown>;
}

/** One compiled action of a rule. */
export type Action =
  | { kind: 'republish'; render(row: ValueMap, ruleId: string): Message; spec: RuleActionSpec }
  | { kind: 'console'; spec: RuleActionSpec }
  | { kind: 'sink'; id: string; spec: RuleActionSpec };

/** What compiling actions needs to know: which sinks exist. */
export interface ActionContext {
  sinks: ReadonlyMap<string, SinkBuffer>;
}

const MQTT_PROPERTY_TEMPLATES = ['Payload-Format-Indicator', 'Message-Expiry-Interval', 'Content-Type', 'Response-Topic', 'Correlation-Data'] as const;

/** Compiles a rule's `actions` list; throws ValidationError naming the bad action. */
export function compileActions(specs: readonly RuleActionSpec[], ctx: ActionContext): Action[] {
  if (!Array.isArray(specs)) throw new ValidationError('INVALID_ARGUMENT', 'actions: expected an array');
  return specs.map((spec, i) => {
    if (typeof spec === 'string') {
      if (!/^[a-z_]+:[A-Za-z0-9_-]+$/.test(spec)) throw new ValidationError('INVALID_ARGUMENT', `actions[${i}]: "${spec}" is not "<type>:<name>"`);
      if (!ctx.sinks.has(spec)) throw new ValidationError('INVALID_ARGUMENT', `actions[${i}]: no action "${spec}" is configured (actions.<type>.<name>)`);
      return { kind: 'sink', id: spec, spec };
    }
    if (!spec || typeof spec !== 'object' || typeof spec.function !== 'string') throw new ValidationError('INVALID_ARGUMENT', `actions[${i}]: expected "<type>:<name>" or {function, args}`);
    if (spec.function === 'console') return { kind: 'console', spec };
    if (spec.function === 'republish') return { kind: 'republish', render: republishRenderer(spec.args ?? {}, i), spec };
    throw new ValidationError('INVALID_ARGUMENT', `actions[${i}]: unknown function "${spec.function}" (republish, console)`);
  });
}

function templateArg(args: Record<string, unknown>, key: string, def: string | undefined, i: number): Template | undefined {
  const v = args[key] ?? def;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ValidationError('INVALID_ARGUMENT', `actions[${i}].args.${key}: expected a template string`);
  return compileTemplate(String(v));
}

function toQos(v: Value): QoS {
  const n = typeof v === 'string' ? Number(v) : v;
  return n === 1 || n === 2 ? n : 0;
}

function toBool(v: Value): boolean {
  return v === true || v === 'true' || v === 1 || v === '1';
}

function toBytes(v: Value): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v === undefined) return Buffer.alloc(0);
  return Buffer.from(typeof v === 'string' ? v : isMap(v) || Array.isArray(v) ? jsonEncode(v) : str(v));
}

/**
 * EMQX's republish: `topic` (required), `qos` ("${qos}"), `retain` ("${retain}"; an undefined value is
 * false, so write "${flags.retain}" to keep a message's flag), `payload` ("${payload}"),
 * `user_properties` ("${user_properties}", e.g. "${pub_props.'User-Property'}": a map, or a
 * list of {key, value} pairs) and `mqtt_properties` templates. A payload template that is exactly one
 * placeholder keeps that value's bytes.
 */
function republishRenderer(args: Record<string, unknown>, i: number): (row: ValueMap, ruleId: string) => Message {
  const topic = templateArg(args, 'topic', undefined, i);
  if (!topic) throw new ValidationError('INVALID_ARGUMENT', `actions[${i}].args.topic: required`);
  const qos = templateArg(args, 'qos', '${qos}', i)!;
  const retain = templateArg(args, 'retain', '${retain}', i)!;
  const payload = templateArg(args, 'payload', '${payload}', i)!;
  const userProps = templateArg(args, 'user_properties', '${user_properties}', i)!;
  const mqttArgs = args.mqtt_properties;
  if (mqttArgs !== undefined && (typeof mqttArgs !== 'object' || mqttArgs === null || Array.isArray(mqttArgs))) throw new ValidationError('INVALID_ARGUMENT', `actions[${i}].args.mqtt_properties: expected an object`);
  const props: [string, Template][] = [];
  for (const [k, v] of Object.entries((mqttArgs ?? {}) as Record<string, unknown>)) {
    if (!(MQTT_PROPERTY_TEMPLATES as readonly string[]).includes(k)) throw new ValidationError('INVALID_ARGUMENT', `actions[${i}].args.mqtt_properties: unknown property "${k}" (${MQTT_PROPERTY_TEMPLATES.join(', ')})`);
    props.push([k, compileTemplate(String(v))]);
  }
  return (row, ruleId) => {
    const t = topic.render(row);
    const problem = checkTopicName(t, 128);
    if (problem) throw new ValidationError('INVALID_ARGUMENT', `republish: topic "${t}": ${problem}`);
    const properties: MessageProperties = {};
    const users = userProperties(userProps.value(row));
    if (users) properties.userProperties = users;
    for (const [k, tpl] of props) {
      const v = tpl.value(row);
      if (v === undefined) continue;
      if (k === 'Payload-Format-Indicator') properties.payloadFormatIndicator = Number(v) === 1 ? 1 : 0;
      else if (k === 'Message-Expiry-Interval') properties.messageExpiryInterval = Number(v);
      else if (k === 'Content-Type') properties.contentType = str(v);
      else if (k === 'Response-Topic') properties.responseTopic = str(v);
      else properties.correlationData = toBytes(v);
    }
    const msg = newMessage(t, toBytes(payload.value(row)), toQos(qos.value(row)), toBool(retain.value(row)), ruleId, Object.keys(properties).length ? properties : undefined);
    msg.republishBy = ruleId;
    return msg;
  };
}

function userProperties(v: Value): Record<string, string> | undefined {
  if (isMap(v)) {
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = str(x);
    return Object.keys(out).length ? out : undefined;
  }
  if (Array.isArray(v)) {
    const out: Record<string, string> = {};
    for (const p of v) if (isMap(p) && p.key !== undefined) out[str(p.key)] = str(p.value);
    return Object.keys(out).length ? out : undefined;
  }
  return undefined;
}

/** EMQX's console action: `[rule action] <rule id>` with the selected data and the event. */
export function consoleAction(log: Logger, ruleId: string, row: ValueMap, envs: ValueMap): void {
  log.info({ rule_id: ruleId, action_data: row, envs }, `[rule action] ${ruleId}`);
}
