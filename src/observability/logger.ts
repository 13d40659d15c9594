// The operational log (startup, reloads, errors): pino JSON on stderr, apart from the access log on stdout.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'sidecar' } }, pino.destination({ dest: 2, sync: true }));
}
