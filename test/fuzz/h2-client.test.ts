import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { Rng, isBugError, mutateBytes } from './mutate';
import { ClientConnection, StreamEnd } from '../../runtime/src/h2/client';
import { Flag, FrameType, frame, settingsPayload, uint32Payload } from '../../runtime/src/h2/frames';
import { HpackDecoder, encodeHeaderBlock } from '../../runtime/src/h2/hpack';

/**
 * Hostile peers for the data plane's HTTP/2 client: mutated header blocks into the HPACK decoder, and mutated server
 * transcripts over real TCP into a `ClientConnection`. The decoder must answer or refuse with its own error; the
 * connection must end every stream exactly once with an outcome and never throw into the process.
 */

const SEEDS = (JSON.parse(readFileSync(join(__dirname, 'corpus', 'seeds.json'), 'utf8')) as { parsers: number[] }).parsers;
const PER_SEED = { blocks: 300, transcripts: 40 };
let tried = 0;

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** Header blocks a server may send: static and dynamic references, Huffman strings, size updates, plain literals. */
const BLOCKS = [
  encodeHeaderBlock([[':status', '200'], ['content-type', 'application/grpc'], ['grpc-encoding', 'identity']]),
  Buffer.concat([hex('88 5f 8b 1d 75 d0 62 0d 26 3d 4c 4d 65 64 61'), hex('40 88 9a ca c8 b2 12 34 da 8f 01 30')]),
  Buffer.concat([hex('3f e1 1f 82 86 84 41 0f'), Buffer.from('www.example.com'), hex('be 58 86 a8eb 1064 9cbf')]),
];

/** One whole answer to stream 1: SETTINGS, response headers, a message, trailers; then a PING and a GOAWAY. */
function serverTranscript(): Buffer {
  const message = Buffer.concat([Buffer.from([0, 0, 0, 0, 3]), Buffer.from('abc')]);
  return Buffer.concat([
    frame(FrameType.SETTINGS, 0, 0, settingsPayload([[0x3, 100], [0x4, 65_535]])),
    frame(FrameType.SETTINGS, Flag.ACK, 0),
    frame(FrameType.HEADERS, Flag.END_HEADERS, 1, BLOCKS[0]),
    frame(FrameType.DATA, 0, 1, message),
    frame(FrameType.WINDOW_UPDATE, 0, 0, uint32Payload(1_000)),
    frame(FrameType.HEADERS, Flag.END_HEADERS + Flag.END_STREAM, 1, encodeHeaderBlock([['grpc-status', '0'], ['grpc-message', 'ok']])),
    frame(FrameType.PING, 0, 0, Buffer.alloc(8, 7)),
    frame(FrameType.GOAWAY, 0, 0, uint32Payload(1, 0)),
  ]);
}

const KNOWN_ENDS = new Set<StreamEnd['kind']>(['ended', 'cancelled', 'reset', 'refused', 'failed']);

afterAll(() => {
  process.stdout.write(`fuzz (HTTP/2 client): ${tried} inputs tried\n`);
});

describe.each(SEEDS)('seed %i', (seed) => {
  test('mutated header blocks are decoded or refused with an HPACK error', () => {
    const rng = new Rng(seed);
    for (let i = 0; i < PER_SEED.blocks; i++) {
      let block = rng.pick(BLOCKS);
      for (let n = 1 + rng.int(3); n > 0; n--) block = mutateBytes(rng, block);
      tried++;
      try {
        new HpackDecoder(4_096, 64 * 1024).decode(block);
      } catch (err) {
        if (isBugError(err)) throw new Error(`seed ${seed} block ${i} raised ${String(err)} for ${block.toString('hex')}`);
      }
    }
  });

  test('mutated server transcripts end the stream with an outcome, and the process goes on', async () => {
    const rng = new Rng(seed);
    const valid = serverTranscript();
    let transcript = valid;
    const server = net.createServer((socket) => {
      socket.on('error', () => undefined);
      // Read the client's preface and request (and ignore them), answer with the transcript, then close.
      socket.resume();
      socket.end(transcript);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < PER_SEED.transcripts; i++) {
        transcript = valid;
        for (let n = 1 + rng.int(3); n > 0; n--) transcript = mutateBytes(rng, transcript);
        tried++;
        const connection = new ClientConnection(net.connect({ host: '127.0.0.1', port }), { scheme: 'http', authority: 'fuzz' });
        const stream = connection.request([[':method', 'POST'], [':path', '/f/f'], ['content-type', 'application/grpc']]);
        const ends: StreamEnd[] = [];
        const ended = new Promise<void>((resolve) => {
          const ignore = () => undefined;
          stream.handlers = {
            response: ignore,
            data: ignore,
            trailers: ignore,
            drain: ignore,
            close: (end) => {
              ends.push(end);
              resolve();
            },
          };
        });
        stream.end();
        await ended;
        await new Promise((resolve) => setImmediate(resolve));
        if (ends.length !== 1 || !KNOWN_ENDS.has(ends[0].kind)) {
          throw new Error(`seed ${seed} transcript ${i}: stream ended ${JSON.stringify(ends)} for ${transcript.toString('hex').slice(0, 400)}`);
        }
        connection.destroy();
      }
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      server.close();
    }
  });
});
