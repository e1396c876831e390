/**
 * The security family (`--scenarios security`): what authentication and authorization cost, next to the
 * unauthenticated baseline in the same run. Connection rate: CONNECT -> CONNACK -> DISCONNECT by
 * CONNECT_WORKERS clients at a time, each with a fresh socket, anonymous or with credentials checked by the
 * built-in database (sha256, bcrypt), PostgreSQL or a JWT. Publish: the fan-in QoS 1 load against a
 * 1,000-rule ACL file. Mosquitto runs the rows it has an equivalent for (its password file, its ACL file);
 * Aedes and tributary-kafka skip them.
 */
import { createHash, createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BrokerName } from './brokers';
import { runFlow } from './flow';
import { Ctx, Prepared, Scenario } from './harness';
import { startPostgres } from './postgres';
import { tempDir } from './processes';

const CONNECT_WORKERS = 20;
const USERS = 100;
const PASSWORD = (i: number): string => `secret-${i}-pw`;
const ACL_RULES = 1000;

/** Connections per second over the measured duration; every CONNACK must be a success. */
async function connectRate(ctx: Ctx, credentials: (i: number) => { username: string; password: string } | undefined): Promise<{ perS: number; connects: number }> {
  const { opts } = ctx;
  let counting = false;
  let connects = 0;
  let failure: Error | undefined;
  let stop = false;
  let seq = 0;
  const worker = async (): Promise<void> => {
    while (!stop && !failure) {
      const i = seq++;
      const c = ctx.open();
      try {
        await c.connect(`rate-${i}`, 60, 10_000, credentials(i % USERS));
        if (counting) connects++;
      } catch (e) {
        failure ??= e as Error;
      }
      c.socket.destroy();
      ctx.conns.splice(ctx.conns.indexOf(c), 1);
    }
  };
  const workers = Array.from({ length: CONNECT_WORKERS }, worker);
  await new Promise((r) => setTimeout(r, opts.warmupS * 1000));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, opts.durationS * 1000));
  counting = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  if (failure) throw failure;
  return { perS: connects / seconds, connects };
}

function connectScenario(name: string, title: string, prepare: Scenario['prepare'], credentials: (i: number) => { username: string; password: string } | undefined): Scenario {
  return {
    name,
    title,
    family: 'security',
    timeoutS: (o) => o.warmupS + o.durationS + 60,
    timed: true,
    prepare,
    async run(ctx) {
      const { perS, connects } = await connectRate(ctx, credentials);
      return { metrics: [{ key: name, label: `${title} (conn/s)`, value: perS, better: 'higher', digits: 0 }], extra: { connects } };
    },
  };
}

const user = (i: number): { username: string; password: string } => ({ username: `user-${i}`, password: PASSWORD(i) });

