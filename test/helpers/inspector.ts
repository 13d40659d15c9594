// Test helper: measures a child sidecar's JS heap through the V8 inspector (the process is started with
// `--inspect=127.0.0.1:0`): a full GC first, so the figure is live objects, not garbage or RSS the allocator keeps.
import WebSocket from 'ws';

export interface HeapProbe {
  /** Runs a full GC (twice, so weak callbacks and finalizers settle) and returns heapUsed in MiB. */
  heapUsedAfterGcMiB(): Promise<number>;
  /** Evaluates an expression in the child's global scope and returns its value (JSON-serializable). */
  evaluate<T>(expression: string): Promise<T>;
  close(): void;
}

/** The inspector URL a process prints on stderr when started with --inspect (`Debugger listening on ws://...`). */
export function inspectorUrl(stderr: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1];
}

export async function connectInspector(url: string): Promise<HeapProbe> {
  const ws = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString('utf8')) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(msg.error.message));
    else p?.resolve(msg.result);
  });
  ws.on('error', () => {});
  const send = (method: string, params: Record<string, unknown> = {}): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const evaluate = async <T>(expression: string): Promise<T> => {
    const r = (await send('Runtime.evaluate', { expression, returnByValue: true })) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (r.exceptionDetails) throw new Error(`evaluate ${expression}: ${r.exceptionDetails.text}`);
    return r.result.value;
  };
  return {
    evaluate,
    async heapUsedAfterGcMiB() {
      await send('HeapProfiler.collectGarbage');
      await new Promise((r) => setTimeout(r, 50));
      await send('HeapProfiler.collectGarbage');
      return (await evaluate<number>('process.memoryUsage().heapUsed')) / 1024 / 1024;
    },
    close: () => ws.close(),
  };
}

/** Live objects by constructor name from a heap snapshot (to see what grew between two points). */
export async function heapCountsByName(url: string): Promise<Map<string, { count: number; bytes: number }>> {
  const ws = new WebSocket(url, { maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const chunks: string[] = [];
  const done = new Promise<void>((resolve) => {
    ws.on('message', (data: Buffer) => {
      const msg = JSON.parse(data.toString('utf8')) as { id?: number; method?: string; params?: { chunk: string } };
      if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(msg.params!.chunk);
      else if (msg.id === 1) resolve();
    });
  });
  ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.takeHeapSnapshot', params: { reportProgress: false } }));
  await done;
  ws.close();
  const snap = JSON.parse(chunks.join('')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const f = snap.snapshot.meta.node_fields;
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    if (type !== 'object' && type !== 'closure' && type !== 'array') continue;
    const name = `${type}:${snap.strings[snap.nodes[i + iName]!]}`;
    const e = out.get(name) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[i + iSize]!;
    out.set(name, e);
  }
  return out;
}
