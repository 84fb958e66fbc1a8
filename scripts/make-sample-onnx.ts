/**
 * Writes the sample ONNX model that `modelmesh dev` serves and the ONNX runtime's tests load: a linear layer
 * y = x · W + b with fixed weights (float32; input "x" [batch, 4] → output "y" [batch, 3]).
 *
 * Usage: ts-node scripts/make-sample-onnx.ts [out.onnx]   (default: runtime/models/sample/model.onnx)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { encodeOnnxModel, float32Raw, OnnxDataType } from './onnx-encode';

/** Where the committed sample model lives, relative to the repository root. */
export const SAMPLE_MODEL_PATH = join('runtime', 'models', 'sample', 'model.onnx');

export const SAMPLE_INPUT = 'x';
export const SAMPLE_OUTPUT = 'y';
export const SAMPLE_IN_FEATURES = 4;
export const SAMPLE_OUT_FEATURES = 3;

/** W, [4][3], row-major. Values are exact in float32, so results computed in tests are exact too. */
export const SAMPLE_WEIGHTS: readonly (readonly number[])[] = [
  [1, -1, 0.5],
  [2, 0, -0.5],
  [0.25, 1, 1],
  [-1, 3, 0],
];
/** b, [3]. */
export const SAMPLE_BIAS: readonly number[] = [0.5, -1, 2];

/** y = x · W + b for one row of x, in float64: the reference the tests compare inference against. */
export function sampleReference(row: readonly number[]): number[] {
  return SAMPLE_BIAS.map((bias, j) => row.reduce((sum, x, i) => sum + x * SAMPLE_WEIGHTS[i][j], bias));
}

/** The sample model's bytes; the same every time. */
export function buildSampleModel(): Buffer {
  return encodeOnnxModel({
    // IR 7 with opset 13: loadable by every onnxruntime since 1.6 and by Triton's ONNX backend.
    irVersion: 7,
    opsetVersion: 13,
    producerName: 'cdk8s-modelmesh',
    producerVersion: '1',
    docString: 'Sample linear model: y = x · W + b (scripts/make-sample-onnx.ts)',
    graphName: 'sample-linear',
    nodes: [
      { opType: 'MatMul', inputs: [SAMPLE_INPUT, 'W'], outputs: ['xW'], name: 'matmul' },
      { opType: 'Add', inputs: ['xW', 'b'], outputs: [SAMPLE_OUTPUT], name: 'add' },
    ],
    initializers: [
      { name: 'W', dataType: OnnxDataType.FLOAT, dims: [SAMPLE_IN_FEATURES, SAMPLE_OUT_FEATURES], raw: float32Raw(SAMPLE_WEIGHTS.flat()) },
      { name: 'b', dataType: OnnxDataType.FLOAT, dims: [SAMPLE_OUT_FEATURES], raw: float32Raw(SAMPLE_BIAS) },
    ],
    inputs: [{ name: SAMPLE_INPUT, elemType: OnnxDataType.FLOAT, dims: ['batch', SAMPLE_IN_FEATURES] }],
    outputs: [{ name: SAMPLE_OUTPUT, elemType: OnnxDataType.FLOAT, dims: ['batch', SAMPLE_OUT_FEATURES] }],
  });
}

if (require.main === module) {
  const out = process.argv[2] ?? join(__dirname, '..', SAMPLE_MODEL_PATH);
  mkdirSync(dirname(out), { recursive: true });
  const bytes = buildSampleModel();
  writeFileSync(out, bytes);
  process.stdout.write(`wrote ${out} (${bytes.length} bytes)\n`);
}
