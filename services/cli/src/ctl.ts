import { ApiKeys } from '@tributary/api';
import { ConfigError } from '@tributary/common';
import { loadTributaryConfig } from './config';
import { all, call, CtlError, Target } from './ctl-http';
import { CtlGroup, OPS_GROUPS, usageTable } from './ctl-ops';
import { rules } from './ctl-rules';

export { CtlError } from './ctl-http';

/**
 * `tributary ctl`: talks to a running node's HTTP API (EMQX's `emqx ctl` command names and output).
 * It finds the API from the configuration the node reads (config file and TRIBUTARY_* environment:
 * the address of dashboard.listeners.http.bind and the first key of api_key.bootstrap_file), or
 * from --url, --key and --secret.
 */

const OPTIONS = '[--url http://host:18083] [--key K --secret S] [--config file.json]';

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

function untilOf(v: string | true | undefined): number | string | undefined {
  if (typeof v !== 'string') return undefined;
  return /^\d+$/.test(v) ? Number(v) : v;
}

const status: CtlGroup = {
  usage: [['status', 'Is the node running?']],
  async run(t) {
    const res = await fetch(`${t.url}/status`, { signal: AbortSignal.timeout(10_000) }).catch((err: Error) => {
      throw new CtlError(`cannot reach the HTTP API at ${t.url} (${(err as { cause?: { code?: string } }).cause?.code ?? err.message})`);
    });
    return res.text();
  },
};

/** users and banned take flags; their groups are built per call. */
function users(flags: Map<string, string | true>): CtlGroup {
  const authn = encodeURIComponent(typeof flags.get('--authenticator') === 'string' ? (flags.get('--authenticator') as string) : 'password_based:built_in_database');
  return {
    usage: [
      ['users list [--authenticator ID]', 'Users of the built-in database (ID: password_based:built_in_database)'],
      ['users add <user_id> <password> [--superuser]', 'Add a user'],
      ['users delete <user_id>', 'Delete a user'],
    ],
    async run(t, [sub, a, b]) {
      if (sub === 'list') {
        const us = await all<{ user_id: string; is_superuser: boolean }>(t, `/authentication/${authn}/users`);
        return us.length ? us.map((u) => `${u.user_id}${u.is_superuser ? ' (superuser)' : ''}\n`).join('') : 'No users.\n';
      }
      if (sub === 'add') {
        if (!a || b === undefined) throw new CtlError('usage: tributary ctl users add <user_id> <password> [--superuser]');
        await call(t, 'POST', `/authentication/${authn}/users`, { user_id: a, password: b, is_superuser: flags.has('--superuser') });
        return 'ok\n';
      }
      if (sub === 'delete') {
        if (!a) throw new CtlError('usage: tributary ctl users delete <user_id>');
        await call(t, 'DELETE', `/authentication/${authn}/users/${encodeURIComponent(a)}`);
        return 'ok\n';
      }
      throw new CtlError(`unknown command "users ${sub ?? ''}" (tributary ctl users --help)`);
    },
  };
}

function banned(flags: Map<string, string | true>): CtlGroup {
  return {
    usage: [
      ['banned list', 'Bans in force'],
      ['banned add <as> <who> [--until T] [--reason R]', 'as: clientid|username|peerhost|clientid_re|username_re|peerhost_net; T: RFC3339 or seconds'],
      ['banned delete <as> <who>', 'Lift a ban'],
    ],
    async run(t, [sub, a, b]) {
      if (sub === 'list') {
        const bans = await all<{ as: string; who: string; until: string; reason: string }>(t, '/banned');
        return bans.length ? bans.map((x) => `${x.as.padEnd(13)} ${x.who}  until=${x.until}${x.reason ? `  reason=${x.reason}` : ''}\n`).join('') : 'No bans.\n';
      }
      if (sub === 'add') {
        if (!a || !b) throw new CtlError('usage: tributary ctl banned add <as> <who> [--until ...] [--reason ...]');
        const reason = flags.get('--reason');
        await call(t, 'POST', '/banned', { as: a, who: b, by: 'ctl', ...(typeof reason === 'string' ? { reason } : {}), ...(flags.has('--until') ? { until: untilOf(flags.get('--until')) } : {}) });
        return 'ok\n';
      }
      if (sub === 'delete') {
        if (!a || !b) throw new CtlError('usage: tributary ctl banned delete <as> <who>');
        await call(t, 'DELETE', `/banned/${encodeURIComponent(a)}/${encodeURIComponent(b)}`);
        return 'ok\n';
      }
      throw new CtlError(`unknown command "banned ${sub ?? ''}" (tributary ctl banned --help)`);
    },
  };
}

function groups(flags: Map<string, string | true>): Record<string, CtlGroup> {
  return { status, ...OPS_GROUPS, rules, users: users(flags), banned: banned(flags) };
}

function help(gs: CtlGroup[]): string {
  return `Usage: tributary ctl <command> ${OPTIONS}\n\nCommands:\n${usageTable(gs.flatMap((g) => g.usage))}`;
}

/** Runs one ctl command; returns what to print. `--help` after a command shows that command's usage. */
export async function ctl(argv: string[]): Promise<string> {
  const { words, flags } = parse(argv);
  const gs = groups(flags);
  const [cmd, ...rest] = words;
  if (cmd === undefined) return help(Object.values(gs));
  const group = gs[cmd];
  if (!group) throw new CtlError(`unknown command "${words.join(' ')}"\n\n${help(Object.values(gs))}`);
  if (flags.has('--help')) return `Usage: tributary ctl ${OPTIONS}\n\n${usageTable(group.usage)}`;
  return group.run(target(flags), rest);
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
