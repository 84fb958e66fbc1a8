import { PassThrough } from 'node:stream';
import { ONNX_USAGE } from '../../runtime/servers/onnx';
import { main } from '../../runtime/src/cli';

async function run(...argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (c: Buffer) => { chunks.out += c.toString(); });
  err.on('data', (c: Buffer) => { chunks.err += c.toString(); });
  const code = await main(argv, out, err);
  return { code, ...chunks };
}

/** `modelmesh runtime onnx` wiring; bad options are refused before anything listens, so this does no I/O. */
describe('modelmesh runtime onnx command', () => {
  test('--help prints its options', async () => {
    expect(await run('runtime', 'onnx', '--help')).toEqual({ code: 0, out: ONNX_USAGE, err: '' });
    expect(ONNX_USAGE).toMatch(/--capacity <bytes>.*CONTAINER_MEM_REQ_BYTES/s);
  });

  test('a bad flag exits 2 naming the flag and what was expected', async () => {
    expect(await run('runtime', 'onnx', '--load-timeout-ms', 'later')).toEqual({
      code: 2, out: '', err: 'modelmesh runtime onnx: --load-timeout-ms must be a whole number of milliseconds, 100 or more, got "later"\n',
    });
  });
});
