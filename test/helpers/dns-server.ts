// Test helper: a tiny authoritative DNS responder over UDP on 127.0.0.1 (random port) for A, AAAA and SRV questions,
// whose records a test changes at will; it can answer SERVFAIL or stay silent to play an outage.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface SrvRecord {
  readonly priority: number;
  readonly weight: number;
  readonly port: number;
  readonly target: string;
}

export interface DnsRecords {
  A?: { address: string; ttl: number }[];
  AAAA?: { address: string; ttl: number }[];
  SRV?: (SrvRecord & { ttl: number })[];
}

export interface TestDnsServer {
  /** "127.0.0.1:PORT", for Resolver.setServers. */
  readonly address: string;
  /** Name (lower case, no trailing dot) -> its records. */
  readonly zone: Map<string, DnsRecords>;
  /** ok: answer from the zone; servfail: answer SERVFAIL to everything; silent: answer nothing. */
  mode: 'ok' | 'servfail' | 'silent';
  /** Questions received, as "TYPE name". */
  readonly queries: string[];
  close(): Promise<void>;
}

const TYPES: Record<number, 'A' | 'AAAA' | 'SRV'> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((p) => p !== '');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'ascii')])), Buffer.from([0])]);
}

function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  for (;;) {
    const len = msg[i];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.').toLowerCase(), end: i + 1 };
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('ascii'));
    i += 1 + len;
  }
}

function answer(type: number, ttl: number, rdata: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // a pointer to the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(ttl, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

function ipv6(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : address.includes('::') ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : address.split(':');
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function respond(query: Buffer, zone: Map<string, DnsRecords>, mode: 'ok' | 'servfail'): { reply: Buffer; asked: string } {
  const id = query.readUInt16BE(0);
  const q = readName(query, 12);
  const qtype = query.readUInt16BE(q.end);
  const question = query.subarray(12, q.end + 4);
  const kind = TYPES[qtype];
  const records = zone.get(q.name);
  const answers: Buffer[] = [];
  let rcode = 0;
  if (mode === 'servfail') rcode = 2;
  else if (records === undefined) rcode = 3; // NXDOMAIN
  else if (kind === 'A') for (const r of records.A ?? []) answers.push(answer(1, r.ttl, Buffer.from(r.address.split('.').map(Number))));
  else if (kind === 'AAAA') for (const r of records.AAAA ?? []) answers.push(answer(28, r.ttl, ipv6(r.address)));
  else if (kind === 'SRV') {
    for (const r of records.SRV ?? []) {
      const fixed = Buffer.alloc(6);
      fixed.writeUInt16BE(r.priority, 0);
      fixed.writeUInt16BE(r.weight, 2);
      fixed.writeUInt16BE(r.port, 4);
      answers.push(answer(33, r.ttl, Buffer.concat([fixed, encodeName(r.target)])));
    }
  }
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x8400 | 0x0100 | 0x0080 | rcode, 2); // QR, AA, RD, RA
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answers.length, 6);
  return { reply: Buffer.concat([head, question, ...answers]), asked: `${kind ?? qtype} ${q.name}` };
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address() as AddressInfo;
  const server: TestDnsServer = {
    address: `127.0.0.1:${port}`,
    zone: new Map(),
    mode: 'ok',
    queries: [],
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, peer) => {
    if (server.mode === 'silent') return;
    try {
      const { reply, asked } = respond(msg, server.zone, server.mode);
      server.queries.push(asked);
      socket.send(reply, peer.port, peer.address);
    } catch {
      // not a DNS question: ignored
    }
  });
  return server;
}
