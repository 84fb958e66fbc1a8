import { Metadata, status } from '@grpc/grpc-js';
import {
  ModelInferRequest, ModelInferRequest_InferInputTensor, ModelInferResponse,
} from '../../proto/gen/grpc_predict_v2';
import { inferExample } from '../../runtime/servers/example/infer';
import { decodeRawBytes, encodeRawBytes } from '../../runtime/servers/shared/bytes-tensor';
import { LoadSlots } from '../../runtime/servers/shared/load-slots';
import { selectModelId } from '../../runtime/servers/shared/model-id';
import { MeshError } from '../../runtime/src/errors';

const MODEL = Buffer.from('Hello, ');

function bytesInput(name: string, elements: string[], shape = [elements.length]): ModelInferRequest_InferInputTensor {
  return ModelInferRequest_InferInputTensor.fromPartial({
    name, datatype: 'BYTES', shape, contents: { bytesContents: elements.map((e) => Buffer.from(e)) },
  });
}

function refusal(run: () => unknown): MeshError {
  try {
    run();
  } catch (err) {
    if (err instanceof MeshError) return err;
    throw err;
  }
  throw new Error('expected a MeshError');
}

describe('raw BYTES tensor contents (KServe v2: 4-byte little-endian length, then the bytes)', () => {
  test('encodes each element behind its length', () => {
    expect(encodeRawBytes([Buffer.from('ab'), Buffer.from(''), Buffer.from('xyz')]))
      .toEqual(Buffer.from([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 3, 0, 0, 0, 0x78, 0x79, 0x7a]));
  });

  test('the length is little-endian and covers long elements', () => {
    const long = Buffer.alloc(0x0102_03, 7);
    const raw = encodeRawBytes([long]);
    expect([...raw.subarray(0, 4)]).toEqual([0x03, 0x02, 0x01, 0x00]);
    expect(decodeRawBytes(raw, 't')).toEqual([long]);
  });

  test('decoding inverts encoding, also for an empty tensor', () => {
    const elements = [Buffer.from('héllo'), Buffer.alloc(0), Buffer.from([0, 255, 1])];
    expect(decodeRawBytes(encodeRawBytes(elements), 't')).toEqual(elements);
    expect(decodeRawBytes(encodeRawBytes([]), 't')).toEqual([]);
  });

  test('decodes from a view into a larger buffer', () => {
    const framed = Buffer.concat([Buffer.from('junk'), encodeRawBytes([Buffer.from('ok')]), Buffer.from('more')]);
    expect(decodeRawBytes(framed.subarray(4, 4 + 6), 't')).toEqual([Buffer.from('ok')]);
  });

  test('a truncated prefix or element is INVALID_ARGUMENT naming the tensor', () => {
    const cutPrefix = refusal(() => decodeRawBytes(Buffer.from([1, 0]), 'words'));
    expect(cutPrefix.code).toBe(status.INVALID_ARGUMENT);
    expect(cutPrefix.message).toMatch(/input tensor "words".*length prefix/);
    const cutElement = refusal(() => decodeRawBytes(Buffer.from([5, 0, 0, 0, 0x61]), 'words'));
    expect(cutElement.code).toBe(status.INVALID_ARGUMENT);
    expect(cutElement.message).toMatch(/input tensor "words": raw BYTES element 0 claims 5 bytes but only 1 remain/);
  });
});

