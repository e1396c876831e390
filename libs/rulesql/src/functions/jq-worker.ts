/**
 * The jq worker thread (see jq.ts): loads jq (jq-web, jq compiled to WebAssembly) once, then
 * runs one program per message, replying on the shared port and waking the waiting caller.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';

interface JqWeb {
  /** jq's stdout, undefined when it printed nothing. */
  raw(input: string, program: string, flags: string[]): string | undefined;
}

/** What the caller sends: a jq program and its input as JSON text. */
export interface JqRequest {
  readonly program: string;
  readonly input: string;
}

/** What the worker answers: jq's compact output (one JSON text a line), or its error. */
export type JqReply = { readonly ready: true } | { readonly output: string } | { readonly error: string };

const { signal: shared, port } = workerData as { signal: SharedArrayBuffer; port: MessagePort };
const signal = new Int32Array(shared);

function reply(message: JqReply): void {
  port.postMessage(message);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

/** jq's own message (`jq: error ...`) without the wrapper's exit-code line. */
function jqMessage(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const lines = msg.split('\n').filter((l) => l && !l.startsWith('Non-zero exit code'));
  return lines.join('; ') || msg;
}

// jq-web writes a program's stderr (its `debug` and `stderr` output) with console.warn: dropped.
console.warn = () => undefined;

void (async () => {
  let jq: JqWeb;
  try {
    jq = await (require('jq-web') as Promise<JqWeb>);
  } catch (e) {
    reply({ error: `jq could not be loaded: ${jqMessage(e)}` });
    return;
  }
  reply({ ready: true });
  parentPort?.on('message', (req: JqRequest) => {
    try {
      reply({ output: jq.raw(req.input, req.program, ['-c']) ?? '' });
    } catch (e) {
      reply({ error: jqMessage(e) });
    }
  });
})();
