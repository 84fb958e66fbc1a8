import * as http from 'node:http';
import * as https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from '../log';
import type { MeshMetrics } from './mesh-metrics';

/** Serves `/metrics` (and `/`, as upstream does) on the metrics port, over HTTPS when the scheme asks for it. */
export function startMetricsServer(options: {
  readonly metrics: MeshMetrics;
  readonly port: number;
  readonly host: string;
  /** The front door's certificate, for `scheme=https`; scrapers are not asked for a client certificate. */
  readonly tls?: SecureContextOptions;
  readonly log: Logger;
}): Promise<http.Server | https.Server> {
  const handler: http.RequestListener = (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    options.metrics.scrape().then(({ contentType, body }) => {
      res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body);
    }, (err: Error) => {
      options.log.warn('metrics scrape failed', { err });
      res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
    });
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve(server));
  });
}
