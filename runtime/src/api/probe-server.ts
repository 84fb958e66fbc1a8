import * as http from 'node:http';
import { ProbePaths } from '../../../lib/contract';

/**
 * `/live` and `/ready` on the probe port. Live means the process is running its event loop; ready means the runtime
 * was READY and the instance joined the mesh (and is not leaving).
 */
export function startProbeServer(port: number, host: string, isReady: () => boolean): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === ProbePaths.LIVE) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('live\n');
    } else if (path === ProbePaths.READY) {
      const ready = isReady();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
