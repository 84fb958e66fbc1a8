import * as http from 'node:http';
import { ProbePaths } from '../../../lib/contract';

/**
 * `/live` and `/ready` on the probe port. Live means the process is running its event loop; ready means the runtime
 * was READY and the instance joined the mesh (and is not leaving). `notReady` gives the reason, shown in the 503 body
 * (kubectl describe shows it), or undefined when ready.
 */
export function startProbeServer(port: number, host: string, notReady: () => string | undefined): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === ProbePaths.LIVE) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('live\n');
    } else if (path === ProbePaths.READY) {
      const reason = notReady();
      res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(reason === undefined ? 'ready\n' : `not ready: ${reason}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * `/prestop` on the prestop port, for Kubernetes preStop hooks: the request starts the make-before-break leave and is
 * answered only once the instance has left, so the container's stop waits for the models to be elsewhere.
 */
export function startPrestopServer(port: number, host: string, leave: () => Promise<void>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== ProbePaths.PRESTOP) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    leave().then(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('left the mesh\n'),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`leave failed: ${err.message}\n`));
  });
  // A leave can take up to SHUTDOWN_TIMEOUT_MS: no server-side timeout on these requests.
  server.requestTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
