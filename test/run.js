#!/usr/bin/env node
'use strict';
// `npm test`: every unit, integration and end-to-end test, compiled by `npm run build`.
// Real components only: the tests spawn the broker, Mosquitto's clients and (later) Kafka.
const { spawnSync, spawn } = require('node:child_process');
const { readdirSync, statSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const need = [
  ['mosquitto_pub', 'mosquitto-clients'],
  ['mosquitto_sub', 'mosquitto-clients'],
];
const missing = need.filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0);
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
const child = spawn(process.execPath, ['--test', '--test-concurrency=4', '--test-reporter=spec', ...selected], { stdio: 'inherit', cwd: root });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
