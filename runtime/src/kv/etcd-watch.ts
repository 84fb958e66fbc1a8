import { IDuplexStream, IKeyValue, IWatchRequest, IWatchResponse } from 'etcd3';
import { KvResyncNeededError } from './errors';
import { prefixRangeEnd } from './namespace';
import { KvEntry, KvEvent, Watch, WatchHandlers } from './store';

/** A broken watch stream is re-opened after 100 ms, doubling up to 2 s while etcd stays away. */
const WATCH_RECONNECT_MIN_MS = 100;
const WATCH_RECONNECT_MAX_MS = 2_000;

export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

/** An etcd key-value as a KvEntry, its key made relative by cutting the namespace's `nsBytes` bytes. */
export function toEntry(kv: IKeyValue, nsBytes: number): KvEntry {
  return {
    key: kv.key.toString('utf8', nsBytes),
    value: kv.value.toString('utf8'),
    modRevision: Number(kv.mod_revision),
    lease: kv.lease === '0' || !kv.lease ? undefined : kv.lease,
  };
}

/**
 * One prefix watch on its own etcd watch stream. etcd3's shared WatchManager is not used: on a reconnect it resumes
 * from the last response header's revision, which can skip events it has not yet delivered while catching up, and
 * its reconnect timers outlive `close()`. Here the watch resumes from the revision after the last event it
 * delivered, drops anything older, turns a server-side cancel (compaction) into `onResyncNeeded`, and `cancel()`
 * ends the stream and any pending reconnect at once.
 */
export class EtcdWatch implements Watch {
  readonly started: Promise<void>;
  private resolveStarted!: () => void;
  private stream?: WatchStream;
  /** Revision the next (re)created watch starts at; 0 until known for a watch "from now". */
  private nextRevision: number;
  private ended = false;
  private reconnectTimer?: NodeJS.Timeout;
  private backoffMs = 0;
  /** Why the stream last broke, for the error when it never starts. */
  private lastError?: Error;

  constructor(
    private readonly open: () => Promise<WatchStream>,
    private readonly key: Buffer,
    private readonly nsBytes: number,
    fromRevision: number,
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
    private readonly onEnd: (watch: EtcdWatch) => void,
  ) {
    this.nextRevision = fromRevision > 0 ? fromRevision : 0;
    this.started = new Promise((resolve) => { this.resolveStarted = resolve; });
    this.connect();
  }

  get lastFailure(): string {
    return this.lastError ? `: ${this.lastError.message}` : '';
  }

  async cancel(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(this);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const stream = this.stream;
    this.stream = undefined;
    if (stream) closeStream(stream);
  }

  private connect(): void {
    this.open().then((stream) => {
      if (this.ended) {
        closeStream(stream);
        return;
      }
      this.stream = stream;
      stream.on('data', (res) => this.response(stream, res));
      stream.on('error', (err) => this.broken(stream, err));
      stream.on('end', () => this.broken(stream, new Error('watch stream ended')));
      stream.write({
        create_request: { key: this.key, range_end: prefixRangeEnd(this.key), start_revision: this.nextRevision || undefined },
      });
    }, (err: Error) => this.broken(undefined, err));
  }

  private response(stream: WatchStream, res: IWatchResponse): void {
    if (this.ended || stream !== this.stream) return;
    if (res.created) {
      if (this.nextRevision === 0) this.nextRevision = Number(res.header.revision) + 1;
      this.backoffMs = 0;
      this.resolveStarted();
    }
    if (res.canceled) {
      this.serverCancelled(res);
      return;
    }
    if (!res.events || res.events.length === 0) return;
    const floor = this.nextRevision;
    const events: KvEvent[] = [];
    for (const ev of res.events) {
      const modRevision = Number(ev.kv.mod_revision);
      // A reconnect may replay what was delivered already; etcd never splits one revision across responses.
      if (modRevision < floor) continue;
      if (String(ev.type).toLowerCase() === 'delete') {
        events.push({ type: 'delete', key: ev.kv.key.toString('utf8', this.nsBytes), modRevision });
      } else {
        events.push({ type: 'put', entry: toEntry(ev.kv, this.nsBytes) });
      }
      if (modRevision >= this.nextRevision) this.nextRevision = modRevision + 1;
    }
    if (events.length > 0) this.handlers.onEvents(events);
  }

  private broken(stream: WatchStream | undefined, err: Error): void {
    if (this.ended || (stream && stream !== this.stream)) return;
    this.stream = undefined;
    if (stream) closeStream(stream);
    if (this.reconnectTimer) return;
    this.backoffMs = Math.min(Math.max(WATCH_RECONNECT_MIN_MS, this.backoffMs * 2), WATCH_RECONNECT_MAX_MS);
    // Jitter, so every mesh instance does not reconnect at the same moment after an etcd restart.
    const delay = Math.round(this.backoffMs * (0.75 + Math.random() / 2));
    this.lastError = err;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect();
    }, delay);
  }

  private serverCancelled(res: IWatchResponse): void {
    void this.cancel();
    this.resolveStarted();
    const compacted = Number(res.compact_revision);
    const why = compacted > 0 ? `history up to revision ${compacted} was compacted` : `reason: ${res.cancel_reason || 'none given'}`;
    const reason = new KvResyncNeededError(
      `etcd cancelled the watch on ${this.prefix || '(all keys)'} from revision ${this.nextRevision} (${why}); re-read and watch again`);
    // After the caller has its Watch (the cancel can arrive before watchPrefix returns).
    setImmediate(() => this.handlers.onResyncNeeded?.(reason));
  }
}

/** Half-closes, then cancels: a stream that is no longer writable is not reported to etcd3's circuit breaker. */
function closeStream(stream: WatchStream): void {
  stream.on('error', () => undefined);
  stream.end();
  stream.cancel();
}
