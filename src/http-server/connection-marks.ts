// What one listener knows about its downstream connections: owned by the Listener, handed to its HTTP adapters.
import type { Socket } from 'node:net';

/** Marks a listener and its HTTP/1.1 and HTTP/2 adapters share about the connections of that listener only. */
export class ConnectionMarks {
  /** Sockets whose request the parser rejected part-way (after the head was accepted), with the answer given. */
  readonly rejected = new WeakMap<Socket, { status: number; message: string }>();
  /** Sockets whose request was already answered with an error and Connection: close: the parser's later complaint about the same bytes gets no second answer. */
  readonly answered = new WeakSet<Socket>();
  /** Connections (sockets, HTTP/2 sessions) the sidecar itself cut because drain_timeout ran out: their requests are LR, not DC. */
  readonly drainCut = new WeakSet<object>();
  /** Sockets with a request in the handler right now (its access-log line is written when it closes). */
  readonly active = new WeakSet<Socket>();
}
