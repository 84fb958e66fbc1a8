import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, isBugError, mutateBytes, mutateJson } from './mutate';
import { ModelInferRequest } from '../../proto/gen/grpc_predict_v2';
import { parseEtcdConnection } from '../../runtime/src/kv/etcd-connection';
import { parseCatalog } from '../../runtime/src/lifecycle/catalog';
import { parseTypeConstraints } from '../../runtime/src/placement';
import { parseModelKey, parseStorageUri } from '../../runtime/src/puller/model-key';
import { resolveStorage } from '../../runtime/src/puller/storage-config';
import { parseJsonBody } from '../../runtime/src/rest/body';
import { inferRequestFromJson } from '../../runtime/src/rest/tensors';
import { parseDataplaneConfig } from '../../runtime/src/router/dataplane-config';
import { extractString, spliceString } from '../../runtime/src/router/protobuf-path';

/**
 * Every parser of outside input, fed mutations of valid inputs from `corpus/` under the seeds in `corpus/seeds.json`:
 * each input must be accepted or refused with the parser's own error — never a TypeError, RangeError or a hang — and
 * errors must not echo the secrets the input carried.
 */

const CORPUS = join(__dirname, 'corpus');
const corpus = (name: string) => readFileSync(join(CORPUS, name), 'utf8');
const SEEDS = (JSON.parse(corpus('seeds.json')) as { parsers: number[] }).parsers;
const PER_SEED = 150;
const SECRETS = ['s3cr3t-pw', 'secret-key-value', 'token-value', 'a2V5a2V5a2V5'];
let tried = 0;

/** Runs `parse` on `count` mutations; returns how many were tried. A bug error fails with the seed, index and input. */
async function fuzz<T>(name: string, seed: number, seeds: readonly T[], mutate: (rng: Rng, input: T) => T,
  parse: (input: T) => unknown): Promise<void> {
  const rng = new Rng(seed);
  for (let i = 0; i < PER_SEED; i++) {
    let input = rng.pick(seeds);
    for (let n = 1 + rng.int(3); n > 0; n--) input = mutate(rng, input);
    tried++;
    try {
      await parse(input);
    } catch (err) {
      if (isBugError(err)) throw new Error(`${name}: seed ${seed} input ${i} raised ${String(err)} for ${JSON.stringify(String(input)).slice(0, 300)}`);
      const message = (err as Error).message;
      for (const secret of SECRETS) {
        if (message.includes(secret)) throw new Error(`${name}: seed ${seed} input ${i}: the error echoes a secret: ${message}`);
      }
    }
  }
}

const json = (rng: Rng, text: string) => mutateJson(rng, text);

afterAll(() => {
  process.stdout.write(`fuzz (parsers): ${tried} inputs tried\n`);
});

describe.each(SEEDS)('seed %i', (seed) => {
  test('catalog, data-plane config, type constraints', async () => {
    await fuzz('catalog', seed, [corpus('catalog.json')], json, (text) => {
      const parsed = parseCatalog(text);
      // Invalid entries are reported, never half-applied: every kept model has a name.
      for (const model of parsed.models) expect(typeof model.name).toBe('string');
    });
    await fuzz('dataplane config', seed, [corpus('dataplane.json')], json, parseDataplaneConfig);
    await fuzz('type constraints', seed, [corpus('type-constraints.json')], json, parseTypeConstraints);
  });

  test('etcd_connection', async () => {
    await fuzz('etcd_connection', seed, [corpus('etcd-connection.json')], json,
      (text) => parseEtcdConnection(text, { source: 'fuzz', readFile: () => Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----') }));
  });

  test('model keys, storage URIs and storage-config entries', async () => {
    const keys = JSON.parse(corpus('model-keys.json')) as string[];
    await fuzz('model key', seed, keys, json, parseModelKey);
    await fuzz('storage URI', seed, JSON.parse(corpus('storage-uris.json')) as string[],
      (rng, uri) => mutateBytes(rng, Buffer.from(uri)).toString('latin1'), parseStorageUri);
    const dir = mkdtempSync(join(tmpdir(), 'mm-fuzz-storage-'));
    try {
      const entries = (JSON.parse(corpus('storage-entries.json')) as unknown[]).map((e) => JSON.stringify(e));
      let n = 0;
      await fuzz('storage-config entry', seed, entries, json, async (text) => {
        const sub = join(dir, String(n++));
        mkdirSync(sub);
        writeFileSync(join(sub, 'k'), text);
        return resolveStorage({ storageConfigDir: sub, storageKey: 'k', params: {} });
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('REST inference bodies', async () => {
    const bodies = (JSON.parse(corpus('rest-bodies.json')) as unknown[]).map((b) => JSON.stringify(b));
    await fuzz('REST body', seed, bodies, json, (text) => inferRequestFromJson(parseJsonBody(Buffer.from(text)), { model: 'm', version: '' }));
  });

  test('protobuf field paths over mutated ModelInfer messages', async () => {
    const valid = Buffer.from(ModelInferRequest.encode(ModelInferRequest.fromPartial({
      modelName: 'fraud', id: 'r', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32Contents: [1, 2, 3, 4] } }],
    })).finish());
    await fuzz('protobuf path', seed, [valid], mutateBytes, (bytes) => {
      extractString(bytes, [1]);
      extractString(bytes, [5, 1]);
      return spliceString(bytes, [1], 'replaced');
    });
  });
});
