export { Code, codeName } from './codes.js';
export { TtrpcError } from './errors.js';
export {
  encodeRequest, decodeRequest, encodeResponse, decodeResponse, metadataToPairs, pairsToMetadata, WireError,
  type RequestEnvelope, type ResponseEnvelope, type StatusEnvelope, type AnyEnvelope, type KeyValue, type Metadata,
} from './wire.js';
export {
  MESSAGE_TYPE, HEADER_LENGTH, DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, encodeFrame, sealFrame, writeHeader, type Frame,
} from './channel.js';
export { Server, type ServerOptions, type RequestContext, type UnaryHandler } from './server.js';
export { Client, type ClientOptions, type CallOptions } from './client.js';
export {
  defineService, serveService, serviceClient, bytesCodec,
  type Codec, type MethodDefinition, type MethodMap, type ServiceDefinition, type ServiceImplementation, type ServiceClient,
  type RequestOf, type ResponseOf,
} from './service.js';
