import { ConfigError, createLogger, describeConfig, loadConfig } from '@tributary/common';
import { TributaryNode, VERSION } from './node';

const HELP = `tributary ${VERSION} — an MQTT broker whose backbone is Apache Kafka

Usage: tributary <command> [--config <file.json>]

Commands:
  start           run every service in one process (embedded backbone by default)
  config          print every configuration key, its default and its environment variable
  version         print the version
  help, --help    show this help

Configuration: defaults, then the JSON file given with --config (or TRIBUTARY_CONFIG_FILE),
then environment variables TRIBUTARY_<PATH> with __ between levels, for example
  TRIBUTARY_LISTENERS__TCP__DEFAULT__BIND=0.0.0.0:1883
  TRIBUTARY_NODE__DATA_DIR=/var/lib/tributary
See docs/configuration.md.
`;

function parseArgs(argv: string[]): { command: string; configFile?: string } {
  let command = 'help';
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') command = 'help';
    else if (a === '--config' || a === '-c') configFile = argv[++i];
    else if (a.startsWith('--config=')) configFile = a.slice('--config='.length);
    else if (!a.startsWith('-')) command = a;
    else throw new Error(`unknown option ${a}`);
  }
  return { command, configFile };
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`tributary: ${(err as Error).message}\n\n${HELP}`);
    process.exit(2);
  }
  switch (args.command) {
    case 'help':
      process.stdout.write(HELP);
      return;
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return;
    case 'config':
      for (const k of describeConfig()) process.stdout.write(`${k.key} = ${JSON.stringify(k.default)}\n    ${k.env}\n    ${k.doc}\n`);
      return;
    case 'start':
      return start(args.configFile);
    default:
      process.stderr.write(`tributary: unknown command "${args.command}"\n\n${HELP}`);
      process.exit(2);
  }
}

async function start(configFile: string | undefined): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig({ file: configFile });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tributary: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(loaded.config.log.level, { node: loaded.config.node.name });
  for (const w of loaded.warnings) log.warn(w);
  const node = new TributaryNode(loaded.config, log);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    node.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await node.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'start-up failed');
    await node.stop().catch(() => undefined);
    process.exit(1);
  }
}
