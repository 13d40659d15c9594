// The `sidecar` command: run, validate, schema.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import { loadConfigOffThread } from '../config/load-worker.js';
import { createLogger } from '../observability/logger.js';
import { Sidecar } from '../runtime/sidecar.js';

const VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

const HELP: Record<string, string> = {
  main: `sidecar ${VERSION}: a service-mesh sidecar proxy

Usage: sidecar <command> [options]

Commands:
  run        Run the proxy (the embedded default config when -c is not given)
  validate   Check a config file; exit 0 when valid, 2 with every error when not
  schema     Print the JSON Schema of the config file

Options:
  -h, --help     Show help (also: sidecar <command> --help)
  -v, --version  Print the version
`,
  run: `Usage: sidecar run [-c sidecar.yaml]

Runs the proxy. Without -c it runs the embedded default: inbound listener 127.0.0.1:15006 -> app at
127.0.0.1:8080, outbound forward proxy on 127.0.0.1:15001, admin on 127.0.0.1:15000.
SIGHUP or a change to the file reloads the config; SIGUSR1 reopens the access-log file (rotation).
SIGTERM/SIGINT drain: /ready fails at once, listeners keep accepting for drain_delay (answering with
Connection: close / GOAWAY), then stop accepting; in-flight requests get drain_timeout; exit 0.
A second signal ends drain_delay early; one after that exits at once.

Options:
  -c, --config FILE   Config file (YAML)
  -h, --help          Show this help
`,
  validate: `Usage: sidecar validate -c sidecar.yaml

Validates a config file. Exit 0 with a one-line summary when valid; exit 2 and one line per error,
formatted FILE:LINE:COL path.to.key: message, when not.

Options:
  -c, --config FILE   Config file (YAML)
  -h, --help          Show this help
`,
  schema: `Usage: sidecar schema

Prints the JSON Schema (draft 2020-12) of the config file, for editors and CI checks.
`,
};

async function main(argv: string[]): Promise<number> {
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const rest = command ? argv.slice(1) : argv;
  let values: { config?: string | undefined; help?: boolean | undefined; version?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`sidecar: ${(err as Error).message}\n\n${HELP[command ?? 'main'] ?? HELP.main}`);
    return 2;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (values.help || command === 'help') {
    process.stdout.write(HELP[command && command !== 'help' ? command : 'main'] ?? HELP.main!);
    return 0;
  }
  switch (command) {
    case 'run':
      return run(values.config);
    case 'validate':
      return validate(values.config);
    case 'schema': {
      const { configJsonSchema } = await import('../config/json-schema.js');
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return 0;
    }
    case undefined:
      // No command is a usage error (scripts must not mistake it for success); --help is the way to ask for help.
      process.stderr.write(`sidecar: a command is required\n\n${HELP.main}`);
      return 2;
    default:
      process.stderr.write(`sidecar: unknown command "${command}"\n\n${HELP.main}`);
      return 2;
  }
}

async function validate(file: string | undefined): Promise<number> {
  if (!file) {
    process.stderr.write(`sidecar validate: -c FILE is required\n\n${HELP.validate}`);
    return 2;
  }
  const { loadConfigFile } = await import('../config/load.js');
  try {
    const { config } = loadConfigFile(file);
    const routes = config.listeners.reduce((n, l) => n + l.routes.length, 0);
    process.stdout.write(`${file}: valid (${config.listeners.length} listeners, ${routes} routes, ${config.clusters.length} clusters)\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

async function run(file: string | undefined): Promise<number> {
  let loaded: Awaited<ReturnType<typeof loadConfigOffThread>>;
  try {
    loaded = await loadConfigOffThread(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger(loaded.config.log_level);
  let sidecar: Sidecar;
  let quit: (() => void) | undefined;
  try {
    sidecar = await Sidecar.start({ configPath: file, logger, loaded, onQuit: () => quit?.() });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    logger.fatal({ err: (err as Error).message }, 'cannot start');
    return 1;
  }
  process.on('SIGHUP', () => void sidecar.reload('SIGHUP'));
  process.on('SIGUSR1', () => sidecar.reopenLogs('SIGUSR1'));
  // One request must never take the process down: log and carry on.
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        if (sidecar.endDrainDelay()) {
          logger.warn({ signal }, 'second signal: drain_delay cut short, no longer accepting');
          return;
        }
        logger.warn({ signal }, 'another signal: exiting now');
        resolve(1);
        return;
      }
      stopping = true;
      sidecar.shutdown(signal).then(
        () => {
          logger.info('stopped');
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    quit = () => stop('admin POST /quit');
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // Announced only now: whoever waits for this line (a test, a supervisor) may signal at once, and a SIGTERM
    // arriving before the handlers above would kill the process without a drain.
    const cfg = sidecar.config;
    logger.info(
      {
        config: file ?? '(embedded default)',
        listeners: cfg.listeners.map((l) => `${l.name} ${l.mode} http://${l.address}:${sidecar.listenerPort(l.name)}`),
        admin: cfg.admin.enabled ? `http://${cfg.admin.address}:${sidecar.adminPort}` : 'disabled',
      },
      'sidecar started',
    );
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (code !== 0 || process.argv[2] === 'run') setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`sidecar: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
