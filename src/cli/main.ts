// The `sidecar` command: run, validate, schema.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ConfigError, formatIssue, formatIssueWithExcerpt, type ConfigIssue } from '../config/errors.js';
import { loadConfigOffThread } from '../config/load-worker.js';
import { createLogger } from '../observability/logger.js';
import { Sidecar } from '../orchestrator/sidecar.js';
import type { Config } from '../config/schema.js';

const VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

const HELP: Record<string, string> = {
  main: `sidecar ${VERSION}: a service-mesh sidecar proxy

Usage: sidecar <command> [options]

Commands:
  run        Run the proxy (the embedded default config when -c is not given)
  validate   Check a config file; exit 0 when valid, 2 with every error when not
  schema     Print the JSON Schema of the config file
  iptables   Print (or --apply) the rules that redirect traffic through the sidecar (sidecar iptables --help)
  certs      Mesh CA: init-ca, issue SPIFFE workload certificates, inspect a certificate (sidecar certs --help)
  config     config push: validate a file and publish it to an etcd key for config_source (sidecar config push --help)
  explain    Why a request failed or was slow: asks the running sidecar's admin port (sidecar explain --help)

Options:
  -h, --help     Show help (also: sidecar <command> --help)
  -v, --version  Print the version
`,
  run: `Usage: sidecar run [-c sidecar.yaml] [--check] [--inbound-port N] [--outbound-port N] [--admin-port N] [--app-address HOST:PORT]

Runs the proxy. Without -c it runs the embedded default: inbound listener 127.0.0.1:15006 -> app at
127.0.0.1:8080, outbound forward proxy on 127.0.0.1:15001, admin on 127.0.0.1:15000.
SIGHUP or a change to the file reloads the config; SIGUSR1 reopens the access-log file (rotation).
SIGTERM/SIGINT drain: /ready fails at once, listeners keep accepting for drain_delay (answering with
Connection: close / GOAWAY), then stop accepting; in-flight requests get drain_timeout; exit 0.
A second signal ends drain_delay early; one after that exits at once.

Options:
  -c, --config FILE          Config file (YAML)
  --check                    Validate the config as \`sidecar validate\` does, then exit (0 valid, 2 not); bind nothing
  --inbound-port N           Embedded default only: the inbound listener's port (as SIDECAR_INBOUND_PORT)
  --outbound-port N          Embedded default only: the outbound forward proxy's port (as SIDECAR_OUTBOUND_PORT)
  --admin-port N             Embedded default only: the admin server's port (as SIDECAR_ADMIN_PORT)
  --app-address HOST:PORT    Embedded default only: where the app listens (as SIDECAR_APP_ADDRESS)
  -h, --help                 Show this help
`,
  validate: `Usage: sidecar validate FILE   (or: sidecar validate -c FILE)

Validates a config file as \`sidecar run\` would load it, and more: a listener on the admin port, two listeners
on one address and port, a weighted route whose weights are all 0, an empty file or one without listeners are
errors; a route that can never match (an earlier route takes all its requests) is a warning.
Exit 0 with a one-line summary (and any warnings) when valid; exit 2 and one line per error,
formatted FILE:LINE:COL path.to.key: message, when not.

Options:
  -c, --config FILE   Config file (YAML)
  -h, --help          Show this help
`,
  schema: `Usage: sidecar schema

Prints the JSON Schema (draft 2020-12) of the config file, for editors and CI checks.
`,
};

/** Command-line overrides for the embedded default, each the same as setting its SIDECAR_* variable. */
const DEFAULT_OVERRIDES = {
  'inbound-port': 'SIDECAR_INBOUND_PORT',
  'outbound-port': 'SIDECAR_OUTBOUND_PORT',
  'admin-port': 'SIDECAR_ADMIN_PORT',
  'app-address': 'SIDECAR_APP_ADDRESS',
} as const;
type OverrideOption = keyof typeof DEFAULT_OVERRIDES;

interface Options {
  config?: string | undefined;
  check?: boolean | undefined;
  help?: boolean | undefined;
  version?: boolean | undefined;
  'inbound-port'?: string | undefined;
  'outbound-port'?: string | undefined;
  'admin-port'?: string | undefined;
  'app-address'?: string | undefined;
}

