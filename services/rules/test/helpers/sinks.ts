import { createServer } from 'node:net';
import { ConfigProblem, SinkError } from '@tributary/common';
import { type ActionSpec, type Connector, type ConnectorSpec, createConnector, createSink, parseAction, parseConnector, parseSource, type Sink, type SourceSpec } from '../../src/sinks';

/** A loopback port nothing listens on. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as { port: number };
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function ok<T>(v: T | ConfigProblem): T {
  if (v instanceof ConfigProblem) throw new Error(`unexpected config problem: ${v.message}`);
  return v;
}

/** parseConnector that throws on a problem. */
export function connectorSpec(type: string, name: string, raw: unknown): ConnectorSpec {
  return ok(parseConnector(type, name, raw));
}

/** parseAction that throws on a problem. */
export function actionSpec(type: string, name: string, raw: unknown): ActionSpec {
  return ok(parseAction(type, name, raw));
}

/** parseSource that throws on a problem. */
export function sourceSpec(type: string, name: string, raw: unknown): SourceSpec {
  return ok(parseSource(type, name, raw));
}

/** A started connector and a sink on it, from raw EMQX configs; stop the connector in teardown. */
export async function sinkOn(type: string, connectorRaw: unknown, parameters: unknown, name = 'c1'): Promise<{ connector: Connector; sink: Sink }> {
  const connector = createConnector(connectorSpec(type, name, connectorRaw));
  await connector.start();
  return { connector, sink: createSink(actionSpec(type, `${name}_action`, { connector: name, parameters }), connector) };
}

/** The SinkError a promise rejects with (fails when it resolves or rejects with something else). */
export async function sinkErrorOf(p: Promise<unknown>): Promise<SinkError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SinkError) return err;
    throw new Error(`expected a SinkError, got ${String(err)}`);
  }
  throw new Error('expected a SinkError, but it resolved');
}
