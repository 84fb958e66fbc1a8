import { EXAMPLE_USAGE } from '../../runtime/servers/example';
import { runCli } from '../harness/cli';


/** The `runtime` command's wiring; bad options are refused before anything listens, so this does no I/O. */
describe('modelmesh runtime', () => {
  test('a missing or unknown runtime kind is a usage error listing the kinds', async () => {
    expect(await runCli('runtime')).toMatchObject({ code: 2, err: expect.stringMatching(/a runtime kind is required; expected one of: example, onnx/) });
    expect(await runCli('runtime', 'triton')).toMatchObject({ code: 2, err: expect.stringMatching(/unknown runtime 'triton'/) });
  });

  test('runtime example --help prints its options', async () => {
    expect(await runCli('runtime', 'example', '--help')).toEqual({ code: 0, out: EXAMPLE_USAGE, err: '' });
    expect(EXAMPLE_USAGE).toMatch(/--max-loading-concurrency/);
  });

  test('runtime example refuses a bad flag with exit code 2, naming the flag and what was expected', async () => {
    const result = await runCli('runtime', 'example', '--load-delay-ms', 'later');
    expect(result.code).toBe(2);
    expect(result.err).toBe('modelmesh runtime example: --load-delay-ms must be a whole number of milliseconds (0 or more), got "later"\n');
  });
});
