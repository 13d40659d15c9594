// `sidecar config push -c FILE --etcd URL --key KEY`: validates FILE as the store's document (as config_source would
// see it) and publishes it to etcd; an invalid file is refused and nothing is written.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const HELP = `Usage: sidecar config push -c FILE --etcd URL[,URL...] --key KEY [--bootstrap FILE]

Validates FILE as a sidecar with config_source would (FILE_ONLY keys such as admin are refused; with --bootstrap,
the bootstrap file is laid under it as the running sidecar does), then writes it to KEY in etcd. Exit 0 and the
store's new revision when published; 2 and every error (KEY:LINE:COL path: message) when invalid, nothing written;
1 when the store cannot be reached.
`;

export async function configCommand(argv: readonly string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP);
    return 0;
  }
  if (argv[0] !== 'push') {
    process.stderr.write(`sidecar config: ${argv[0] === undefined ? 'a subcommand is required' : `unknown subcommand "${argv[0]}"`}\n\n${HELP}`);
    return 2;
  }
  let values: { config?: string; etcd?: string; key?: string; bootstrap?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv.slice(1)],
      options: { config: { type: 'string', short: 'c' }, etcd: { type: 'string' }, key: { type: 'string' }, bootstrap: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`sidecar config push: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.config === undefined || values.etcd === undefined || values.key === undefined) {
    process.stderr.write(`sidecar config push: -c, --etcd and --key are required\n\n${HELP}`);
    return 2;
  }
  const { ConfigError, formatIssueWithExcerpt } = await import('../config/errors.js');
  const { checkConfig, readConfigText } = await import('../config/load.js');
  const { composeConfig, relabel } = await import('../config/compose.js');
  const key = values.key;
  const label = `etcd:${key}`;
  let text: string;
  try {
    text = readConfigText(values.config);
    const bootstrap = values.bootstrap === undefined ? '' : readConfigText(values.bootstrap);
    const composed = composeConfig(bootstrap, text, label);
    try {
      checkConfig(composed.text, label);
    } catch (err) {
      if (err instanceof ConfigError) throw new ConfigError(relabel(err.issues, composed.storeLines, values.bootstrap ?? '(bootstrap)'));
      throw err;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.issues.map(formatIssueWithExcerpt).join('\n')}\nsidecar config push: ${values.config} is invalid; nothing was published\n`);
      return 2;
    }
    throw err;
  }
  const { etcdClient, within } = await import('../discovery/etcd.js');
  const client = etcdClient(values.etcd.split(','), 3_000);
  try {
    const res = await within(client.put(key).value(readFileSync(values.config, 'utf8')).exec(), 5_000, 'put');
    process.stdout.write(`${values.config}: valid; published to ${key} at revision ${res.header.revision}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`sidecar config push: cannot publish to ${values.etcd}: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  } finally {
    client.close();
  }
}
