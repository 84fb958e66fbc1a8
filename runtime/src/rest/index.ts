export type { RestServer, RestServerOptions } from './server';
export { MAX_HEADER_BYTES, startRestServer } from './server';
export type { InferResponseJson, OutputTensorJson } from './tensors';
export { inferRequestFromJson, inferResponseToJson } from './tensors';
export type { Datatype } from './datatypes';
export { DATATYPES } from './datatypes';
