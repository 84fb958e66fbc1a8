import { requireModel } from './inference';
import type { ModelStore } from './model-store';
import type { EchoRequest, ExampleStreamServer } from '../../../proto/gen/example';
import { statusOf } from '../shared/grpc-answer';

/**
 * modelmesh.example.ExampleStream/Echo: a bidirectional stream answering each request with the model's text
 * followed by the request's text. The model is looked up per message, so unloading it mid-stream ends the stream
 * with NOT_FOUND instead of answering from a model the mesh believes gone.
 */
export function echoService(store: ModelStore): ExampleStreamServer {
  return {
    echo: (call) => {
      let failed = false;
      const fail = (err: unknown) => {
        failed = true;
        // grpc-js turns an 'error' event on a server stream into the call's final status.
        call.emit('error', statusOf(err));
      };
      try {
        requireModel(store, call.metadata);
      } catch (err) {
        fail(err);
        return;
      }
      call.on('data', (request: EchoRequest) => {
        if (failed) return;
        try {
          const model = requireModel(store, call.metadata);
          call.write({ text: model.text + request.text });
        } catch (err) {
          fail(err);
        }
      });
      call.on('end', () => { if (!failed) call.end(); });
    },
  };
}
