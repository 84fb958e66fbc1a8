import { spawnModelmesh } from '../harness/modelmesh';
import { freePort } from '../harness/ports';
import { ProcessGroup } from '../harness/processes';
import { httpPostJson, waitFor } from '../harness/wait';

/** `modelmesh dev` serves the sample model end to end, and the REST call it prints answers correctly. */

const group = new ProcessGroup();
afterAll(() => group.stopAll());

test('the printed curl command returns the sample model\'s answer', async () => {
  const [grpcPort, restPort] = [await freePort(), await freePort()];
  const dev = spawnModelmesh(group, 'modelmesh dev', ['dev', '--grpc-port', String(grpcPort), '--rest-port', String(restPort)]);
  const printed = await waitFor('modelmesh dev to print how to call it', () => {
    if (!dev.running) throw new Error(`modelmesh dev exited:\n${dev.log}`);
    return dev.log.includes('Press Ctrl-C') ? dev.log : undefined;
  }, { timeoutMs: 30_000, intervalMs: 100 });
  const curl = /curl -s http:\/\/127\.0\.0\.1:(\d+)(\/v2\/models\/sample\/infer) .* -d '([^']+)'/.exec(printed);
  expect(curl).not.toBeNull();
  const [, port, path, body] = curl!;
  const answer = await httpPostJson(Number(port), path, body);
  expect(answer.status).toBe(200);
  expect((answer.json as { outputs: Array<{ name: string; data: number[] }> }).outputs).toEqual([
    expect.objectContaining({ name: 'y', shape: [1, 3], datatype: 'FP32', data: [2.25, 13, 4.5] }),
  ]);
  expect(await dev.stop('SIGINT')).toBe(0);
}, 60_000);