async function main(argv: string[]): Promise<number> {
  // Its own options and subcommands; the X.509 code loads only here, never in \`run\`.
  if (argv[0] === 'certs') return (await import('./certs.js')).certsCommand(argv.slice(1));
  if (argv[0] === 'config') return (await import('./config-push.js')).configCommand(argv.slice(1));
  if (argv[0] === 'explain') return (await import('./explain.js')).explainCommand(argv.slice(1));
  if (argv[0] === 'iptables') return (await import('./iptables/command.js')).iptablesCommand(argv.slice(1));
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const rest = command ? argv.slice(1) : argv;
  let values: Options;
  let positionals: string[];
  const usage = (message: string): number => {
    process.stderr.write(`sidecar${command ? ` ${command}` : ''}: ${message}\n\n${HELP[command ?? 'main'] ?? HELP.main}`);
    return 2;
  };
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        'inbound-port': { type: 'string' },
        'outbound-port': { type: 'string' },
        'admin-port': { type: 'string' },
        'app-address': { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (values.help || command === 'help') {
    process.stdout.write(HELP[command && command !== 'help' ? command : 'main'] ?? HELP.main!);
    return 0;
  }
  // Only validate takes a plain argument (the file); anywhere else a stray word is a mistake worth stopping for.
  if (positionals.length > (command === 'validate' ? 1 : 0)) return usage(`unexpected argument "${positionals[command === 'validate' ? 1 : 0]}"`);
  const overrides = (Object.keys(DEFAULT_OVERRIDES) as OverrideOption[]).filter((o) => values[o] !== undefined);
  if (command !== 'run' && (overrides.length || values.check)) return usage(`--${overrides[0] ?? 'check'} is an option of "sidecar run"`);
  switch (command) {
    case 'run': {
      if (overrides.length && values.config !== undefined) {
        return usage(`--${overrides[0]} applies to the embedded default only; with -c, set it in ${values.config} (the file may use \${${DEFAULT_OVERRIDES[overrides[0]!]}})`);
      }
      for (const o of overrides) {
        const value = values[o]!;
        const bad = o === 'app-address' ? !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(value) : !/^\d{1,5}$/.test(value) || Number(value) > 65535;
        if (bad) return usage(`--${o} expects ${o === 'app-address' ? 'HOST:PORT, e.g. 127.0.0.1:8080' : 'a port number from 0 to 65535'}, got "${value}"`);
        process.env[DEFAULT_OVERRIDES[o]] = value;
      }
      return values.check ? check(values.config, true) : run(values.config);
    }
    case 'validate': {
      const [file] = positionals;
      if (file !== undefined && values.config !== undefined && file !== values.config) return usage('give the file once: as an argument or with -c');
      if (file === undefined && values.config === undefined) return usage('a config file is required: sidecar validate FILE');
      return check(file ?? values.config, false);
    }
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

/**
 * `validate FILE` and `run --check`: every error (exit 2) or a summary (exit 0), warnings either way. With no file
 * (`run --check` alone) it checks the embedded default with the overrides applied.
 */
async function check(file: string | undefined, embeddedAllowed: boolean): Promise<number> {
  const { checkConfig, loadDefaultConfig, readConfigText } = await import('../config/load.js');
  const { nothingToServeIssues } = await import('../config/checks.js');
  const { formatIssue, formatIssueWithExcerpt } = await import('../config/errors.js');
  const label = file ?? '(embedded default)';
  try {
    let checked: { config: Config; warnings: readonly ConfigIssue[] };
    if (file === undefined && embeddedAllowed) {
      const loaded = loadDefaultConfig();
      checked = { config: loaded.config, warnings: loaded.warnings ?? [] };
    } else {
      const text = readConfigText(file!);
      checked = checkConfig(text, file!);
      const empty = nothingToServeIssues(text, checked.config, file!);
      if (empty.length) throw new ConfigError([...empty]);
    }
    for (const w of checked.warnings) process.stderr.write(`${formatIssue({ ...w, message: `warning: ${w.message}` })}\n`);
    const { config } = checked;
    const routes = config.listeners.reduce((n, l) => n + l.routes.length, 0);
    const warned = checked.warnings.length ? `, ${checked.warnings.length} warning${checked.warnings.length === 1 ? '' : 's'}` : '';
    process.stdout.write(`${label}: valid (${config.listeners.length} listeners, ${routes} routes, ${config.clusters.length} clusters${warned})\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.issues.map(formatIssueWithExcerpt).join('\n')}\n`);
      return 2;
    }
    throw err;
  }
}

async function run(file: string | undefined): Promise<number> {
  // SIGHUP's default action ends the process: take it over before anything else, so one sent during startup (or
  // the moment "sidecar started" is out) reloads once the sidecar runs instead of killing it.
  let running: Sidecar | undefined;
  let hupDuringStart = false;
  process.on('SIGHUP', () => {
    if (running) void running.reload('SIGHUP');
    else hupDuringStart = true;
  });
  let loaded: Awaited<ReturnType<typeof loadConfigOffThread>>;
  try {
    loaded = await loadConfigOffThread(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.issues.map(formatIssueWithExcerpt).join('\n')}\n`);
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
  running = sidecar;
  if (hupDuringStart) void sidecar.reload('SIGHUP');
  process.on('SIGUSR1', () => sidecar.reopenLogs('SIGUSR1'));
  // The process runs until SIGTERM/SIGINT: a reload that leaves no socket or watcher open (no listeners, admin
  // disabled, watch off) must not let the event loop run dry and exit 0. Exit is explicit, through process.exit.
  setInterval(() => {}, 2 ** 30);
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
        listeners: cfg.listeners.map((l) => `${l.name} ${l.mode} ${l.tls ? 'https' : 'http'}://${l.address}:${sidecar.listenerPort(l.name)}`),
        admin: cfg.admin.enabled ? `http://${cfg.admin.address}:${sidecar.adminPort}` : 'disabled',
      },
      'sidecar started',
    );
    if (loaded.warnings?.length) logger.warn({ warnings: loaded.warnings.map(formatIssue) }, 'the config is valid but looks wrong');
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
