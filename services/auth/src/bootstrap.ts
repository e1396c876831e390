import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, Logger } from '@tributary/common';
import type { StoredUser, UserStore } from './users';

/**
 * The built-in database's `bootstrap_file`: a CSV file with a header line naming its columns
 * (EMQX's format), read once at start. Fields may be double-quoted ("a,b", "say ""hi""").
 */

/** One data line: its fields by column name, and its line number for messages. */
export interface BootstrapRow {
  line: number;
  fields: Record<string, string>;
}

/** Where a bootstrap problem is reported: the authenticator and key, e.g. `password_based:built_in_database bootstrap_file`. */
export type BootstrapProblem = (message: string) => ConfigError;

/**
 * Reads `file` (relative paths from the working directory) and checks its header has every
 * `required` column and no column outside `required` and `optional`. Throws through `problem`.
 */
export function readBootstrapCsv(file: string, required: readonly string[], optional: readonly string[], problem: BootstrapProblem): BootstrapRow[] {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw problem(`${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const headerAt = lines.findIndex((l) => l.trim() !== '');
  if (headerAt < 0) throw problem(`${path} is empty (expected a header line: ${required.join(',')})`);
  const header = splitCsvLine(lines[headerAt]!).map((h) => h?.trim());
  for (const [i, h] of header.entries()) {
    if (h === undefined) throw problem(`${path} line ${headerAt + 1}: unbalanced quotes in the header`);
    if (!required.includes(h) && !optional.includes(h)) throw problem(`${path} line ${headerAt + 1}: unknown column "${h}" (column ${i + 1}; expected ${[...required, ...optional].join(',')})`);
  }
  const missing = required.find((r) => !header.includes(r));
  if (missing) throw problem(`${path} line ${headerAt + 1}: the header has no column "${missing}" (expected ${required.join(',')})`);
  const rows: BootstrapRow[] = [];
  for (let i = headerAt + 1; i < lines.length; i++) {
    const raw = lines[i]!;
    if (raw.trim() === '') continue;
    const values = splitCsvLine(raw);
    if (values.some((v) => v === undefined)) throw problem(`${path} line ${i + 1}: unbalanced quotes`);
    if (values.length !== header.length) throw problem(`${path} line ${i + 1}: ${values.length} fields, the header has ${header.length}`);
    const fields: Record<string, string> = {};
    header.forEach((h, j) => (fields[h!] = values[j]!));
    if (!fields.user_id) throw problem(`${path} line ${i + 1}: user_id is empty`);
    rows.push({ line: i + 1, fields });
  }
  return rows;
}

/** How one authenticator bootstraps its users. */
export interface BootstrapSpec {
  /** Names the authenticator in messages: "password_based:built_in_database". */
  authenticator: string;
  file: string;
  required: readonly string[];
  optional: readonly string[];
  store: UserStore;
  logger: Logger;
  /** A data line's record; throws through `problem` when a field is wrong. */
  record(row: BootstrapRow, isSuperuser: boolean, problem: BootstrapProblem): StoredUser | Promise<StoredUser>;
}

/**
 * Reads a bootstrap file and inserts the users that do not exist yet (EMQX: existing users,
 * perhaps changed since, are left alone). A missing or bad file is a ConfigError naming the
 * authenticator, the key and the line.
 */
export async function bootstrapUsers(spec: BootstrapSpec): Promise<void> {
  const problem = (m: string): ConfigError => new ConfigError(`authentication ${spec.authenticator}: bootstrap_file ${m}`);
  const rows = readBootstrapCsv(spec.file, spec.required, spec.optional, problem);
  // Over Kafka: see what other processes wrote before deciding what is missing.
  await spec.store.table.sync?.();
  const users = [];
  const at = (row: BootstrapRow): string => `${resolve(spec.file)} line ${row.line}`;
  for (const row of rows) {
    const isSuperuser = csvBool(row.fields.is_superuser);
    if (isSuperuser === undefined) throw problem(`${at(row)}: is_superuser must be true or false`);
    const userId = row.fields.user_id!;
    if (spec.store.record(userId)) continue;
    users.push({ userId, record: await spec.record(row, isSuperuser, (m) => problem(`${at(row)}: ${m}`)) });
  }
  const added = await spec.store.insertMissing(users);
  spec.logger.info({ authenticator: spec.authenticator, file: spec.file, added, existing: rows.length - added }, 'bootstrap users loaded');
}

/** A CSV `is_superuser` value: true/false (any case), 1/0, or empty (false); undefined otherwise. */
export function csvBool(value: string | undefined): boolean | undefined {
  const v = (value ?? '').trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0' || v === '') return false;
  return undefined;
}

/** Splits one CSV line; a field with unbalanced quotes is undefined. Quoted newlines are not supported. */
function splitCsvLine(line: string): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) return [...out, undefined];
        value += line.slice(j, q);
        if (line[q + 1] === '"') {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push(value);
      if (i < line.length && line[i] !== ',') return [...out, undefined];
    } else {
      const comma = line.indexOf(',', i);
      const end = comma < 0 ? line.length : comma;
      out.push(line.slice(i, end));
      i = end;
    }
    if (i >= line.length) return out;
    i++; // the comma
  }
}
