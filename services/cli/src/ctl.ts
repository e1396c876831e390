import { ApiKeys } from '@tributary/api';
import { ConfigError } from '@tributary/common';
import { loadTributaryConfig } from './config';

/**
 * `tributary ctl`: talks to a running node's HTTP API (EMQX's `emqx ctl` command names). It finds
 * the API from the configuration the node reads (config file and TRIBUTARY_* environment: the
 * address of dashboard.listeners.http.bind and the first key of api_key.bootstrap_file), or from
 * --url, --key and --secret.
 */

const HELP = `Usage: tributary ctl <command> [options] [--url http://host:18083] [--key K --secret S] [--config file.json]

Commands:
  status                                   is the node running?
  users list [--authenticator ID]          users of the built-in database (ID: password_based:built_in_database)
  users add <user_id> <password> [--superuser] [--authenticator ID]
  users delete <user_id> [--authenticator ID]
  banned list                              bans in force
  banned add <as> <who> [--until <RFC3339|seconds>] [--reason <text>]
                                           as: clientid, username, peerhost, clientid_re, username_re, peerhost_net
  banned delete <as> <who>
`;

interface Target {
  url: string;
  auth: string | undefined;
}

export class CtlError extends Error {}

interface Parsed {
  words: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--url', '--key', '--secret', '--config', '-c', '--authenticator', '--until', '--reason']);

function parse(argv: string[]): Parsed {
  const words: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) words.push(a);
    else if (VALUE_FLAGS.has(a)) {
      const v = argv[++i];
      if (v === undefined) throw new CtlError(`${a} needs a value`);
      flags.set(a === '-c' ? '--config' : a, v);
    } else if (a === '--superuser' || a === '--help' || a === '-h') flags.set(a === '-h' ? '--help' : a, true);
    else throw new CtlError(`unknown option ${a}`);
  }
  return { words, flags };
}

function target(flags: Map<string, string | true>): Target {
  const flag = (k: string): string | undefined => {
    const v = flags.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  let url = flag('--url');
  let key = flag('--key');
  let secret = flag('--secret');
  if (!url || !key) {
    const { config } = loadTributaryConfig({ file: flag('--config') });
    if (!url) {
      const b = config.dashboard.listeners.http.bind;
      const host = b.host === '0.0.0.0' || b.host === '::' ? '127.0.0.1' : b.host;
      url = `http://${host.includes(':') ? `[${host}]` : host}:${b.port}`;
    }
    if (!key && config.api_key.bootstrap_file) {
      const first = ApiKeys.first(config.api_key.bootstrap_file);
      if (first) ({ key, secret } = first);
    }
  }
  return { url: url.replace(/\/$/, ''), auth: key ? `Basic ${Buffer.from(`${key}:${secret ?? ''}`).toString('base64')}` : undefined };
}

async function call(t: Target, method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(`${t.url}/api/v5${path}`, {
      method,
      headers: { ...(t.auth ? { authorization: t.auth } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    throw new CtlError(`cannot reach the HTTP API at ${t.url} (${cause}); is the node running? (--url to point elsewhere)`);
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const e = json as { code?: string; message?: string } | undefined;
    if (res.status === 401) throw new CtlError(`the HTTP API refused the API key (${e?.code}: ${e?.message}); pass --key/--secret or set api_key.bootstrap_file`);
    throw new CtlError(`${e?.code ?? res.status}: ${e?.message ?? text}`);
  }
  return json;
}

/** Every page of a paged endpoint. */
async function all<T>(t: Target, path: string): Promise<T[]> {
  const out: T[] = [];
  for (let p = 1; ; p++) {
    const sep = path.includes('?') ? '&' : '?';
    const r = (await call(t, 'GET', `${path}${sep}page=${p}&limit=1000`)) as { data: T[]; meta: { hasnext: boolean } };
    out.push(...r.data);
    if (!r.meta.hasnext) return out;
  }
}

function untilOf(v: string | true | undefined): number | string | undefined {
  if (typeof v !== 'string') return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

/** Runs one ctl command; returns what to print. */
export async function ctl(argv: string[]): Promise<string> {
  const { words, flags } = parse(argv);
  if (flags.has('--help') || words.length === 0) return HELP;
  const t = target(flags);
  const [cmd, sub, a, b] = words;
  const authn = encodeURIComponent(typeof flags.get('--authenticator') === 'string' ? (flags.get('--authenticator') as string) : 'password_based:built_in_database');
  switch (`${cmd} ${sub ?? ''}`.trim()) {
    case 'status': {
      const res = await fetch(`${t.url}/status`, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => {
        throw new CtlError(`cannot reach the HTTP API at ${t.url} (${(err as { cause?: { code?: string } }).cause?.code ?? err.message})`);
      });
      return res.text();
    }
    case 'users list': {
      const users = await all<{ user_id: string; is_superuser: boolean }>(t, `/authentication/${authn}/users`);
      return users.length ? users.map((u) => `${u.user_id}${u.is_superuser ? ' (superuser)' : ''}\n`).join('') : 'No users.\n';
    }
    case 'users add':
      if (!a || b === undefined) throw new CtlError('usage: tributary ctl users add <user_id> <password> [--superuser]');
      await call(t, 'POST', `/authentication/${authn}/users`, { user_id: a, password: b, is_superuser: flags.has('--superuser') });
      return 'ok\n';
    case 'users delete':
      if (!a) throw new CtlError('usage: tributary ctl users delete <user_id>');
      await call(t, 'DELETE', `/authentication/${authn}/users/${encodeURIComponent(a)}`);
      return 'ok\n';
    case 'banned list': {
      const bans = await all<{ as: string; who: string; until: string; reason: string }>(t, '/banned');
      return bans.length ? bans.map((x) => `${x.as.padEnd(13)} ${x.who}  until=${x.until}${x.reason ? `  reason=${x.reason}` : ''}\n`).join('') : 'No bans.\n';
    }
    case 'banned add': {
      if (!a || !b) throw new CtlError('usage: tributary ctl banned add <as> <who> [--until ...] [--reason ...]');
      const reason = flags.get('--reason');
      await call(t, 'POST', '/banned', { as: a, who: b, by: 'ctl', ...(typeof reason === 'string' ? { reason } : {}), ...(flags.has('--until') ? { until: untilOf(flags.get('--until')) } : {}) });
      return 'ok\n';
    }
    case 'banned delete':
      if (!a || !b) throw new CtlError('usage: tributary ctl banned delete <as> <who>');
      await call(t, 'DELETE', `/banned/${encodeURIComponent(a)}/${encodeURIComponent(b)}`);
      return 'ok\n';
    default:
      throw new CtlError(`unknown command "${words.join(' ')}"\n\n${HELP}`);
  }
}

/** The `tributary ctl ...` entry: prints, or exits 1 with a clear error. */
export async function ctlMain(argv: string[]): Promise<void> {
  try {
    process.stdout.write(await ctl(argv));
  } catch (err) {
    if (err instanceof CtlError || err instanceof ConfigError) {
      process.stderr.write(`tributary ctl: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
