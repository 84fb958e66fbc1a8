import { status } from '@grpc/grpc-js';
import { RpcConfig } from './dataplane-config';
import { ProtobufPathError, extractString } from './protobuf-path';
import { RoutingHeaders } from '../../../lib/contract';
import { headerText } from '../api/grpc-wire';
import { MeshError, invalidArgument } from '../errors';
import { IncomingHeaders } from '../h2/server';

/** Which model a data-plane call is for, as the caller said it. */
export type RoutingId =
  | { readonly kind: 'model'; readonly id: string }
  | { readonly kind: 'vmodel'; readonly id: string; /** Fall back to a model of that id when no vmodel exists. */ readonly orModel: boolean };

/**
 * Reads the routing headers: `mm-vmodel-id` or `mm-model-id` (or their `-bin` forms), or `mm-model-name` (a vmodel
 * id or else a model id); more than one kind at once is INVALID_ARGUMENT. Returns undefined when none is present.
 */
export function routingIdFromHeaders(headers: IncomingHeaders): RoutingId | undefined {
  const model = headerText(headers, RoutingHeaders.MODEL_ID) ?? headerText(headers, `${RoutingHeaders.MODEL_ID}-bin`);
  const vmodel = headerText(headers, RoutingHeaders.VMODEL_ID) ?? headerText(headers, `${RoutingHeaders.VMODEL_ID}-bin`);
  const name = headerText(headers, RoutingHeaders.MODEL_NAME) ?? headerText(headers, `${RoutingHeaders.MODEL_NAME}-bin`);
  if ([model, vmodel, name].filter((v) => v !== undefined).length > 1) {
    throw invalidArgument(`send only one of ${RoutingHeaders.MODEL_ID}, ${RoutingHeaders.VMODEL_ID} and ${RoutingHeaders.MODEL_NAME}`);
  }
  if (model !== undefined) {
    if (!model) throw invalidArgument(`${RoutingHeaders.MODEL_ID} must not be empty`);
    return { kind: 'model', id: model };
  }
  if (vmodel !== undefined) {
    if (!vmodel) throw invalidArgument(`${RoutingHeaders.VMODEL_ID} must not be empty`);
    return { kind: 'vmodel', id: vmodel, orModel: false };
  }
  if (name !== undefined) {
    if (!name) throw invalidArgument(`${RoutingHeaders.MODEL_NAME} must not be empty`);
    return { kind: 'vmodel', id: name, orModel: true };
  }
  return undefined;
}

/** Reads the id from the request message as the method's data-plane config says. */
export function routingIdFromMessage(message: Uint8Array, method: string, config: RpcConfig): RoutingId {
  let id: string | undefined;
  try {
    id = extractString(message, config.idExtractionPath);
  } catch (err) {
    throw new MeshError(status.INVALID_ARGUMENT, `${method}: the request message is malformed (${(err as ProtobufPathError).message})`);
  }
  if (!id) {
    throw invalidArgument(`${method}: no model named: set the ${RoutingHeaders.VMODEL_ID} or ${RoutingHeaders.MODEL_ID} header, `
      + `or the request's field ${config.idExtractionPath.join('.')}`);
  }
  return config.vModelId ? { kind: 'vmodel', id, orModel: true } : { kind: 'model', id };
}
