import type { InferTensorContents, ModelInferRequest, ModelInferResponse } from '../../../proto/gen/grpc_predict_v2';
import { invalidArgument } from '../../src/errors';
import { decodeRawBytes, encodeRawBytes } from '../shared/bytes-tensor';

/** Tensor names in the example model's metadata; the input's name is not enforced, the output's is. */
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'output';
export const BYTES = 'BYTES';

/**
 * The example model's computation: one BYTES input holding one element `x` gives one BYTES output `output`, shape
 * [1], holding `modelBytes + x`. The answer uses the request's encoding (raw contents in, raw contents out), so a
 * client reads it back the way it wrote it. Throws INVALID_ARGUMENT naming the tensor for any other input.
 */
export function inferExample(modelId: string, modelBytes: Buffer, request: ModelInferRequest): ModelInferResponse {
  const { inputs, rawInputContents } = request;
  if (inputs.length !== 1) {
    const names = inputs.map((t) => `"${t.name}"`).join(', ');
    throw invalidArgument(`model ${modelId} takes exactly one BYTES input tensor, got ${inputs.length}${names ? ` (${names})` : ''}`);
  }
  const input = inputs[0];
  const name = input.name;
  if (input.datatype !== BYTES) {
    throw invalidArgument(`input tensor "${name}" has datatype ${input.datatype || '(none)'}; model ${modelId} takes ${BYTES}`);
  }

  const useRaw = rawInputContents.length > 0;
  let elements: Buffer[];
  if (useRaw) {
    if (input.contents && input.contents.bytesContents.length > 0) {
      throw invalidArgument(`input tensor "${name}": data is in both contents and raw_input_contents; use one`);
    }
    if (rawInputContents.length !== 1) {
      throw invalidArgument(`input tensor "${name}": raw_input_contents has ${rawInputContents.length} entries for 1 input`);
    }
    elements = decodeRawBytes(rawInputContents[0], name);
  } else {
    elements = input.contents?.bytesContents ?? [];
  }
  if (elements.length !== 1) {
    throw invalidArgument(`input tensor "${name}" holds ${elements.length} elements; model ${modelId} takes exactly one`);
  }
  const declared = input.shape.reduce((product, dim) => product * dim, 1);
  if (declared !== elements.length) {
    throw invalidArgument(`input tensor "${name}" has shape [${input.shape.join(', ')}] but holds ${elements.length} element`);
  }
  for (const requested of request.outputs) {
    if (requested.name !== OUTPUT_NAME) {
      throw invalidArgument(`requested output tensor "${requested.name}" does not exist; model ${modelId} has one output "${OUTPUT_NAME}"`);
    }
  }

  const result = Buffer.concat([modelBytes, elements[0]]);
  return {
    modelName: modelId,
    modelVersion: '',
    id: request.id,
    parameters: {},
    outputs: [{
      name: OUTPUT_NAME,
      datatype: BYTES,
      shape: [1],
      parameters: {},
      contents: useRaw ? undefined : bytesTensorContents([result]),
    }],
    rawOutputContents: useRaw ? [encodeRawBytes([result])] : [],
  };
}

/** Tensor contents holding only BYTES elements. */
function bytesTensorContents(bytesContents: Buffer[]): InferTensorContents {
  return {
    boolContents: [],
    intContents: [],
    int64Contents: [],
    uintContents: [],
    uint64Contents: [],
    fp32Contents: [],
    fp64Contents: [],
    bytesContents,
  };
}
