#!/usr/bin/env node
'use strict';
// `npm test`: every unit, integration and end-to-end test, compiled by `npm run build`.
// Real components only: the tests spawn the broker, Mosquitto's clients and (later) Kafka.
const { spawnSync, spawn } = require('node:child_process');
const { readdirSync, statSync, existsSync, mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const root = join(__dirname, '..');
const need = [
  ['mosquitto_pub', 'mosquitto-clients'],
  ['mosquitto_sub', 'mosquitto-clients'],
];
// Kafka tests run against TRIBUTARY_TEST_KAFKA, or against a broker this script starts
// (deploy/kafka/kafka.sh: Apache Kafka from Maven Central, KRaft, loopback), which needs Java and Maven.
if (!process.env.TRIBUTARY_TEST_KAFKA) need.push(['java', 'openjdk-17-jre-headless'], ['mvn', 'maven']);
// The PostgreSQL auth tests start their own server (test/helpers/postgres.ts) from Debian's binaries.
const hasPostgres = existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(join('/usr/lib/postgresql', v, 'bin', 'initdb')));
const missing = need.filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0);
if (!hasPostgres) missing.push(['/usr/lib/postgresql/*/bin/initdb', 'postgresql']);
// The dashboard's browser test (test/integration/dashboard.test.ts) drives Debian's chromium.
if (!existsSync('/usr/bin/chromium')) missing.push(['/usr/bin/chromium', 'chromium']);
if (missing.length) {
  const pkgs = [...new Set(missing.map(([, p]) => p))].join(' ');
  console.error(`npm test needs ${missing.map(([c]) => c).join(', ')}: install them with\n  apt-get update && apt-get install -y ${pkgs}\n(.ci/run does this on CI).`);
  process.exit(1);
}

function collect(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const group of ['libs', 'services']) {
  for (const pkg of readdirSync(join(root, group))) collect(join(root, group, pkg, 'dist', 'test'), files);
}
collect(join(root, 'test', 'dist'), files);
const filter = process.argv[2];
const selected = filter ? files.filter((f) => f.includes(filter)) : files;
if (selected.length === 0) {
  console.error(`no test files found${filter ? ` matching "${filter}"` : ''}; did the build run?`);
  process.exit(1);
}

/** Starts the local Kafka unless one is configured; returns its stop function. */
function startKafka() {
  if (process.env.TRIBUTARY_TEST_KAFKA) return () => undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tributary-kafka-'));
  const script = join(root, 'deploy', 'kafka', 'kafka.sh');
  console.error('[test] starting a local Kafka (deploy/kafka/kafka.sh; the first run downloads it with Maven) ...');
  const started = Date.now();
  const out = spawnSync('bash', [script, 'start', dir], { env: { ...process.env, KAFKA_OWNER_PID: String(process.pid) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (out.status !== 0) {
    console.error('[test] could not start Kafka; the Kafka tests cannot run (set TRIBUTARY_TEST_KAFKA=host:port to use another broker)');
    process.exit(1);
  }
  const address = out.stdout.trim().split('\n').pop();
  process.env.TRIBUTARY_TEST_KAFKA = address;
  console.error(`[test] Kafka at ${address} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return () => {
    spawnSync('bash', [script, 'stop', dir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
}

// Deadlines, so a hang fails and says where: every test and hook that sets none gets
// TRIBUTARY_TEST_TIMEOUT_MS (test/per-test-timeout.js, preloaded into each file's process), and
// --test-timeout bounds each file (what Node 20 applies it to when running files in processes).
const FILE_TIMEOUT_MS = 600_000;
const stopKafka = startKafka();
const child = spawn(
  process.execPath,
  ['--require', join(__dirname, 'per-test-timeout.js'), '--test', `--test-timeout=${FILE_TIMEOUT_MS}`, '--test-concurrency=4', '--test-reporter=spec', ...selected],
  { stdio: 'inherit', cwd: root },
);
const forward = (sig) => child.kill(sig);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('exit', (code, signal) => {
  stopKafka();
  process.exit(code ?? (signal ? 1 : 0));
});
