// The example's gRPC app (grpc-js): an in-memory library. It knows nothing of JSON; the sidecar transcodes.
// Usage: node examples/transcoding/server.mjs PORT
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));
const def = protoLoader.loadSync(path.join(here, 'library.proto'), { keepCase: true, longs: String, enums: String, includeDirs: [path.join(here, '../../protos')] });
const { library } = grpc.loadPackageDefinition(def);
const books = new Map([
  ['shelves/1/books/1', { name: 'shelves/1/books/1', title: 'The Histories', pages: '716', genre: 'HISTORY', published: { seconds: '-14200000000', nanos: 0 } }],
  ['shelves/1/books/2', { name: 'shelves/1/books/2', title: 'Dune', pages: '412', genre: 'FICTION', published: { seconds: '-140000000', nanos: 0 } }],
]);
const onShelf = (parent, genre) => [...books.values()].filter((b) => b.name.startsWith(`${parent}/`) && (!genre || genre === 'GENRE_UNSPECIFIED' || b.genre === genre));

const server = new grpc.Server();
server.addService(library.v1.Library.service, {
  GetBook: ({ request }, cb) => (books.has(request.name) ? cb(null, books.get(request.name)) : cb({ code: grpc.status.NOT_FOUND, details: `no book ${request.name}` })),
  CreateBook: ({ request }, cb) => {
    const book = { ...request.book, name: `${request.parent}/books/${books.size + 1}` };
    books.set(book.name, book);
    cb(null, book);
  },
  ListBooks: ({ request }, cb) => cb(null, { books: onShelf(request.parent, request.genre) }),
  WatchBooks: async (call) => {
    for (const b of onShelf(call.request.parent, call.request.genre)) {
      call.write(b);
      await new Promise((r) => setTimeout(r, 200));
    }
    call.end();
  },
});
const port = Number(process.argv[2] ?? 50051);
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.stderr.write(`library gRPC server on 127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
