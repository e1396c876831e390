import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './broker';

const run = promisify(execFile);
const SCRIPT = join(ROOT, 'deploy', 'kafka', 'kafka.sh');

/**
 * A Kafka of a test's own (deploy/kafka/kafka.sh in a temp dir), for tests that pause, kill or
 * restart it: never the shared TRIBUTARY_TEST_KAFKA. The script runs asynchronously, so the
 * test's clients keep running while a broker starts or stops. Stopped with the test process
 * (KAFKA_OWNER_PID) even if teardown never runs.
 */
export class OwnKafka {
  private constructor(
    readonly dir: string,
    /** Bootstrap list, host:port[,host:port...]. */
    readonly bootstrap: string,
    /** Nodes: 1 for `start`, n for `start-cluster`. */
    readonly brokers: number,
  ) {}

  /** One node (n = 1, `start`) or a cluster of n (`start-cluster`). */
  static async start(n = 1): Promise<OwnKafka> {
    const dir = mkdtempSync(join(tmpdir(), 'tributary-own-kafka-'));
    try {
      const out = await OwnKafka.script(n === 1 ? ['start', dir] : ['start-cluster', dir, String(n)]);
      return new OwnKafka(dir, lastLine(out), n);
    } catch (err) {
      await OwnKafka.script(['stop', dir]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private static async script(args: string[]): Promise<string> {
    const { stdout } = await run('bash', [SCRIPT, ...args], { env: { ...process.env, KAFKA_OWNER_PID: String(process.pid) }, maxBuffer: 1 << 20 });
    return stdout;
  }

  /** The JVM pid of node i (1-based; the only one of a single node). */
  pid(i = 1): number {
    return Number(readFileSync(join(this.brokers === 1 ? this.dir : join(this.dir, `broker-${i}`), 'kafka.pid'), 'utf8'));
  }

  /** SIGSTOP: the JVM stops answering; its sockets stay open (a stall, not a crash). */
  pause(i = 1): void {
    process.kill(this.pid(i), 'SIGSTOP');
  }

  resume(i = 1): void {
    process.kill(this.pid(i), 'SIGCONT');
  }

  /** Stops and starts again on the same data and ports, down for at least `minDownMs` (connections refused meanwhile). */
  async restart(minDownMs = 0): Promise<void> {
    if (minDownMs > 0) {
      const stoppedAt = Date.now();
      await OwnKafka.script(['stop', this.dir]);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + minDownMs - Date.now())));
    }
    await OwnKafka.script(['restart', this.dir]);
  }

  async killBroker(i: number): Promise<void> {
    await OwnKafka.script(['kill-broker', this.dir, String(i)]);
  }

  async startBroker(i: number): Promise<void> {
    await OwnKafka.script(['start-broker', this.dir, String(i)]);
  }

  async stop(): Promise<void> {
    for (let i = 1; i <= this.brokers; i++) {
      try {
        this.resume(i);
      } catch {
        // not running
      }
    }
    await OwnKafka.script(['stop', this.dir]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}