/** A file Mosquitto can read: run as root, it drops to the mosquitto user. */
function readable(dir: string, name: string, text: string): string {
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** Mosquitto's password file for the same users (mosquitto_passwd hashes them: PBKDF2-SHA512). */
function mosquittoPasswords(dir: string): string[] {
  const file = readable(dir, 'passwords', Array.from({ length: USERS }, (_, i) => `user-${i}:${PASSWORD(i)}\n`).join(''));
  execFileSync('mosquitto_passwd', ['-U', file]);
  fs.chmodSync(file, 0o644);
  return ['allow_anonymous false', `password_file ${file}`];
}

function builtIn(algorithm: Record<string, unknown>): Scenario['prepare'] {
  return async (broker: BrokerName): Promise<Prepared | undefined> => {
    const dir = tempDir('bench-auth');
    if (broker === 'mosquitto') return { mosquittoConf: mosquittoPasswords(dir) };
    if (broker !== 'tributary') return undefined;
    const csv = path.join(dir, 'users.csv');
    fs.writeFileSync(csv, `user_id,password,is_superuser\n${Array.from({ length: USERS }, (_, i) => `user-${i},${PASSWORD(i)},false\n`).join('')}`);
    const chain = [{ mechanism: 'password_based', backend: 'built_in_database', user_id_type: 'username', password_hash_algorithm: algorithm, bootstrap_file: csv, bootstrap_type: 'plain' }];
    return { env: { TRIBUTARY_AUTHENTICATION: JSON.stringify(chain) } };
  };
}

const postgres: Scenario['prepare'] = async (broker) => {
  if (broker !== 'tributary') return undefined;
  const pg = await startPostgres(async ({ query }) => {
    await query('CREATE TABLE mqtt_user (username text PRIMARY KEY, password_hash text, salt text, is_superuser boolean)');
    for (let i = 0; i < USERS; i++) {
      const salt = `salt${i}`;
      const hash = createHash('sha256').update(PASSWORD(i) + salt).digest('hex');
      await query('INSERT INTO mqtt_user VALUES ($1, $2, $3, false)', [`user-${i}`, hash, salt]);
    }
  });
  const chain = [
    {
      mechanism: 'password_based',
      backend: 'postgresql',
      server: `${pg.host}:${pg.port}`,
      database: pg.database,
      username: pg.user,
      password: pg.password,
      query: 'SELECT password_hash, salt, is_superuser FROM mqtt_user WHERE username = ${username} LIMIT 1',
      password_hash_algorithm: { name: 'sha256', salt_position: 'suffix' },
    },
  ];
  return { env: { TRIBUTARY_AUTHENTICATION: JSON.stringify(chain) }, cleanup: () => pg.stop() };
};

const JWT_SECRET = 'bench-jwt-secret';

/** An HS256 token for user i, valid for an hour. */
function jwt(i: number): string {
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ username: `user-${i}`, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

const tokens = Array.from({ length: USERS }, (_, i) => jwt(i));

const jwtPrepare: Scenario['prepare'] = async (broker) => {
  if (broker !== 'tributary') return undefined;
  const chain = [{ mechanism: 'jwt', algorithm: 'hmac-based', secret: JWT_SECRET, from: 'password', verify_claims: { username: '${username}' } }];
  return { env: { TRIBUTARY_AUTHENTICATION: JSON.stringify(chain) } };
};

/** 999 rules that do not match the bench's topics, then the one that allows them: the worst case for a first-match list. */
const aclFile: Scenario['prepare'] = async (broker) => {
  const dir = tempDir('bench-acl');
  if (broker === 'mosquitto') {
    // Mosquitto's general rules (no user line) apply to anonymous clients too.
    const file = readable(dir, 'acl', `${Array.from({ length: ACL_RULES - 1 }, (_, i) => `topic read other/${i}/#\n`).join('')}topic readwrite bench/#\n`);
    return { mosquittoConf: ['allow_anonymous true', `acl_file ${file}`] };
  }
  if (broker !== 'tributary') return undefined;
  const file = path.join(dir, 'acl.conf');
  fs.writeFileSync(file, `${Array.from({ length: ACL_RULES - 1 }, (_, i) => `{deny, all, publish, ["other/${i}/#"]}.\n`).join('')}{allow, all, all, ["bench/#"]}.\n`);
  return { env: { TRIBUTARY_AUTHORIZATION__SOURCES: JSON.stringify([{ type: 'file', path: file }]), TRIBUTARY_AUTHORIZATION__NO_MATCH: 'deny' } };
};

const anonymous: Scenario['prepare'] = async (broker) => (broker === 'tributary' || broker === 'mosquitto' ? {} : undefined);

export const SECURITY_SCENARIOS: Scenario[] = [
  connectScenario('connect-anon', 'connect rate, anonymous', anonymous, () => undefined),
  connectScenario('connect-sha256', 'connect rate, built-in sha256', builtIn({ name: 'sha256', salt_position: 'suffix' }), user),
  connectScenario('connect-bcrypt', 'connect rate, built-in bcrypt', builtIn({ name: 'bcrypt', salt_rounds: 10 }), user),
  connectScenario('connect-postgres', 'connect rate, PostgreSQL', postgres, user),
  connectScenario('connect-jwt', 'connect rate, JWT', jwtPrepare, (i) => ({ username: `user-${i}`, password: tokens[i]! })),
  {
    name: 'publish-acl-1000',
    title: 'fan-in qos1 with a 1,000-rule ACL file',
    family: 'security',
    timeoutS: (o) => o.warmupS + o.durationS + 30,
    timed: true,
    prepare: aclFile,
    async run(ctx) {
      const r = await runFlow(ctx, { publishers: 10, subscribers: 1, qos: 1, topic: 'bench/fanin', e2eWindow: 100 });
      if (r.received === 0) throw new Error('nothing delivered (ACL refused the bench topics?)');
      return { metrics: [{ key: 'publish-acl-1000', label: 'fan-in 10->1 qos1, 1,000 ACL rules (msg/s)', value: r.received / r.seconds, better: 'higher', digits: 0 }], extra: { received: r.received } };
    },
  },
];
