import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigError, ConfigProblem, record } from '@tributary/common';
import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { AclRule, decide } from '../acl';
import type { AuthzSource, AuthzOutcome, ProviderSpec } from '../types';
import { AclSyntaxError, parseAclConf } from './acl-conf';

/** `{"type": "file", "path": "acl.conf"}`: EMQX's acl.conf; a relative path resolves against the working directory. */
export interface FileSourceConfig {
  path: string;
}

/**
 * Rules from an acl.conf file (acl-conf.ts), read once at start. A file that cannot be read or
 * does not parse stops start-up with a ConfigError naming the file and line.
 */
export class FileSource implements AuthzSource {
  readonly type = 'file';
  /** The compiled rules, in file order (empty until start). */
  rules: readonly AclRule[] = [];
  private readonly path: string;

  constructor(config: FileSourceConfig) {
    this.path = resolve(config.path);
  }

  async start(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new ConfigError(`authorization.sources: file: cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    try {
      this.rules = parseAclConf(text);
    } catch (err) {
      if (err instanceof AclSyntaxError) throw new ConfigError(`authorization.sources: file: ${this.path}:${err.line}:${err.col}: ${err.expected}`, { cause: err });
      throw err;
    }
  }

  authorize(client: ClientInfo, req: AuthorizeRequest): AuthzOutcome {
    return decide(this.rules, client, req);
  }
}

/** The `file` authorization source (providers.ts). */
export const fileSourceSpec: ProviderSpec<FileSourceConfig, AuthzSource> = {
  parse(raw) {
    const c = record<FileSourceConfig>(raw, { path: 'string' });
    if (c instanceof ConfigProblem) return c;
    return c.path ? c : new ConfigProblem('field "path" must name the acl.conf file');
  },
  create: (config) => new FileSource(config),
};
