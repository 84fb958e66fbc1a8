import type { Metadata } from '@grpc/grpc-js';
import { RoutingHeaders } from '../../../lib/contract';

const MODEL_ID_BIN = `${RoutingHeaders.MODEL_ID}-bin`;

/**
 * The model a data-plane call is for: the `mm-model-id` header the mesh sets to the concrete model id, else its
 * binary form `mm-model-id-bin` (UTF-8), else `fallback` (a request field such as ModelInferRequest.model_name,
 * for clients that call the runtime directly). Undefined when none is set.
 */
export function selectModelId(metadata: Metadata, fallback?: string): string | undefined {
  const text = metadata.get(RoutingHeaders.MODEL_ID)[0];
  if (typeof text === 'string' && text !== '') return text;
  const binary = metadata.get(MODEL_ID_BIN)[0];
  if (Buffer.isBuffer(binary) && binary.length > 0) return binary.toString('utf8');
  return fallback === '' ? undefined : fallback;
}
