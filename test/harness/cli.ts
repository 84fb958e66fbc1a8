import { PassThrough } from 'node:stream';
import { main } from '../../runtime/src/cli';

/** Runs the `modelmesh` command in this process and collects its exit code and output. */
export async function runCli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (c: Buffer) => { chunks.out += c.toString(); });
  err.on('data', (c: Buffer) => { chunks.err += c.toString(); });
  const code = await main(argv, out, err);
  return { code, ...chunks };
}
