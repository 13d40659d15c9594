// Benchmark upstream: a canned HTTP/1.1 responder that does almost no work, so the proxy under test is the bottleneck.
import net from 'node:net';

const body = 'hello world\n';
const RESPONSE = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nkeep-alive: timeout=60\r\n\r\n${body}`);
const END = Buffer.from('\r\n\r\n');

export function startCannedUpstream(port: number, host = '127.0.0.1'): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    let carry: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      // Requests in a benchmark have no body: every blank line ends one request.
      const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let count = 0;
      let from = 0;
      for (;;) {
        const i = data.indexOf(END, from);
        if (i < 0) break;
        count++;
        from = i + 4;
      }
      carry = data.subarray(from);
      if (count === 1) socket.write(RESPONSE);
      else if (count > 1) socket.write(Buffer.concat(Array.from({ length: count }, () => RESPONSE)));
    });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(port, host, () => resolve(server)));
}

if (process.argv[1]?.endsWith('upstream.js')) {
  const port = Number(process.argv[2] ?? 18080);
  void startCannedUpstream(port).then(() => process.stdout.write(`ready ${port}\n`));
}
