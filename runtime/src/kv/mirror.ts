import { KvStoreClosedError } from './errors';
import { KvEntry, KvEvent, KvStore, Watch } from './store';

/**
 * Told of every change: the new entry (undefined when deleted) and the one it replaced (undefined when new, and
 * always when the mirror keeps revisions only).
 */
export type MirrorListener = (key: string, entry: KvEntry | undefined, previous: KvEntry | undefined) => void;

export interface MirrorOptions {
  /**
   * Keep each key's mod revision only, not its entry: for a listener that keeps its own decoded copy (the registry,
   * 100k records), so the raw values are not held twice. `entries` and `get` are then empty. @default true
   */
  readonly keepEntries?: boolean;
  /** Pause before retrying a failed resync (store unreachable). @default 1000 */
  readonly retryDelayMs?: number;
  /** Errors after the first load: a resync that failed (it is retried), a listener that threw. */
  readonly onError?: (err: Error) => void;
}

/**
 * A local copy of every key under a prefix of a KvStore, kept current by a watch: a snapshot (`getPrefix`), then a
 * watch from the snapshot's revision + 1, so nothing between the two is missed. When the watch cannot continue
 * (compaction), it re-reads the prefix and tells listeners exactly what differs from what they last saw.
 *
 * Sized for 100k records: the map holds the store's entry objects keyed by their own key string, with nothing
 * allocated per entry beyond them; with `keepEntries: false`, only each key's mod revision (a small integer).
 *
 * Listeners also see the first load (every entry as new), so one listener can build a derived index from nothing.
 */
export class KvMirror {
  /** Resolves once the first snapshot is applied and the watch runs; rejects if that first load fails. */
  readonly ready: Promise<void>;
  private readonly map = new Map<string, KvEntry>();
  /** Mod revision of every key, when entries are not kept (`map` is then empty). */
  private readonly revisions?: Map<string, number>;
  private readonly listeners: MirrorListener[] = [];
  private watch?: Watch;
  /** Bumped on every (re)load, so events of a replaced watch are ignored. */
  private generation = 0;
  private lastRevision = 0;
  private closed = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly store: KvStore, readonly prefix: string, private readonly options: MirrorOptions = {}) {
    if (options.keepEntries === false) this.revisions = new Map();
    this.ready = this.load();
    // Callers that only use listeners need not await `ready`; a failed first load must not crash the process.
    this.ready.catch(() => undefined);
  }

  /** Every key under the prefix (keys are store-relative, prefix included). Live: do not hold on to iterators. */
  get entries(): ReadonlyMap<string, KvEntry> {
    return this.map;
  }

  /** Store revision the mirror reflects: the last applied event, or the last snapshot. */
  get revision(): number {
    return this.lastRevision;
  }

  get(key: string): KvEntry | undefined {
    return this.map.get(key);
  }

  /** Adds a change listener; returns a function that removes it. */
  onChange(listener: MirrorListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const watch = this.watch;
    this.watch = undefined;
    await watch?.cancel();
  }

  private async load(): Promise<void> {
    const generation = ++this.generation;
    const snapshot = await this.store.getPrefix(this.prefix);
    if (this.closed || generation !== this.generation) return;
    this.applySnapshot(snapshot.entries, snapshot.revision);
    const watch = await this.store.watchPrefix(this.prefix, snapshot.revision + 1, {
      onEvents: (events) => {
        if (generation === this.generation) this.applyEvents(events);
      },
      onResyncNeeded: (err) => {
        if (generation === this.generation) this.resync(err);
      },
    });
    if (this.closed || generation !== this.generation) {
      await watch.cancel();
      return;
    }
    this.watch = watch;
  }

  private resync(cause: Error): void {
    if (this.closed) return;
    this.report(cause);
    const old = this.watch;
    this.watch = undefined;
    this.generation++;
    void old?.cancel();
    this.load().catch((err: Error) => {
      this.report(err);
      // A closed store will never answer again: stop rather than retry forever.
      if (this.closed || err instanceof KvStoreClosedError) return;
      this.retryTimer = setTimeout(() => this.resync(err), this.options.retryDelayMs ?? 1_000);
    });
  }

  /** The mod revision held for `key` (the entry itself is in `map` when entries are kept). */
  private heldRevision(key: string): number | undefined {
    return this.revisions ? this.revisions.get(key) : this.map.get(key)?.modRevision;
  }

  private hold(entry: KvEntry): void {
    if (this.revisions) this.revisions.set(entry.key, entry.modRevision);
    else this.map.set(entry.key, entry);
  }

  private drop(key: string): void {
    if (this.revisions) this.revisions.delete(key);
    else this.map.delete(key);
  }

  private applySnapshot(entries: readonly KvEntry[], revision: number): void {
    this.lastRevision = revision;
    const keys = this.revisions ?? this.map;
    const present = keys.size > 0 ? new Set<string>() : undefined;
    for (const entry of entries) {
      present?.add(entry.key);
      const held = this.heldRevision(entry.key);
      if (held === entry.modRevision) continue;
      const previous = this.map.get(entry.key);
      this.hold(entry);
      this.emit(entry.key, entry, previous);
    }
    if (!present) return;
    for (const key of keys.keys()) {
      if (present.has(key)) continue;
      const previous = this.map.get(key);
      this.drop(key);
      this.emit(key, undefined, previous);
    }
  }

  private applyEvents(events: readonly KvEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'put') {
        const entry = ev.entry;
        const held = this.heldRevision(entry.key);
        this.lastRevision = Math.max(this.lastRevision, entry.modRevision);
        // A snapshot taken during a resync may already hold a newer version than a late event.
        if (held !== undefined && held >= entry.modRevision) continue;
        const previous = this.map.get(entry.key);
        this.hold(entry);
        this.emit(entry.key, entry, previous);
      } else {
        const held = this.heldRevision(ev.key);
        this.lastRevision = Math.max(this.lastRevision, ev.modRevision);
        if (held === undefined || held > ev.modRevision) continue;
        const previous = this.map.get(ev.key);
        this.drop(ev.key);
        this.emit(ev.key, undefined, previous);
      }
    }
  }

  private emit(key: string, entry: KvEntry | undefined, previous: KvEntry | undefined): void {
    for (const listener of this.listeners) {
      try {
        listener(key, entry, previous);
      } catch (err) {
        this.report(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private report(err: Error): void {
    this.options.onError?.(err);
  }
}
