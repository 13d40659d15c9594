// The operational log (startup, reloads, errors): JSON lines on stderr, apart from the access log on stdout.
// These events are rare, so lines are written synchronously: nothing is lost when the process exits right after.
import { writeSync } from 'node:fs';

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LogLevel = keyof typeof LEVELS;
export const LOG_LEVELS = Object.keys(LEVELS) as LogLevel[];
type Fields = Record<string, unknown>;

export interface Logger {
  debug(fields: Fields, msg?: string): void;
  info(fields: Fields | string, msg?: string): void;
  warn(fields: Fields, msg?: string): void;
  error(fields: Fields, msg?: string): void;
  fatal(fields: Fields, msg?: string): void;
  /** True when debug lines are written: callers check it before building a debug line on a busy path. */
  readonly debugEnabled: boolean;
  readonly level: LogLevel;
  /** Changes the level at runtime (admin POST /logging). */
  setLevel(level: LogLevel): void;
}

export const isLogLevel = (s: string): s is LogLevel => Object.hasOwn(LEVELS, s);

/** Errors become {type, message, code, stack} instead of "{}". */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown };
    return { type: e.name, message: e.message, ...(e.code === undefined ? {} : { code: e.code }), stack: e.stack };
  }
  return value;
}

export function createLogger(level: string, fd = 2): Logger {
  let name: LogLevel = isLogLevel(level) ? level : 'info';
  let min: number = LEVELS[name];
  const emit = (lvl: number, fields: Fields | string, msg?: string): void => {
    if (lvl < min) return;
    const record = typeof fields === 'string' ? { msg: fields } : { ...fields, ...(msg === undefined ? {} : { msg }) };
    // ISO time, as in the access log, so the two logs read and sort alike.
    const line = JSON.stringify({ level: lvl, time: new Date().toISOString(), service: 'sidecar', ...record }, replacer);
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
    get debugEnabled() {
      return min <= LEVELS.debug;
    },
    get level() {
      return name;
    },
    setLevel(l: LogLevel) {
      name = l;
      min = LEVELS[l];
    },
  };
}
