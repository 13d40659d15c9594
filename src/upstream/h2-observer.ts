// What an HTTP/2 upstream pool reports about its sessions (the runtime binds it to the metrics; pools outlive snapshots).
export interface H2Observer {
  /** A session to `endpoint` connected (+1) or closed (-1). */
  sessions(endpoint: string, delta: 1 | -1): void;
  /** A session closed after carrying `streams` streams. */
  sessionClosed(streams: number): void;
  goaway(direction: 'sent' | 'received', code: string): void;
  reset(direction: 'sent' | 'received', code: string): void;
}
