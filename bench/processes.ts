/**
 * The child processes of a bench run: spawning them with a high open-file limit, waiting until they
 * accept connections, reading their memory and CPU from /proc, and making sure none outlives the bench
 * (temp dirs included), however it ends.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const FD_LIMIT = 65_536;

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/**
 * If the bench dies without cleaning up (kill -9, out of memory), a watchdog it started detached stops what it
 * left behind: once a second it checks the bench's pid; when that is gone it SIGTERMs the pids listed in its file
 * (SIGKILL 5 s later) and removes the listed temp dirs. A clean exit removes the file, and the watchdog just ends.
 * (Ctrl-C and crashes are handled in-process: stopAll, killAllNow; Kafka has its own watchdog, KAFKA_OWNER_PID.)
 */
const WATCHDOG = `owner=$1; list=$2
trap '' HUP INT TERM
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
[ -f "$list" ] || exit 0
pids=$(sed -n 's/^pid //p' "$list")
if [ -n "$pids" ]; then kill -TERM $pids 2>/dev/null; sleep 5; kill -KILL $pids 2>/dev/null; fi
sed -n 's/^dir //p' "$list" | while IFS= read -r d; do
  case "$(basename -- "$d")" in tributary-bench-*) rm -rf -- "$d" ;; esac
done
rm -f -- "$list"`;
let watchList: string | undefined;

/** Rewrites the watchdog's list (live broker pids, temp dirs); starts the watchdog the first time. */
function recordForWatchdog(): void {
  if (!watchList) {
    watchList = path.join(os.tmpdir(), `tributary-bench-${process.pid}.watch`);
    const dog = spawn('bash', ['-c', WATCHDOG, 'watchdog', String(process.pid), watchList], { detached: true, stdio: 'ignore' });
    dog.unref();
  }
  const lines = [...[...live].map((c) => `pid ${c.pid}`), ...[...tempDirs].map((d) => `dir ${d}`)];
  fs.writeFileSync(`${watchList}.tmp`, lines.join('\n') + '\n');
  fs.renameSync(`${watchList}.tmp`, watchList);
}

/** A port that was free a moment ago: listen on 0, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tributary-bench-${prefix}-`));
  tempDirs.add(dir);
  recordForWatchdog();
  return dir;
}

function readProc(pid: number, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readProc(pid, 'status'));
  return m ? Number(m[1]) * 1024 : NaN;
}

export function cpuOf(pid: number): number {
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const stat = readProc(pid, 'stat');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
  });
}

const FD_SCRIPT = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`;

/** One child process of a broker, with the tail of its output and how it ended. */
export interface Proc {
  role: string;
  pid: number;
  /** How it ended ("exited with code 1"); undefined while it runs. */
  exited(): string | undefined;
  /** Its last output lines (errors first). */
  lastWords(): string;
  /** Why it is gone, with its last output lines; undefined while it runs. */
  exitReason(): string | undefined;
  /** SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Spawns through `bash -c 'ulimit -n …; exec …'` so the process gets a high fd limit even when the
 * bench was started from a shell with `ulimit -n 1024`; exec keeps the pid, so /proc/<pid> is the process.
 */
export function spawnProc(role: string, repoRoot: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn('bash', ['-c', FD_SCRIPT, 'bash', cmd, ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  recordForWatchdog();
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | undefined;
  const exitedP = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      live.delete(child);
      recordForWatchdog(); // an exited pid may be reused: it must leave the list at once
      exited = `exited with ${sig ?? `code ${code}`}`;
      resolve();
    });
  });
  return {
    role,
    pid: child.pid ?? 0,
    exited: () => exited,
    lastWords: () => lastLine(tail),
    exitReason: () => (exited ? `${exited}: ${lastLine(tail)}` : undefined),
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedP;
      clearTimeout(t);
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until ready() holds; fails as soon as the process exits, or after timeoutMs. `who`: "" or "router ". */
export async function waitReady(p: Proc, who: string, what: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (p.exited()) throw new Error(`${who}${p.exited()} before accepting connections: ${p.lastWords()}`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} not accepting connections after ${timeoutMs / 1000} s: ${p.lastWords()}`);
    await sleep(50);
  }
}

export function removeDirs(dirs: string[]): void {
  for (const d of dirs) {
    fs.rmSync(d, { recursive: true, force: true });
    tempDirs.delete(d);
  }
  recordForWatchdog();
}

/** The broker's last words: error lines if there are any (warnings come first in logs), else the last lines. */
export function lastLine(text: string): string {
  const lines = text.trim().split('\n').filter((l) => l.trim());
  const errors = lines.filter((l) => /error|fatal|"level":\s*[56]0/i.test(l));
  const pick = (errors.length > 0 ? errors : lines).slice(-2).map((l) => l.trim().slice(0, 200));
  return pick.join(' | ') || '(no output)';
}

/** SIGTERM every child process still running, SIGKILL after 5 s; resolves once all have exited. */
export async function stopChildren(): Promise<void> {
  const waits = [...live].map(
    (child) =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => (child.kill('SIGKILL'), resolve()), 5000).unref();
      }),
  );
  await Promise.all(waits);
}

/** From process.on('exit'), where nothing asynchronous runs: SIGTERM every child process still running. */
export function killChildrenNow(): void {
  for (const child of live) child.kill('SIGTERM');
}

export function removeTempDirs(): void {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  // Nothing left for the watchdog (it ends with the bench); a later start writes a new list.
  if (watchList) fs.rmSync(watchList, { force: true });
}

/**
 * The Node.js flags every start path of Tributary uses (services/cli/bin/node-flags.json), so the
 * bench measures what users run, then BENCH_TRIBUTARY_NODE_ARGS (e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof" profiles the broker under load; a later flag overrides an earlier one).
 */
export function tributaryNodeArgs(repoRoot: string): string[] {
  const shipped = JSON.parse(fs.readFileSync(path.join(repoRoot, 'services/cli/bin/node-flags.json'), 'utf8')) as string[];
  return [...shipped, ...(process.env.BENCH_TRIBUTARY_NODE_ARGS ?? '').split(' ').filter(Boolean)];
}
