/**
 * This instance's weighted LRU of model copies: sizes, last use, requests in flight, and which copies to evict to
 * make room. No I/O: the mesh unloads what `planEviction` names and then calls `remove`.
 */

export type LocalCopyState = 'loading' | 'loaded';

export interface LocalCopy {
  readonly modelId: string;
  state: LocalCopyState;
  /** Bytes reserved (while loading: the predicted size; once loaded: the measured size). */
  size: number;
  lastUsed: number;
  /** Requests currently being served by this copy; a busy copy is never evicted. */
  inFlight: number;
  /** When the copy finished loading (ms since epoch), 0 while loading. */
  loadedAt: number;
  /** Calls the runtime accepts at once for this copy (limitModelConcurrency); 0 means no limit. */
  maxConcurrency: number;
}

export interface EvictionPlan {
  /** Copies to unload, least recently used first. */
  readonly victims: readonly LocalCopy[];
  /** Whether unloading the victims frees enough. */
  readonly sufficient: boolean;
}

export class LruCache {
  /** Map iteration order is the LRU order: least recently used first. */
  private readonly copies = new Map<string, LocalCopy>();
  private usedBytes = 0;

  constructor(public capacity: number) {}

  get used(): number {
    return this.usedBytes;
  }

  get free(): number {
    return Math.max(0, this.capacity - this.usedBytes);
  }

  get size(): number {
    return this.copies.size;
  }

  get(modelId: string): LocalCopy | undefined {
    return this.copies.get(modelId);
  }

  has(modelId: string): boolean {
    return this.copies.has(modelId);
  }

  /** Reserves space for a copy being loaded; it becomes the most recently used (callers pass the current time). */
  addLoading(modelId: string, size: number, lastUsed: number): LocalCopy {
    const existing = this.copies.get(modelId);
    if (existing) return existing;
    const copy: LocalCopy = { modelId, state: 'loading', size, lastUsed, inFlight: 0, loadedAt: 0, maxConcurrency: 0 };
    this.copies.set(modelId, copy);
    this.usedBytes += size;
    return copy;
  }

  /** Marks a copy loaded and replaces its reserved size with the measured one. */
  markLoaded(modelId: string, size: number, now: number): LocalCopy | undefined {
    const copy = this.copies.get(modelId);
    if (!copy) return undefined;
    this.usedBytes += size - copy.size;
    copy.size = size;
    copy.state = 'loaded';
    copy.loadedAt = now;
    return copy;
  }

  resize(modelId: string, size: number): void {
    const copy = this.copies.get(modelId);
    if (!copy) return;
    this.usedBytes += size - copy.size;
    copy.size = size;
  }

  /** Records a use: the copy becomes the most recently used. */
  touch(modelId: string, now: number): LocalCopy | undefined {
    const copy = this.copies.get(modelId);
    if (!copy) return undefined;
    if (now > copy.lastUsed) copy.lastUsed = now;
    this.copies.delete(modelId);
    this.copies.set(modelId, copy);
    return copy;
  }

  remove(modelId: string): LocalCopy | undefined {
    const copy = this.copies.get(modelId);
    if (!copy) return undefined;
    this.copies.delete(modelId);
    this.usedBytes -= copy.size;
    return copy;
  }

  /** Last use of the least recently used loaded copy; 0 when none is loaded. */
  lruTime(): number {
    for (const copy of this.copies.values()) if (copy.state === 'loaded') return copy.lastUsed;
    return 0;
  }

  /**
   * Which loaded, idle copies to unload so that `needed` bytes are free: first those `preferred` says may go first
   * (extra copies of models loaded elsewhere too), then any, each pass in least-recently-used order. Copies that are
   * loading or serving requests, and those in `keep`, are never chosen.
   */
  planEviction(needed: number, keep: ReadonlySet<string> = new Set(), preferred: (copy: LocalCopy) => boolean = () => false): EvictionPlan {
    let free = this.free;
    const victims: LocalCopy[] = [];
    if (free >= needed) return { victims, sufficient: true };
    const chosen = new Set<string>();
    for (const firstPass of [true, false]) {
      for (const copy of this.copies.values()) {
        if (copy.state !== 'loaded' || copy.inFlight > 0 || keep.has(copy.modelId) || chosen.has(copy.modelId)) continue;
        if (firstPass && !preferred(copy)) continue;
        victims.push(copy);
        chosen.add(copy.modelId);
        free += copy.size;
        if (free >= needed) return { victims, sufficient: true };
      }
    }
    return { victims, sufficient: false };
  }

  /** Copies used at or after `since`, most recently used first (what a leaving instance must move elsewhere). */
  usedSince(since: number): LocalCopy[] {
    return [...this.copies.values()].filter((c) => c.state === 'loaded' && c.lastUsed >= since).sort((a, b) => b.lastUsed - a.lastUsed);
  }

  /** All copies, least recently used first. */
  list(): LocalCopy[] {
    return [...this.copies.values()];
  }
}
