import { USAGE } from '../../runtime/src/cli';
import { VERSION } from '../../runtime/src/version';
import { runCli } from '../harness/cli';


describe('modelmesh command', () => {
  test('--version prints the runtime package version', async () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(await runCli('--version')).toEqual({ code: 0, out: `${VERSION}\n`, err: '' });
  });

  test('--help prints usage', async () => {
    expect(await runCli('--help')).toEqual({ code: 0, out: USAGE, err: '' });
  });

  test('no command prints usage and exits 2', async () => {
    expect((await runCli()).code).toBe(2);
  });

  test('an unknown command names it', async () => {
    const result = await runCli('serv');
    expect(result.code).toBe(2);
    expect(result.err).toContain("unknown command 'serv'");
  });
});
