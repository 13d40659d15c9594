// A user-space TCP fault relay (this kernel has no netem): listens, connects each accepted socket to a target, and
// forwards bytes with added latency per chunk and a chance of dropping the connection (loss). Settings can change live.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FaultSettings {
  /** Added one-way delay per chunk, ms. */
  latencyMs: number;
  /** Probability (0..1) that a chunk is lost; TCP cannot lose bytes silently, so the connection is reset. */
  loss: number;
  /** Refuse (reset) every new connection: a cut link. */
  down: boolean;
}

export interface FaultRelay {
  port: number;
  settings: FaultSettings;
  /** Connections reset by injected loss or a down link. */
  readonly faults: number;
  close(): Promise<void>;
}

export async function startFaultRelay(target: { host: string; port: number }, settings: Partial<FaultSettings> = {}, listen = { host: '127.0.0.1', port: 0 }, random: () => number = Math.random): Promise<FaultRelay> {
  const s: FaultSettings = { latencyMs: 0, loss: 0, down: false, ...settings };
  const sockets = new Set<Socket>();
  let faults = 0;
  const pipe = (from: Socket, to: Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (s.loss > 0 && random() < s.loss) {
        faults++;
        from.resetAndDestroy();
        to.resetAndDestroy();
        return;
      }
      if (s.latencyMs <= 0) {
        if (!to.write(chunk)) from.pause();
        return;
      }
      from.pause();
      setTimeout(() => {
        if (to.destroyed) return;
        to.write(chunk);
        from.resume();
      }, s.latencyMs);
    });
    to.on('drain', () => from.resume());
    from.on('end', () => setTimeout(() => to.end(), s.latencyMs));
    from.on('error', () => to.destroy());
  };
  // noDelay: with Nagle, small relayed writes would wait for the peer's delayed ACK (40 ms), a fault nobody asked for.
  const server: Server = createServer({ noDelay: true }, (down) => {
    sockets.add(down);
    down.on('close', () => sockets.delete(down));
    if (s.down) {
      faults++;
      down.resetAndDestroy();
      return;
    }
    const up = connect({ port: target.port, host: target.host, noDelay: true });
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    pipe(down, up);
    pipe(up, down);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(listen.port, listen.host, () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    settings: s,
    get faults() {
      return faults;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const so of sockets) so.destroy();
        server.close(() => resolve());
      }),
  };
}
