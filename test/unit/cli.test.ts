import { PassThrough } from 'node:stream';
import { main, USAGE } from '../../runtime/src/cli';
import { VERSION } from '../../runtime/src/version';

async function run(...argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (c: Buffer) => { chunks.out += c.toString(); });
  err.on('data', (c: Buffer) => { chunks.err += c.toString(); });
  const code = await main(argv, out, err);
  return { code, ...chunks };
}

describe('modelmesh command', () => {
  test('--version prints the runtime package version', async () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(await run('--version')).toEqual({ code: 0, out: `${VERSION}\n`, err: '' });
  });

  test('--help prints usage', async () => {
    expect(await run('--help')).toEqual({ code: 0, out: USAGE, err: '' });
  });

  test('no command prints usage and exits 2', async () => {
    expect((await run()).code).toBe(2);
  });

  test('an unknown command names it', async () => {
    const result = await run('serv');
    expect(result.code).toBe(2);
    expect(result.err).toContain("unknown command 'serv'");
  });
});
