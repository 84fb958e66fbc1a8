import * as http from 'node:http';
import * as net from 'node:net';

export interface WaitOptions {
  /** Give up after this long. @default 10000 */
  readonly timeoutMs?: number;
  /** Pause between checks. @default 50 */
  readonly intervalMs?: number;
}

/** Thrown when a condition did not hold in time; says what was awaited and the last error seen. */
export class WaitTimeoutError extends Error {
  constructor(what: string, timeoutMs: number, lastError?: unknown) {
    const cause = lastError instanceof Error ? `: last error: ${lastError.message}` : '';
    super(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    this.name = 'WaitTimeoutError';
  }
}

/** Thrown by a check to end the wait at once: the condition can no longer come true (a process exited). */
export class StopWaiting extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StopWaiting';
  }
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a value other than `undefined`/`false` (or stops throwing) and returns that value.
 * This is how tests synchronise with other processes: a condition with a deadline, never a fixed sleep. A check
 * that throws StopWaiting ends the wait with that error.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, false | undefined>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    } catch (err) {
      if (err instanceof StopWaiting) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) throw new WaitTimeoutError(what, timeoutMs, lastError);
    await pause(intervalMs);
  }
}

/** POSTs JSON (an object, or text sent as is) to 127.0.0.1:port and parses the JSON answer. */
export function httpPostJson(port: number, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** Resolves once something accepts TCP connections on host:port. */
export function waitForTcpPort(port: number, host = '127.0.0.1', options?: WaitOptions): Promise<true> {
  return waitFor(`TCP ${host}:${port}`, () => new Promise<boolean>((resolve, reject) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', reject);
  }), options);
}

/** GETs a URL and resolves with its status and body. */
export function httpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** Resolves once GET `url` answers with `expectedStatus`. */
export function waitForHttp(url: string, expectedStatus = 200, options?: WaitOptions): Promise<true> {
  return waitFor(`HTTP ${expectedStatus} from ${url}`, async () => {
    const { status } = await httpGet(url);
    if (status !== expectedStatus) throw new Error(`status ${status}`);
    return true;
  }, options);
}