describe('the example model (T + x)', () => {
  test('answers one BYTES output "output" of shape [1] holding T + x, in contents when asked in contents', () => {
    const response = inferExample('m1', MODEL, ModelInferRequest.fromPartial({ id: 'r1', inputs: [bytesInput('text', ['world'])] }));
    expect(response.modelName).toBe('m1');
    expect(response.id).toBe('r1');
    expect(response.outputs).toHaveLength(1);
    expect(response.outputs[0]).toMatchObject({ name: 'output', datatype: 'BYTES', shape: [1] });
    expect(response.outputs[0].contents?.bytesContents).toEqual([Buffer.from('Hello, world')]);
    expect(response.rawOutputContents).toEqual([]);
  });

  test('answers in raw_output_contents when asked in raw_input_contents', () => {
    const request = ModelInferRequest.fromPartial({
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }],
      rawInputContents: [encodeRawBytes([Buffer.from('raw')])],
    });
    const response = inferExample('m1', MODEL, request);
    expect(response.outputs[0].contents).toBeUndefined();
    expect(response.rawOutputContents).toHaveLength(1);
    expect(decodeRawBytes(response.rawOutputContents[0], 'output')).toEqual([Buffer.from('Hello, raw')]);
  });

  test('survives the wire: the encoded response decodes to the same answer', () => {
    const response = inferExample('m1', MODEL, ModelInferRequest.fromPartial({ inputs: [bytesInput('text', ['!'], [1, 1])] }));
    const decoded = ModelInferResponse.decode(ModelInferResponse.encode(response).finish());
    expect(decoded.outputs[0].contents?.bytesContents.map((b) => b.toString())).toEqual(['Hello, !']);
  });

  test.each([
    ['no input', ModelInferRequest.fromPartial({}), /takes exactly one BYTES input tensor, got 0/],
    ['two inputs', ModelInferRequest.fromPartial({ inputs: [bytesInput('a', ['1']), bytesInput('b', ['2'])] }),
      /exactly one BYTES input tensor, got 2 \("a", "b"\)/],
    ['a wrong datatype', ModelInferRequest.fromPartial({ inputs: [{ name: 'nums', datatype: 'FP32', shape: [1], contents: { fp32Contents: [1] } }] }),
      /input tensor "nums" has datatype FP32; model m1 takes BYTES/],
    ['two elements', ModelInferRequest.fromPartial({ inputs: [bytesInput('text', ['a', 'b'])] }),
      /input tensor "text" holds 2 elements; model m1 takes exactly one/],
    ['no elements', ModelInferRequest.fromPartial({ inputs: [bytesInput('text', [], [0])] }), /input tensor "text" holds 0 elements/],
    ['a shape that disagrees', ModelInferRequest.fromPartial({ inputs: [bytesInput('text', ['a'], [3])] }),
      /input tensor "text" has shape \[3\] but holds 1 element/],
    ['data in both places', ModelInferRequest.fromPartial({ inputs: [bytesInput('text', ['a'])], rawInputContents: [encodeRawBytes([Buffer.from('b')])] }),
      /input tensor "text": data is in both contents and raw_input_contents/],
    ['two raw elements', ModelInferRequest.fromPartial({
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }], rawInputContents: [encodeRawBytes([Buffer.from('a'), Buffer.from('b')])],
    }), /input tensor "text" holds 2 elements/],
    ['an unknown requested output', ModelInferRequest.fromPartial({ inputs: [bytesInput('text', ['a'])], outputs: [{ name: 'logits' }] }),
      /requested output tensor "logits" does not exist/],
  ])('%s is INVALID_ARGUMENT naming the tensor', (_what, request, message) => {
    const err = refusal(() => inferExample('m1', MODEL, request));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
  });
});

describe('model selection on the data plane', () => {
  test('mm-model-id wins, then mm-model-id-bin, then the request field', () => {
    const both = new Metadata();
    both.set('mm-model-id', 'from-header');
    both.set('mm-model-id-bin', Buffer.from('from-binary'));
    expect(selectModelId(both, 'from-body')).toBe('from-header');

    const binary = new Metadata();
    binary.set('mm-model-id-bin', Buffer.from('modèle'));
    expect(selectModelId(binary, 'from-body')).toBe('modèle');

    expect(selectModelId(new Metadata(), 'from-body')).toBe('from-body');
    expect(selectModelId(new Metadata(), '')).toBeUndefined();
    expect(selectModelId(new Metadata())).toBeUndefined();
  });
});

describe('the load queue', () => {
  test('grants at most `limit` slots, then first come, first served', async () => {
    const slots = new LoadSlots(2);
    const order: string[] = [];
    const take = (name: string) => slots.acquire().then((release) => { order.push(name); return release; });
    const a = await take('a');
    await take('b');
    const c = take('c');
    const d = take('d');
    expect(slots.busy).toBe(2);
    expect(slots.queued).toBe(2);
    a();
    a(); // releasing twice frees one slot only
    await c;
    expect(order).toEqual(['a', 'b', 'c']);
    expect(slots.busy).toBe(2);
    expect(slots.queued).toBe(1);
    (await c)();
    (await d)();
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(slots.busy).toBe(1);
  });

  test('an aborted waiter leaves the queue without taking a slot', async () => {
    const slots = new LoadSlots(1);
    const first = await slots.acquire();
    const abort = new AbortController();
    const cancelled = slots.acquire(abort.signal);
    const next = slots.acquire();
    abort.abort(new Error('unloaded'));
    await expect(cancelled).rejects.toThrow('unloaded');
    first();
    (await next)();
    expect(slots.busy).toBe(0);
    expect(slots.queued).toBe(0);
  });

  test('closing rejects waiters and later requests', async () => {
    const slots = new LoadSlots(1);
    await slots.acquire();
    const waiting = slots.acquire();
    slots.close(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
    await expect(slots.acquire()).rejects.toThrow('shutting down');
  });
});
