// `sidecar explain <request-id>`: asks the running sidecar's admin port for a request's story and prints it.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export const EXPLAIN_HELP = `Usage: sidecar explain <request-id> [--admin HOST:PORT] [--json] [--token-file FILE]

Asks the running sidecar (admin port, default 127.0.0.1:15000) why a request failed or took so long, and prints
its story: route, cluster, every attempt, retry and breaker decisions, deadline and the final cause. The id is the
request's x-request-id (also in the access log). The request must still be in the admin.debug_requests rings.
  --admin HOST:PORT   the admin address (default 127.0.0.1:15000; env SIDECAR_ADMIN)
  --json              print the JSON record instead of the story
  --token-file FILE   the admin bearer token, when admin.token_file is set (env SIDECAR_ADMIN_TOKEN also works)
`;

export async function explainCommand(argv: string[]): Promise<number> {
  let values: { admin?: string | undefined; json?: boolean | undefined; 'token-file'?: string | undefined; help?: boolean | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { admin: { type: 'string' }, json: { type: 'boolean' }, 'token-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`sidecar explain: ${(err as Error).message}\n\n${EXPLAIN_HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(EXPLAIN_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    process.stderr.write(`sidecar explain: give exactly one request id\n\n${EXPLAIN_HELP}`);
    return 2;
  }
  const admin = values.admin ?? process.env.SIDECAR_ADMIN ?? '127.0.0.1:15000';
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(admin);
  if (!m) {
    process.stderr.write(`sidecar explain: --admin expects HOST:PORT, got "${admin}"\n`);
    return 2;
  }
  let token = process.env.SIDECAR_ADMIN_TOKEN;
  if (values['token-file'] !== undefined) token = readFileSync(values['token-file'], 'utf8').replace(/\r?\n$/, '');
  const path = `/debug/requests/${encodeURIComponent(positionals[0]!)}${values.json ? '?format=json' : ''}`;
  try {
    const { status, body } = await get(m[1]!.replace(/^\[|\]$/g, ''), Number(m[2]), path, token);
    if (status === 200) {
      process.stdout.write(body);
      return 0;
    }
    process.stderr.write(`sidecar explain: the sidecar at ${admin} answered ${status}: ${body}`);
    return 1;
  } catch (err) {
    process.stderr.write(`sidecar explain: cannot reach the admin port at ${admin}: ${(err as Error).message}\n`);
    return 1;
  }
}

function get(host: string, port: number, path: string, token: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
  });
}
