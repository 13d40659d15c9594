// The admin server: health, effective config, cluster state and Prometheus metrics (GET), and operator actions
// (POST /drain, /logging, /reopen_logs, /quit). Loopback unless configured; a bearer token guards all but /ready, /live.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import { formatDuration } from '../config/units.js';
import { credentialHeaders, sensitiveHeaderSet } from '../observability/sensitive-headers.js';
import { isLogLevel, LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import { checkBearer, type TokenDigest } from './admin-token.js';
import { story, type DebugRecord, type DebugRequests } from '../observability/request-debug.js';
import { DASHBOARD_HTML, DASHBOARD_JS } from './dashboard/page.js';
import { DashboardEvents, uplotAssets } from './dashboard/events.js';
import type { Answers, HistorySnapshot } from './dashboard/payload.js';
import { CONTENT_TYPES, negotiate, type Format } from '../observability/exposition.js';

const DEBUG_PREFIX = '/debug/requests/';

/** Probes (kubelet, load balancers) carry no credentials: these stay open when a token is set. */
const OPEN_PATHS = new Set(['/ready', '/live']);

export interface AdminSource {
  /** Undefined when ready to take traffic; otherwise why not (draining, a listener not bound, ...). */
  readiness(): string | undefined;
  config(): Config;
  configSource(): string;
  clusters(): unknown;
  /** Latency quantiles per minute over the last 15 minutes (GET /latency). */
  latency(): unknown;
  /** Recent requests and their stories (GET /debug/requests). */
  debugRequests(): DebugRequests;
  /** The /metrics body in the negotiated format (a promise when the app's metrics are merged in). */
  metrics(format: Format): string | Promise<string>;
  /** Starts a drain without exiting (/ready fails from now on). */
  drain(): void;
  setLogLevel(level: LogLevel): void;
  logLevel(): LogLevel;
  /** Opens the access-log file again (log rotation). */
  reopenLogs(): void;
  /** Graceful stop, then exit 0. Called once the answer has been sent. */
  quit(): void;
  /** The digest of the admin token in force (re-read on every reload), or undefined when none is configured. */
  tokenDigest(): TokenDigest | undefined;
  /** The latency history's snapshot for the dashboard; the dashboard is off when absent or config says so. */
  history?(): HistorySnapshot;
  /** Whether the latency history is kept (admin.latency_history.enabled); absent: it is. */
  historyEnabled?(): boolean;
  /** Attempts sent upstream so far (retries and hedges included), when counted; the dashboard's upstream rate. */
  upstreamAttempts?(): number | undefined;
  /** Answers given and failed so far (the dashboard's success rate). */
  answers?(): Answers;
}

interface Reply {
  text(status: number, body: string, type?: string, headers?: Record<string, string>): void;
  json(status: number, body: unknown): void;
  /** Runs `then` once the answer is written (e.g. /quit, which closes this server). */
  after(then: () => void): void;
}
type Handler = (url: URL, reply: Reply, req: http.IncomingMessage) => void;

export class AdminServer {
  readonly #server: http.Server;
  readonly #events: DashboardEvents | undefined;

  constructor(source: AdminSource) {
    const history = source.history?.bind(source);
    const events = history ? new DashboardEvents({
          history,
          debugRequests: () => source.debugRequests(),
          clusters: () => source.clusters(),
          upstreamAttempts: () => source.upstreamAttempts?.(),
          answers: source.answers ? () => source.answers!() : undefined,
          historyEnabled: () => source.historyEnabled?.() ?? true,
          now: () => Date.now(),
        }) : undefined;
    this.#events = events;
    const dashboardOn = (): boolean => events !== undefined && source.config().admin.dashboard.enabled;
    /** Read-only views: GET (and HEAD). */
    const views: Record<string, Handler> = {
      '/ready': (_u, r) => {
        const why = source.readiness();
        return why === undefined ? r.text(200, 'ready\n') : r.text(503, `not ready: ${why}\n`);
      },
      '/live': (_u, r) => r.text(200, 'live\n'),
      '/config': (_u, r) => r.json(200, { source: source.configSource(), config: redactConfig(source.config()) }),
      '/clusters': (_u, r) => r.json(200, source.clusters()),
      // Content negotiation: OpenMetrics when the scraper's Accept prefers it (Prometheus does), else text 0.0.4.
      '/metrics': (_u, r, req) => {
        const format = negotiate(req.headers.accept);
        // Caches between scraper and sidecar must keep the two formats apart.
        const send = (body: string): void => r.text(200, body, CONTENT_TYPES[format], { vary: 'accept' });
        const body = source.metrics(format);
        if (typeof body === 'string') return send(body);
        body.then(send, (err: unknown) => r.text(500, `metrics: ${String(err)}\n`));
      },
      '/latency': (_u, r) => r.json(200, source.latency()),
      '/debug/requests': (u, r) => {
        const d = source.debugRequests();
        if (!d.config.enabled) return r.text(404, 'the request recorder is off (admin.debug_requests.enabled: false)\n');
        const all = d.list();
        if (u.searchParams.get('format') === 'json') return r.json(200, all);
        const line = (x: DebugRecord): string => `${x.id}  ${x.status}  ${x.durationMs.toFixed(1)} ms  ${x.flag ?? '-'}  ${x.method} ${x.authority}${x.path}  route=${x.route || '-'} cluster=${x.cluster || '-'} attempts=${x.attemptCount}`;
        const body = [`failed or slow (${all.failed.length}):`, ...all.failed.map(line), '', `recent (${all.recent.length}${all.skippedOk > 0 ? `; ${all.skippedOk} successes not kept since start: max_ok_per_second ${all.config.max_ok_per_second}` : ''}):`, ...all.recent.map(line), '', 'GET /debug/requests/<request-id> for one request\'s story (?format=json for JSON)'];
        return r.text(200, `${body.join('\n')}\n`);
      },
      '/dashboard': (_u, r) => (dashboardOn() ? r.text(200, DASHBOARD_HTML, 'text/html; charset=utf-8') : r.text(404, 'the dashboard is off (admin.dashboard.enabled: false)\n')),
      '/dashboard/app.js': (_u, r) => (dashboardOn() ? r.text(200, DASHBOARD_JS, 'text/javascript; charset=utf-8') : r.text(404, 'not found\n')),
      '/dashboard/uplot.js': (_u, r) => (dashboardOn() ? r.text(200, uplotAssets().js, 'text/javascript; charset=utf-8') : r.text(404, 'not found\n')),
      '/dashboard/uplot.css': (_u, r) => (dashboardOn() ? r.text(200, uplotAssets().css, 'text/css; charset=utf-8') : r.text(404, 'not found\n')),
      '/': (_u, r) => r.text(200, 'sidecar admin: GET /ready /live /config /clusters /metrics /latency /debug/requests[/<id>] /dashboard; POST /drain /logging?level= /reopen_logs /quit\n'),
    };
    const debugStory: Handler = (u, r) => {
      const d = source.debugRequests();
      const id = decodeURIComponent(u.pathname.slice(DEBUG_PREFIX.length));
      const rec = d.config.enabled ? d.find(id) : undefined;
      const json = u.searchParams.get('format') === 'json';
      if (!rec) {
        const why = d.config.enabled ? `no request ${id} among the recent ones kept (it may have been pushed out of the ring)` : 'the request recorder is off (admin.debug_requests.enabled: false)';
        return json ? r.json(404, { error: why }) : r.text(404, `${why}\n`);
      }
      return json ? r.json(200, { ...rec, story: story(rec) }) : r.text(200, story(rec));
    };
    /** Operator actions: POST only, all behind operate() below. */
    const operations: Record<string, Handler> = {
      '/drain': (_u, r) => {
        source.drain();
        r.text(200, 'draining: /ready now fails; listeners answer with Connection: close / GOAWAY\n');
      },
      '/logging': (u, r) => {
        const level = u.searchParams.get('level');
        if (level === null) return r.text(200, `log level: ${source.logLevel()}\n`);
        if (!isLogLevel(level)) return r.text(400, `unknown log level "${level}"; use one of ${LOG_LEVELS.join(', ')}\n`);
        source.setLogLevel(level);
        r.text(200, `log level: ${level}\n`);
      },
      '/reopen_logs': (_u, r) => {
        source.reopenLogs();
        r.text(200, 'access log reopened\n');
      },
      '/quit': (_u, r) => {
        r.after(() => source.quit());
        r.text(200, 'quitting: draining, then exit\n');
      },
    };
    /** The one gate every operation passes (the token, when set, was checked for every request before it). */
    const operate = (req: http.IncomingMessage, handler: Handler, url: URL, reply: Reply): void => handler(url, reply, req);

    this.#server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://admin');
      let then: (() => void) | undefined;
      const text = (status: number, body: string, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
        res.end(body, then);
      };
      const reply: Reply = {
        text: (status, body, type, headers) => text(status, body, type, headers),
        json: (status, body) => text(status, `${JSON.stringify(body, null, 2)}\n`, 'application/json'),
        after: (f) => (then = f),
      };
      const expected = OPEN_PATHS.has(url.pathname) ? undefined : source.tokenDigest();
      if (expected) {
        const check = checkBearer(req.headers.authorization, expected);
        if (check !== 'ok') {
          req.resume();
          // RFC 6750: a challenge always; error="invalid_token" when a token was sent but is wrong.
          const challenge = check === 'invalid' ? 'Bearer realm="sidecar admin", error="invalid_token"' : 'Bearer realm="sidecar admin"';
          const why = check === 'invalid' ? 'the bearer token is wrong' : 'this admin endpoint needs "Authorization: Bearer <token>"';
          return text(401, `unauthorized: ${why} (admin.token_file / admin.token_env)\n`, undefined, { 'www-authenticate': challenge });
        }
      }
      const view = views[url.pathname] ?? (url.pathname.startsWith(DEBUG_PREFIX) ? debugStory : undefined);
      const operation = operations[url.pathname];
      if (url.pathname === '/dashboard/events' && req.method === 'GET' && events && dashboardOn()) return events.attach(req, res);
      if (view) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed: use GET\n', undefined, { allow: 'GET, HEAD' });
        return view(url, reply, req);
      }
      if (operation) {
        if (req.method !== 'POST') return text(405, 'method not allowed: use POST\n', undefined, { allow: 'POST' });
        req.resume(); // no body is read; drain whatever was sent
        return operate(req, operation, url, reply);
      }
      return text(404, 'not found\n');
    });
  }

  listen(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, address, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Gives up the port at once so a replacement can bind it; `listen` takes it back if the reload fails. */
  async stopAccepting(): Promise<void> {
    this.#server.close();
    // The handle closes on the next turn of the loop; only then is the port free to bind again.
    await new Promise((r) => setImmediate(r));
  }

  close(): Promise<void> {
    this.#events?.close();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

/** /config as shown: secrets hidden, the configured sensitive headers among them. */
const redactConfig = (c: Config): unknown => redact(c, '', sensitiveHeaderSet([...c.access_log.sensitive_headers, ...credentialHeaders(c)]));

/** Keys (and header names in header edits) whose values are credentials; `key` alone or as a suffix is key material. */
const SECRET_KEY = /(secret|password|passwd|token|private[-_]?key|api[-_]?key|credential|authorization|cookie|session|^key$|[-_]key$|^keys$)/i;
/** Where a secret lives (a file path, a variable name), not the secret: shown, so an operator can see what is read. */
const SECRET_LOCATION = /[-_](file|path|env)$/i;
/** Credentials in a URL (`https://user:password@host`): the user info is hidden, the rest shown. */
const URL_USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)[^/?#@\s]+@/i;
/** Objects whose `headers` are all credentials: what an exporter sends its collector (tokens under vendor names). */
const SECRET_HEADERS_OF = new Set(['otlp']);
/** Key material pasted inline, under whatever name. */
const PEM_SECRET = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

const hideValues = (o: object): Record<string, string> => Object.fromEntries(Object.keys(o).map((k) => [k, '[redacted]']));

/**
 * The config with secret-looking values replaced, and durations shown as written units. `sensitive`: the access
 * log's sensitive headers (observability/sensitive-headers.ts); a header edit naming one of them is hidden too.
 */
export function redact(value: unknown, key = '', sensitive: ReadonlySet<string> = sensitiveHeaderSet()): unknown {
  if (typeof value === 'string' && PEM_SECRET.test(value)) return '[redacted]';
  if (typeof value === 'string' && URL_USERINFO.test(value)) return value.replace(URL_USERINFO, '$1[redacted]@');
  const secret = SECRET_KEY.test(key) || sensitive.has(key.toLowerCase());
  if (secret && !(SECRET_LOCATION.test(key) && typeof value === 'string') && value !== undefined && value !== null) return '[redacted]';
  if (Array.isArray(value)) return value.map((v) => redact(v, '', sensitive));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const allSecret = SECRET_HEADERS_OF.has(key);
    for (const [k, v] of Object.entries(value)) out[k] = allSecret && k === 'headers' && v && typeof v === 'object' ? hideValues(v) : redact(v, k, sensitive);
    return out;
  }
  if (typeof value === 'number' && /(timeout|interval|_time)$/.test(key)) return formatDuration(value);
  return value;
}
