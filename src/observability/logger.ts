// The operational log (startup, reloads, errors): JSON lines on stderr, apart from the access log on stdout.
// These events are rare, so lines are written synchronously: nothing is lost when the process exits right after.
import { writeSync } from 'node:fs';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LEVELS;
type Fields = Record<string, unknown>;

export interface Logger {
  debug(fields: Fields, msg?: string): void;
  info(fields: Fields | string, msg?: string): void;
  warn(fields: Fields, msg?: string): void;
  error(fields: Fields, msg?: string): void;
  fatal(fields: Fields, msg?: string): void;
}

/** Errors become {type, message, code, stack} instead of "{}". */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown };
    return { type: e.name, message: e.message, ...(e.code === undefined ? {} : { code: e.code }), stack: e.stack };
  }
  return value;
}

export function createLogger(level: string, fd = 2): Logger {
  const min = LEVELS[level as LogLevel] ?? LEVELS.info;
  const emit = (lvl: number, fields: Fields | string, msg?: string): void => {
    if (lvl < min) return;
    const record = typeof fields === 'string' ? { msg: fields } : { ...fields, ...(msg === undefined ? {} : { msg }) };
    const line = JSON.stringify({ level: lvl, time: Date.now(), service: 'sidecar', ...record }, replacer);
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      // stderr closed: nothing to report to
    }
  };
  return {
    debug: (f, m) => emit(LEVELS.debug, f, m),
    info: (f, m) => emit(LEVELS.info, f, m),
    warn: (f, m) => emit(LEVELS.warn, f, m),
    error: (f, m) => emit(LEVELS.error, f, m),
    fatal: (f, m) => emit(LEVELS.fatal, f, m),
  };
}
