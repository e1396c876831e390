import { ConfigProblem, ValidationError } from '@tributary/common';
import { actionCommon, FieldProblem, type Fields, parseSection, sourceCommon } from './fields';
import { type HttpActionSpec, HttpConnector, type HttpConnectorSpec, httpActionParams, httpConnectorFields, HttpSink } from './http';
import { type KafkaActionSpec, KafkaConnector, type KafkaConnectorSpec, kafkaActionParams, kafkaConnectorFields, KafkaSink } from './kafka';
import { type MqttActionSpec, MqttConnector, type MqttConnectorSpec, type MqttSourceSpec, mqttConnectorFields, mqttSinkParams, MqttSink, MqttSource, mqttSourceParams } from './mqtt';
import { type PgsqlActionSpec, PgsqlConnector, type PgsqlConnectorSpec, pgsqlActionParams, pgsqlConnectorFields, PgsqlSink } from './pgsql';
import type { Connector, ConnectorOptions, Sink, Source } from './types';

export * from './types';
export type { ResourceOpts, ConnectorResourceOpts, SslSpec } from './fields';
export { DEFAULT_PGSQL_SQL, pgUnavailable } from './pgsql';
export { pubPropsOf } from './mqtt';
export type { HttpActionSpec, HttpConnectorSpec, HttpRequest } from './http';
export type { KafkaActionSpec, KafkaConnectorSpec, KafkaRecord, KafkaAuthentication } from './kafka';
export type { PgsqlActionSpec, PgsqlConnectorSpec, PgsqlStatement } from './pgsql';
export type { MqttActionSpec, MqttConnectorSpec, MqttSourceSpec, MqttPublish } from './mqtt';

/** A parsed `connectors.<type>.<name>` (EMQX's fields; durations in ms, sizes in bytes). */
export type ConnectorSpec = HttpConnectorSpec | KafkaConnectorSpec | PgsqlConnectorSpec | MqttConnectorSpec;
/** A parsed `actions.<type>.<name>`: {connector, parameters, resource_opts, ...}. */
export type ActionSpec = HttpActionSpec | KafkaActionSpec | PgsqlActionSpec | MqttActionSpec;
/** A parsed `sources.<type>.<name>` (only `mqtt` has sources). */
export type SourceSpec = MqttSourceSpec;

/** The connector and action types (EMQX's names). */
export const SINK_TYPES = ['http', 'kafka_producer', 'pgsql', 'mqtt'] as const;
/** The source types. */
export const SOURCE_TYPES = ['mqtt'] as const;
export type SinkType = (typeof SINK_TYPES)[number];

/** Each type's connector fields (`connectors.<type>.<name>`). */
export const CONNECTOR_FIELDS: Readonly<Record<SinkType, Fields>> = {
  http: httpConnectorFields,
  kafka_producer: kafkaConnectorFields,
  pgsql: pgsqlConnectorFields,
  mqtt: mqttConnectorFields,
};

/** Each type's action parameters (`actions.<type>.<name>.parameters`). */
export const ACTION_PARAMS: Readonly<Record<SinkType, Fields>> = {
  http: httpActionParams,
  kafka_producer: kafkaActionParams,
  pgsql: pgsqlActionParams,
  mqtt: mqttSinkParams,
};

function isSinkType(type: string): type is SinkType {
  return (SINK_TYPES as readonly string[]).includes(type);
}

/** The whole-config problem for a section: every message starts with the dotted field (`connectors.http.hook1.url: ...`). */
function problemAt(prefix: string, p: FieldProblem): ConfigProblem {
  return new ConfigProblem(p.under(prefix).message);
}

function parseItem<T>(kind: 'connectors' | 'actions' | 'sources', type: string, name: string, raw: unknown, fields: Fields | undefined, known: readonly string[]): T | ConfigProblem {
  const prefix = `${kind}.${type}.${name}`;
  if (!fields) return new ConfigProblem(`${prefix}: unknown type "${type}" (known: ${known.join(', ')})`);
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) return new ConfigProblem(`${prefix}: a name is letters, digits, "_", "-" and "." (starting with a letter or digit)`);
  const v = parseSection(raw, fields);
  if (v instanceof FieldProblem) return problemAt(prefix, v);
  return { type, name, ...(v as object) } as T;
}

/** Validates `connectors.<type>.<name>`; a problem names the field ("connectors.http.hook1.url: ..."). */
export function parseConnector(type: string, name: string, raw: unknown): ConnectorSpec | ConfigProblem {
  return parseItem<ConnectorSpec>('connectors', type, name, raw, isSinkType(type) ? CONNECTOR_FIELDS[type] : undefined, SINK_TYPES);
}

/** Validates `actions.<type>.<name>` ({connector: <name>, parameters{...}, resource_opts{...}}). */
export function parseAction(type: string, name: string, raw: unknown): ActionSpec | ConfigProblem {
  const fields = isSinkType(type) ? { ...actionCommon, parameters: ACTION_PARAMS[type] } : undefined;
  return parseItem<ActionSpec>('actions', type, name, raw, fields, SINK_TYPES);
}

/** Validates `sources.<type>.<name>` ({connector, parameters{topic, qos}, resource_opts}). */
export function parseSource(type: string, name: string, raw: unknown): SourceSpec | ConfigProblem {
  const fields = type === 'mqtt' ? { ...sourceCommon, parameters: mqttSourceParams } : undefined;
  return parseItem<SourceSpec>('sources', type, name, raw, fields, SOURCE_TYPES);
}

/** The connector of a spec (not started). */
export function createConnector(spec: ConnectorSpec, opts: ConnectorOptions = {}): Connector {
  switch (spec.type) {
    case 'http':
      return new HttpConnector(spec, opts);
    case 'kafka_producer':
      return new KafkaConnector(spec, opts);
    case 'pgsql':
      return new PgsqlConnector(spec, opts);
    case 'mqtt':
      return new MqttConnector(spec, opts);
  }
}

function mismatch(what: string, spec: { type: string; name: string; connector: string }, connector: Connector): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `${what} ${spec.type}:${spec.name} needs a ${spec.type} connector named ${spec.connector}, got ${connector.type}:${connector.name}`);
}

/** The sink of an action on its connector (same type and name as spec.connector; throws a ValidationError otherwise). */
export function createSink(spec: ActionSpec, connector: Connector): Sink {
  if (connector.name !== spec.connector) throw mismatch('action', spec, connector);
  if (spec.type === 'http' && connector instanceof HttpConnector) return new HttpSink(spec, connector);
  if (spec.type === 'kafka_producer' && connector instanceof KafkaConnector) return new KafkaSink(spec, connector);
  if (spec.type === 'pgsql' && connector instanceof PgsqlConnector) return new PgsqlSink(spec, connector);
  if (spec.type === 'mqtt' && connector instanceof MqttConnector) return new MqttSink(spec, connector);
  throw mismatch('action', spec, connector);
}

/** The source on its connector (an mqtt connector named spec.connector). */
export function createSource(spec: SourceSpec, connector: Connector): Source {
  if (connector.name !== spec.connector || !(connector instanceof MqttConnector)) throw mismatch('source', spec, connector);
  return new MqttSource(spec, connector);
}
