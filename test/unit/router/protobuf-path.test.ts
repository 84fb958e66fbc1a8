import { ModelInferRequest } from '../../../proto/gen/grpc_predict_v2';
import { ProtobufPathError, extractString, spliceString } from '../../../runtime/src/router/protobuf-path';

type Partial = Parameters<typeof ModelInferRequest.fromPartial>[0];
const encode = (partial: Partial) => ModelInferRequest.encode(ModelInferRequest.fromPartial(partial)).finish();

describe('protobuf field paths', () => {
  test('reads a top-level string field without the schema', () => {
    const bytes = encode({ modelName: 'resnet', modelVersion: '2', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32Contents: [1, 2, 3] } }] });
    expect(extractString(bytes, [1])).toBe('resnet');
    expect(extractString(bytes, [2])).toBe('2');
  });

  test('reads a nested string field, and reports an absent one as undefined', () => {
    const bytes = encode({ inputs: [{ name: 'first', datatype: 'BYTES', shape: [1] }] });
    expect(extractString(bytes, [5, 1])).toBe('first');
    expect(extractString(bytes, [1])).toBeUndefined();
  });

  test('splices a model id in, keeping every other field', () => {
    const bytes = encode({ modelName: 'vmodel', id: 'req-1', inputs: [{ name: 'x', datatype: 'BYTES', shape: [1], contents: { bytesContents: [Buffer.from('a')] } }] });
    const decoded = ModelInferRequest.decode(spliceString(bytes, [1], 'concrete__abc'));
    expect(decoded.modelName).toBe('concrete__abc');
    expect(decoded.id).toBe('req-1');
    expect(Buffer.from(decoded.inputs[0].contents!.bytesContents[0]).toString()).toBe('a');
  });

  test('splicing creates missing parent messages', () => {
    const bytes = spliceString(encode({ modelName: 'm' }), [5, 1], 'made');
    expect(ModelInferRequest.decode(bytes).inputs[0].name).toBe('made');
  });

  test('malformed bytes and non-string fields are errors, not crashes', () => {
    expect(() => extractString(Buffer.from([0x0a, 0x05, 0x61]), [1])).toThrow(ProtobufPathError);
    expect(() => extractString(Buffer.from([0x08, 0x01]), [1])).toThrow('field 1 is not a string or message');
    expect(() => extractString(Buffer.from([0x0f]), [1])).toThrow('unsupported wire type 7');
  });
});
