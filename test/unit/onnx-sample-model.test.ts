import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildSampleModel, SAMPLE_BIAS, SAMPLE_MODEL_PATH, SAMPLE_WEIGHTS, sampleReference,
} from '../../scripts/make-sample-onnx';
import { encodeOnnxModel, OnnxDataType } from '../../scripts/onnx-encode';

const REPO = join(__dirname, '..', '..');

describe('the sample ONNX model', () => {
  test('the committed file is exactly what scripts/make-sample-onnx.ts writes (run it to regenerate)', () => {
    const committed = readFileSync(join(REPO, SAMPLE_MODEL_PATH));
    expect(buildSampleModel().equals(committed)).toBe(true);
    expect(committed.length).toBeLessThan(1024);
  });

  test('generating it twice gives the same bytes', () => {
    expect(buildSampleModel().equals(buildSampleModel())).toBe(true);
  });

  test('the reference computes y = x · W + b', () => {
    expect(SAMPLE_WEIGHTS).toHaveLength(4);
    expect(sampleReference([0, 0, 0, 0])).toEqual(SAMPLE_BIAS);
    expect(sampleReference([1, 2, 3, 4])).toEqual([2.25, 13, 4.5]);
  });
});

describe('the ONNX protobuf writer', () => {
  test('writes fields with onnx.proto\'s numbers and wire types', () => {
    const bytes = encodeOnnxModel({
      irVersion: 7,
      opsetVersion: 13,
      producerName: 'p',
      producerVersion: 'v',
      graphName: 'g',
      nodes: [{ opType: 'Cast', inputs: ['a'], outputs: ['b'], attributes: [{ name: 'to', int: 1 }] }],
      inputs: [{ name: 'a', elemType: OnnxDataType.INT64, dims: [300] }],
      outputs: [{ name: 'b', elemType: OnnxDataType.FLOAT, dims: ['n'] }],
    });
    // ModelProto.ir_version (1, varint) = 7, producer_name (2) = "p", producer_version (3) = "v".
    expect([...bytes.subarray(0, 8)]).toEqual([0x08, 7, 0x12, 1, 0x70, 0x1a, 1, 0x76]);
    // ModelProto.opset_import (8) holding OperatorSetIdProto.version (2) = 13, last.
    expect([...bytes.subarray(bytes.length - 4)]).toEqual([0x42, 2, 0x10, 13]);
    // Dimension.dim_value (1) = 300 as a two-byte varint; AttributeProto.type (20) = INT (2).
    expect(bytes.includes(Buffer.from([0x08, 0xac, 0x02]))).toBe(true);
    expect(bytes.includes(Buffer.from([0xa0, 0x01, 2]))).toBe(true);
  });

  test('refuses numbers a varint cannot hold exactly', () => {
    expect(() => encodeOnnxModel({
      irVersion: -1, opsetVersion: 13, producerName: 'p', producerVersion: 'v', graphName: 'g', nodes: [], inputs: [], outputs: [],
    })).toThrow(/cannot encode -1 as a varint/);
  });
});
