/**
 * The JSON records the mesh keeps in the store, and their codecs. Decoding validates shape so one corrupt record
 * is reported and skipped instead of crashing every instance that mirrors it.
 */

export type CopyState = 'loading' | 'loaded';

export interface CopyRecord {
  readonly state: CopyState;
  /** When the copy entered this state (ms since epoch). */
  readonly since: number;
}

export interface FailureRecord {
  /** When the load failed (ms since epoch). */
  readonly time: number;
  /** The runtime's message, as a person should read it. */
  readonly message: string;
}

/** `registry/<modelId>` */
export interface ModelRecord {
  readonly type: string;
  readonly path?: string;
  readonly key?: string;
  /** Instance id → copy. */
  readonly copies: Readonly<Record<string, CopyRecord>>;
  /** Instance id → latest load failure there; expired entries are pruned by whoever writes the record next. */
  readonly failures: Readonly<Record<string, FailureRecord>>;
  /** Number of vmodel references (as active or target). */
  readonly refs: number;
  /** Delete the model once `refs` drops to 0. */
  readonly autoDelete: boolean;
  /** Last use anywhere (ms since epoch), coarse: refreshed when a copy is loaded or periodically while in use. */
  readonly lastUsed: number;
  /** Size in bytes measured by the runtime, once known. */
  readonly size?: number;
}

/** `vmodels/<vModelId>` */
export interface VModelRecord {
  readonly owner?: string;
  readonly active: string;
  readonly target: string;
  /** The transition to `target` failed (TRANSITION_FAILED); retried when the target's state changes. */
  readonly failed: boolean;
  /** When the transition to `target` began (ms since epoch); bounds how long it waits for the target to scale. */
  readonly transitionSince?: number;
}

/** `instances/<instanceId>`, bound to the instance's lease. */
export interface InstanceRecord {
  /** host:port of the instance's front door. */
  readonly address: string;
  readonly capacity: number;
  /** Bytes used by loaded copies plus reservations for loads in flight. */
  readonly used: number;
  /** Last-use time of the instance's least recently used copy (ms since epoch); 0 when empty. */
  readonly lruTime: number;
  readonly copies: number;
  readonly loadsInFlight: number;
  readonly maxLoadingConcurrency: number;
  /** Default model size reported by the runtime: an instance is full when less than this is free. */
  readonly defaultModelSize: number;
  /** Requests per minute served by this instance. */
  readonly rpm: number;
  /** Data-plane calls this instance is forwarding right now (to its runtime or to peers). */
  readonly requestsInFlight: number;
  readonly labels: readonly string[];
  readonly zone?: string;
  readonly version: string;
  readonly startTime: number;
  readonly shuttingDown: boolean;
  /** When this record was published (ms since epoch). */
  readonly updated: number;
}

export class RecordError extends Error {
  constructor(kind: string, key: string, problem: string) {
    super(`${kind} record ${key} is malformed: ${problem}`);
    this.name = 'RecordError';
  }
}

type Json = Record<string, unknown>;

function object(value: unknown, kind: string, key: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RecordError(kind, key, 'not a JSON object');
  return value as Json;
}

function parse(raw: string, kind: string, key: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new RecordError(kind, key, (err as Error).message);
  }
  return object(value, kind, key);
}

const num = (o: Json, f: string, kind: string, key: string, fallback?: number): number => {
  const v = o[f];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RecordError(kind, key, `${f} must be a number`);
  return v;
};

const str = (o: Json, f: string, kind: string, key: string): string => {
  const v = o[f];
  if (typeof v !== 'string') throw new RecordError(kind, key, `${f} must be a string`);
  return v;
};

const optStr = (o: Json, f: string, kind: string, key: string): string | undefined =>
  (o[f] === undefined ? undefined : str(o, f, kind, key));

/** Shared by every record without copies or failures (most of 100k registered models): one object, not one each. */
const NONE: Readonly<Record<string, never>> = Object.freeze({});

export function decodeModel(key: string, raw: string): ModelRecord {
  const kind = 'model';
  const o = parse(raw, kind, key);
  let copies: Record<string, CopyRecord> = NONE;
  for (const [id, c] of Object.entries(object(o.copies ?? NONE, kind, key))) {
    const copy = object(c, kind, key);
    const state = copy.state;
    if (state !== 'loading' && state !== 'loaded') throw new RecordError(kind, key, `copies.${id}.state must be loading or loaded`);
    if (copies === NONE) copies = {};
    copies[id] = { state, since: num(copy, 'since', kind, key) };
  }
  let failures: Record<string, FailureRecord> = NONE;
  for (const [id, f] of Object.entries(object(o.failures ?? NONE, kind, key))) {
    const failure = object(f, kind, key);
    if (failures === NONE) failures = {};
    failures[id] = { time: num(failure, 'time', kind, key), message: str(failure, 'message', kind, key) };
  }
  const size = o.size === undefined ? undefined : num(o, 'size', kind, key);
  return {
    type: str(o, 'type', kind, key),
    path: optStr(o, 'path', kind, key),
    key: optStr(o, 'key', kind, key),
    copies,
    failures,
    refs: num(o, 'refs', kind, key, 0),
    autoDelete: o.autoDelete === true,
    lastUsed: num(o, 'lastUsed', kind, key, 0),
    ...(size === undefined ? {} : { size }),
  };
}

export function decodeVModel(key: string, raw: string): VModelRecord {
  const kind = 'vmodel';
  const o = parse(raw, kind, key);
  const owner = optStr(o, 'owner', kind, key);
  const transitionSince = o.transitionSince === undefined ? undefined : num(o, 'transitionSince', kind, key);
  return {
    ...(owner === undefined ? {} : { owner }),
    active: str(o, 'active', kind, key),
    target: str(o, 'target', kind, key),
    failed: o.failed === true,
    ...(transitionSince === undefined ? {} : { transitionSince }),
  };
}

export function decodeInstance(key: string, raw: string): InstanceRecord {
  const kind = 'instance';
  const o = parse(raw, kind, key);
  const labels = o.labels ?? [];
  if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string')) throw new RecordError(kind, key, 'labels must be a list of strings');
  return {
    address: str(o, 'address', kind, key),
    capacity: num(o, 'capacity', kind, key),
    used: num(o, 'used', kind, key),
    lruTime: num(o, 'lruTime', kind, key, 0),
    copies: num(o, 'copies', kind, key, 0),
    loadsInFlight: num(o, 'loadsInFlight', kind, key, 0),
    maxLoadingConcurrency: num(o, 'maxLoadingConcurrency', kind, key, 1),
    defaultModelSize: num(o, 'defaultModelSize', kind, key, 1),
    rpm: num(o, 'rpm', kind, key, 0),
    requestsInFlight: num(o, 'requestsInFlight', kind, key, 0),
    labels: labels as string[],
    zone: optStr(o, 'zone', kind, key),
    version: optStr(o, 'version', kind, key) ?? '',
    startTime: num(o, 'startTime', kind, key, 0),
    shuttingDown: o.shuttingDown === true,
    updated: num(o, 'updated', kind, key, 0),
  };
}

/** Records are stored as compact JSON; undefined fields are dropped by JSON.stringify. */
export const encodeRecord = (record: ModelRecord | VModelRecord | InstanceRecord): string => JSON.stringify(record);
