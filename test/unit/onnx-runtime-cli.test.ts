import { ONNX_USAGE } from '../../runtime/servers/onnx';
import { runCli } from '../harness/cli';


/** `modelmesh runtime onnx` wiring; bad options are refused before anything listens, so this does no I/O. */
describe('modelmesh runtime onnx command', () => {
  test('--help prints its options', async () => {
    expect(await runCli('runtime', 'onnx', '--help')).toEqual({ code: 0, out: ONNX_USAGE, err: '' });
    expect(ONNX_USAGE).toMatch(/--capacity <bytes>.*CONTAINER_MEM_REQ_BYTES/s);
  });

  test('a bad flag exits 2 naming the flag and what was expected', async () => {
    expect(await runCli('runtime', 'onnx', '--load-timeout-ms', 'later')).toEqual({
      code: 2, out: '', err: 'modelmesh runtime onnx: --load-timeout-ms must be a whole number of milliseconds, 100 or more, got "later"\n',
    });
  });
});
