import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { jsonEncode, RuleEvalError, type Value } from '../value';
import { int, spec, text, type FunctionTable } from './args';
import type { JqReply } from './jq-worker';

/**
 * jq/2,3 run real jq (the jq-web package: jq 1.7 compiled to WebAssembly, no native build) in a
 * worker thread. Rule functions are synchronous, so the caller blocks on a shared word until the
 * worker answers or the timeout passes; on a timeout the worker is terminated (a runaway program
 * cannot be interrupted otherwise) and the next call starts a fresh one.
 */

/** EMQX's `rule_engine.jq_function_default_timeout` (10 s): jq/2's limit. */
let defaultTimeoutMs = 10_000;
/** How long the first call may wait for the worker to load jq (not counted in a call's timeout). */
const STARTUP_TIMEOUT_MS = 30_000;

interface JqThread {
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly signal: Int32Array;
}

let thread: JqThread | undefined;

/** Sets jq/2's timeout (EMQX's rule_engine.jq_function_default_timeout). */
export function setJqDefaultTimeout(ms: number): void {
  defaultTimeoutMs = ms;
}

function jqError(detail: string): never {
  throw new RuleEvalError('jq_exception', detail);
}

/** Waits (blocking) for the worker's next reply, or undefined after `timeoutMs`. */
function awaitReply(t: JqThread, timeoutMs: number): JqReply | undefined {
  if (Atomics.wait(t.signal, 0, 0, timeoutMs) === 'timed-out') return undefined;
  const got = receiveMessageOnPort(t.port);
  return got === undefined ? undefined : (got.message as JqReply);
}

function startThread(): JqThread {
  const shared = new SharedArrayBuffer(4);
  const signal = new Int32Array(shared);
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(join(__dirname, 'jq-worker.js'), { workerData: { signal: shared, port: port2 }, transferList: [port2] });
  worker.unref();
  port1.unref();
  worker.on('error', () => {
    if (thread?.worker === worker) thread = undefined;
  });
  const t: JqThread = { worker, port: port1, signal };
  const ready = awaitReply(t, STARTUP_TIMEOUT_MS);
  if (ready === undefined || !('ready' in ready)) {
    void worker.terminate();
    jqError(ready && 'error' in ready ? ready.error : 'jq did not start');
  }
  return t;
}

/** Stops the jq worker (it is started again by the next jq call). For tests and shutdown. */
export async function stopJq(): Promise<void> {
  const t = thread;
  thread = undefined;
  if (t !== undefined) {
    t.port.close();
    await t.worker.terminate();
  }
}

/**
 * Runs a jq program on JSON text; every output is decoded into a list, as EMQX's jq/3 returns.
 * Errors (jq's compile and run-time errors, the timeout) are `jq_exception`.
 */
export function runJq(program: string, input: string, timeoutMs: number): Value[] {
  const t = (thread ??= startThread());
  Atomics.store(t.signal, 0, 0);
  t.worker.postMessage({ program, input });
  const r = awaitReply(t, timeoutMs);
  if (r === undefined) {
    thread = undefined;
    t.port.close();
    void t.worker.terminate();
    return jqError(`timeout: the jq program ran longer than ${timeoutMs} ms`);
  }
  if ('error' in r) return jqError(r.error);
  if (!('output' in r)) return jqError('unexpected reply from the jq worker');
  const out: Value[] = [];
  for (const line of r.output.split('\n')) if (line) out.push(JSON.parse(line) as Value);
  return out;
}

/** jq's input: text as it is (JSON text), any other value JSON-encoded. */
function jqInput(v: Value): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return jsonEncode(v);
}

/** jq/2 and jq/3 (program, JSON or value[, timeout ms]). */
export const JQ_FUNCTIONS: FunctionTable = {
  jq: spec([2, 3], (args) => {
    const program = text('jq', args[0]);
    const timeout = args.length === 3 ? int('jq', args[2]) : defaultTimeoutMs;
    return runJq(program, jqInput(args[1]), Math.max(timeout, 0));
  }),
};
