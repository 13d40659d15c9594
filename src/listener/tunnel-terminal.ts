// Tunnels as the terminal service of the pipeline: the request has passed every filter (and the loop check) before
// a terminal here picks its endpoint, connects through the Connector seam and hands the sockets to the adapter.
import type { Socket } from 'node:net';
import type { Cluster } from '../cluster/cluster.js';
import { ProxyError } from '../core/errors.js';
import { HeaderList, HOP_HEADER } from '../core/headers.js';
import { compose, type HttpService, type Layer, type ProxyRequest, type ProxyResponse } from '../core/service.js';
import { compileHeaderMutation } from '../filters/header-mutation/header-mutation.js';
import type { ListenerRuntime } from '../runtime/listener-runtime.js';
import type { RouteRuntime } from '../runtime/route.js';
import { connectTarget, type ConnectTarget, type Connector } from '../upstream/connector.js';
import { framingFor, requestHead } from '../upstream/http1/head.js';
import { readUpgradeAnswer } from './upgrade-response.js';

/** What a tunnel terminal resolves with: the status the downstream got (101 or 200 switched, else the relayed one). */
const answered = (status: number): ProxyResponse => ({ status, headers: new HeaderList(), body: null });

/** Composed once per route (routes live as long as their snapshot): a tunnel costs no pipeline building. */
const upgradeServices = new WeakMap<RouteRuntime, HttpService>();
const connectServices = new WeakMap<ListenerRuntime, HttpService>();

/** The route's tunnel pipeline: its tunnel layers around the Upgrade terminal for its cluster. */
export function upgradeService(route: RouteRuntime, cluster: Cluster, connector: Connector): HttpService {
  let svc = upgradeServices.get(route);
  if (svc === undefined) {
    svc = compose(route.tunnelLayers ?? [], upgradeTerminal(route, cluster, connector));
    upgradeServices.set(route, svc);
  }
  return svc;
}

/** The listener's CONNECT pipeline: its listener filters around the CONNECT terminal. */
export function connectService(lr: ListenerRuntime, connector: Connector): HttpService {
  let svc = connectServices.get(lr);
  if (svc === undefined) {
    const layers: Layer[] = lr.filters.map((f) => f.layer);
    svc = compose(layers, connectTerminal(lr, connector));
    connectServices.set(lr, svc);
  }
  return svc;
}

/**
 * Sends the Upgrade request to an endpoint of the cluster and reads its answer: a 101 for the protocol asked for
 * becomes a tunnel, any other answer is relayed as a plain response and the connection closed.
 */
function upgradeTerminal(route: RouteRuntime, cluster: Cluster, connector: Connector): HttpService {
  const cfg = route.config;
  const editResponse = compileHeaderMutation(cfg?.response_headers);
  return (req) =>
    new Promise<ProxyResponse>((resolve, reject) => {
      const slot = req.tunnel!;
      const ctx = req.context;
      const ep = cluster.pick(req);
      if (!ep) return reject(new ProxyError('UH', `no healthy endpoint in cluster ${cluster.name}`));
      ctx.endpoint = ep.address;
      ctx.attempts = 1;
      let out: string;
      try {
        const raw = req.headers.raw;
        raw.push('connection', 'upgrade', 'upgrade', slot.asked);
        if (cluster.config.peer === 'sidecar') raw.push(HOP_HEADER, '1');
        out = requestHead(req.method, req.path, req.authority, raw, framingFor(req.method, false, -1, raw));
      } catch (err) {
        return reject(new ProxyError('DPE', `upgrade request cannot be forwarded: ${(err as Error).message}`, { status: 400 }));
      }
      const upstream = open(connector, connectTarget(ep.address), cluster.config.connect_timeout, req, reject, (code) =>
        new ProxyError('UF', `upstream connect ${code === 'ECONNREFUSED' ? 'refused by' : 'failed to'} ${ep.address}`, { endpoint: ep.address }),
      );
      upstream.once('connect', () => {
        upstream.write(out, 'latin1');
        readUpgradeAnswer(upstream, slot.downstream, {
          asked: slot.asked,
          method: req.method,
          http10: slot.http10,
          headTimeout: cfg?.timeout ?? 0,
          bodyIdleTimeout: cluster.config.stream_idle_timeout,
          editResponse,
          onSwitched(rest) {
            slot.onSwitched(upstream, rest);
            resolve(answered(101));
          },
          onRelayed(status, bodyBytes, err) {
            slot.onRelayed(status, bodyBytes, err);
            resolve(answered(status));
          },
          onFailed: reject,
        });
      });
    });
}

/** CONNECT host:port, already checked against the forward policy: a TCP tunnel once the connection is up. */
function connectTerminal(lr: ListenerRuntime, connector: Connector): HttpService {
  const timeout = lr.config.forward.connect_timeout;
  return (req) =>
    new Promise<ProxyResponse>((resolve, reject) => {
      const slot = req.tunnel!;
      const target = req.authority;
      const upstream = open(connector, connectTarget(target), timeout, req, reject, (code, message) =>
        new ProxyError('UF', `connect to ${target} failed: ${code ?? message}`, { endpoint: target }),
      );
      upstream.once('connect', () => {
        slot.downstream.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        slot.onSwitched(upstream, Buffer.alloc(0));
        resolve(answered(200));
      });
    });
}

/**
 * A socket from the connector. Until it connects, a failure rejects the exchange (a typed connect timeout from the
 * connector as it is, an OS error in `describe`'s words) and the request's cancellation (downstream gone) destroys it.
 */
function open(
  connector: Connector,
  target: ConnectTarget,
  timeout: number,
  req: ProxyRequest,
  reject: (err: ProxyError) => void,
  describe: (code: string | undefined, message: string) => ProxyError,
): Socket {
  const upstream = connector(target, { timeout });
  // Until the tunnel is up or the answer relayed, the downstream going away (or a filter's cancel) ends the attempt.
  const off = req.cancel.onAbort(() => upstream.destroy());
  upstream.once('close', off);
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    if (!upstream.connecting && upstream.remoteAddress) return; // after the connect, the tunnel's own handlers own errors
    reject(err instanceof ProxyError ? err : describe(err.code, err.message));
  });
  return upstream;
}
