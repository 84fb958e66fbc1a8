import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { type PullerFixture, expectPullError, pullerFixture } from './helpers';
import { type AzureEmulator, startAzurite } from '../../harness/storage-servers';

/** The puller's `azure` type against azurite (Microsoft's Azure Storage emulator, from npm) on loopback. */

let az: AzureEmulator;
let fx: PullerFixture;

beforeAll(async () => {
  az = await startAzurite();
  await az.createContainer('models');
  await az.createContainer('public', true);
  await az.put('models', 'fraud/model.onnx', 'azure-fraud');
  await az.put('models', 'bert/vocab.txt', 'vocab');
  await az.put('models', 'bert/1/model.pt', 'bert-weights');
  await az.put('models', 'bert-large/model.pt', 'not part of bert');
  await az.put('public', 'open/model.bin', 'anonymous-ok');
});

afterAll(async () => {
  await az?.stop();
});

beforeEach(() => {
  fx = pullerFixture();
  fx.setKey('azconn', { type: 'azure', account_name: az.accountName, container: 'models', connection_string: az.connectionString() });
});

afterEach(() => fx.cleanup());

test('pulls a blob and a folder prefix with a connection string', async () => {
  const file = await fx.puller.pull('az-1', 'fraud/model.onnx', JSON.stringify({ storage_key: 'azconn' }));
  expect(file.localPath).toBe(join(fx.rootModelDir, 'az-1', 'model.onnx'));
  expect(fx.read('az-1/model.onnx')).toBe('azure-fraud');

  const folder = await fx.puller.pull('az-2', 'bert', JSON.stringify({ storage_key: 'azconn' }));
  expect(folder.localPath).toBe(join(fx.rootModelDir, 'az-2', 'bert'));
  expect(fx.listRoot().filter((p) => p.startsWith('az-2'))).toEqual(['az-2', 'az-2/bert', 'az-2/bert/1', 'az-2/bert/1/model.pt', 'az-2/bert/vocab.txt']);
  expect(folder.diskSizeBytes).toBe('vocab'.length + 'bert-weights'.length);
});

test('reads a public container anonymously (endpoint_url points at the emulator instead of <account>.blob.core.windows.net)', async () => {
  fx.setKey('default_azure', { type: 'azure', account_name: az.accountName, container: 'public', endpoint_url: az.blobEndpoint });
  const result = await fx.puller.pull('anon-1', 'open/model.bin', JSON.stringify({ storage_params: { type: 'azure' } }));
  expect(result.storageKey).toBe('default_azure');
  expect(fx.read('anon-1/model.bin')).toBe('anonymous-ok');

  // The private container refuses anonymous reads.
  await expectPullError(fx.puller.pull('anon-2', 'fraud/model.onnx', JSON.stringify({ storage_params: { type: 'azure', container: 'models' } })),
    'unauthorized', ["storage key 'default_azure'", `azure://${az.accountName}/models/fraud/model.onnx`]);
});

test('an https://<account>.blob.core.windows.net/<container>/<path> model path selects account, container and path', async () => {
  // The URI sets type, account_name and container; the storage key supplies the connection string (the emulator).
  fx.setKey('azconn', { type: 'azure', account_name: 'someone-else', container: 'elsewhere', connection_string: az.connectionString() });
  const uri = `https://${az.accountName}.blob.core.windows.net/models/bert/vocab.txt`;
  const result = await fx.puller.pull('az-uri', uri, JSON.stringify({ storage_key: 'azconn' }));
  expect(result.localPath).toBe(join(fx.rootModelDir, 'az-uri', 'vocab.txt'));
  expect(fx.read('az-uri/vocab.txt')).toBe('vocab');
});

test('a wrong account key fails with PERMISSION_DENIED naming key and blob, without the connection string or key', async () => {
  const wrongKey = Buffer.from('this is not the account key, 32b').toString('base64');
  const connectionString = az.connectionString(wrongKey);
  fx.setKey('azbad', { type: 'azure', account_name: az.accountName, container: 'models', connection_string: connectionString });
  const err = await expectPullError(fx.puller.pull('bad-1', 'fraud/model.onnx', JSON.stringify({ storage_key: 'azbad' })),
    'unauthorized', ["storage key 'azbad'", `azure://${az.accountName}/models/fraud/model.onnx`], [wrongKey, connectionString, az.accountKey]);
  expect(err.code).toBe(status.PERMISSION_DENIED);
  expect(fx.listRoot()).toEqual([]);
});

test('a missing blob or container fails with NOT_FOUND naming key and object', async () => {
  await expectPullError(fx.puller.pull('nf-1', 'nope/model.onnx', JSON.stringify({ storage_key: 'azconn' })),
    'not-found', ["storage key 'azconn'", `azure://${az.accountName}/models/nope/model.onnx`], [az.accountKey]);
  await expectPullError(fx.puller.pull('nf-2', 'fraud/model.onnx', JSON.stringify({ storage_key: 'azconn', storage_params: { container: 'nocontainer' } })),
    'not-found', ["storage key 'azconn'", `azure://${az.accountName}/nocontainer/fraud/model.onnx`], [az.accountKey]);
  expect(fx.listRoot()).toEqual([]);
});

test('service-principal fields are refused with a clear message (not supported here)', async () => {
  fx.setKey('azsp', { type: 'azure', account_name: 'a', container: 'c', client_id: 'id', client_secret: 'sp-secret-value', tenant_id: 't' });
  await expectPullError(fx.puller.pull('sp-1', 'm', JSON.stringify({ storage_key: 'azsp' })),
    'invalid-storage-config', ["storage key 'azsp'", 'connection_string'], ['sp-secret-value']);
});
