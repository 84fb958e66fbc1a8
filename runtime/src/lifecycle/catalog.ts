import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CATALOG_FORMAT_VERSION, CatalogModel } from '../../../lib/contract';
import { KvStore } from '../kv/store';
import { Logger } from '../log';
import { Management } from '../mesh/management';

/**
 * Declared models: the catalog file (`MM_CATALOG_PATH`, the `modelmesh-catalog` ConfigMap) reconciled by the leader
 * into vmodels. Each entry becomes a vmodel `name` whose target is a concrete model named after the entry's content,
 * so a changed entry moves the vmodel to a new model (with the usual transition) and the old one is deleted once
 * unreferenced. Vmodels the catalog created and no longer lists are deleted. Invalid entries are reported and
 * skipped, never half-applied.
 */

/** Where the leader remembers which vmodels it created from the catalog. */
export const CATALOG_APPLIED_KEY = 'catalog/applied';
const DEFAULT_CATALOG_OWNER = 'catalog';

export interface ParsedCatalog {
  readonly models: readonly CatalogModel[];
  /** One line per skipped entry or document problem. */
  readonly problems: readonly string[];
}

function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** Validates the catalog field by field; good entries are kept, each bad one is reported with why. */
export function parseCatalog(text: string): ParsedCatalog {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { models: [], problems: [`catalog is not valid JSON: ${(err as Error).message}`] };
  }
  const d = doc as { version?: unknown; models?: unknown };
  if (typeof doc !== 'object' || doc === null || !Array.isArray(d.models)) return { models: [], problems: ['catalog must be an object with a "models" list'] };
  if (d.version !== CATALOG_FORMAT_VERSION) return { models: [], problems: [`catalog version ${String(d.version)} is not supported (expected ${CATALOG_FORMAT_VERSION})`] };
  const models: CatalogModel[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  d.models.forEach((raw: unknown, index: number) => {
    const m = (raw ?? {}) as Record<string, unknown>;
    const where = `catalog entry ${index}${typeof m.name === 'string' ? ` (${m.name})` : ''}`;
    const problem = (() => {
      if (typeof m.name !== 'string' || !/^[\w.-]{1,253}$/.test(m.name)) return 'name must be 1-253 letters, digits, ".", "_" or "-"';
      if (seen.has(m.name)) return 'name is declared twice; the first entry wins';
      if (typeof m.modelType !== 'string' || !m.modelType) return 'modelType must be a non-empty string';
      if (typeof m.path !== 'string') return 'path must be a string';
      const format = m.modelFormat as Record<string, unknown> | undefined;
      if (typeof format !== 'object' || format === null || typeof format.name !== 'string') return 'modelFormat.name must be a string';
      if (format.version !== undefined && typeof format.version !== 'string') return 'modelFormat.version must be a string';
      for (const field of ['storageKey', 'storageUri', 'schemaPath', 'owner'] as const) {
        if (m[field] !== undefined && typeof m[field] !== 'string') return `${field} must be a string`;
      }
      if (m.storageParams !== undefined && !isStringMap(m.storageParams)) return 'storageParams must map names to strings';
      return undefined;
    })();
    if (problem) {
      problems.push(`${where}: ${problem}; skipped`);
      return;
    }
    seen.add(m.name as string);
    models.push(m as unknown as CatalogModel);
  });
  return { models, problems };
}

/** The concrete model id of an entry: its name plus a digest of what it loads, so any change gives a new model. */
export function catalogModelId(model: CatalogModel): string {
  const content = JSON.stringify([model.modelType, model.modelFormat.name, model.modelFormat.version ?? '', model.path,
    model.storageKey ?? '', Object.entries(model.storageParams ?? {}).sort(), model.schemaPath ?? '']);
  return `${model.name}__catalog-${createHash('sha256').update(content).digest('hex').slice(0, 10)}`;
}

/** The model key the runtime (or puller) receives, in upstream's form. */
export function catalogModelKey(model: CatalogModel): string {
  return JSON.stringify({
    ...(model.storageKey ? { storage_key: model.storageKey } : {}),
    ...(model.storageParams ? { storage_params: model.storageParams } : {}),
    model_type: { name: model.modelFormat.name, ...(model.modelFormat.version ? { version: model.modelFormat.version } : {}) },
    ...(model.schemaPath ? { schema_path: model.schemaPath } : {}),
  });
}

export interface CatalogReconcilerOptions {
  readonly path: string;
  readonly store: KvStore;
  readonly management: Management;
  readonly log: Logger;
  readonly defaultOwner?: string;
  /** How often the file is re-read (ConfigMap updates arrive as file swaps). @default 5000 */
  readonly pollMs?: number;
}

export class CatalogReconciler {
  private timer: NodeJS.Timeout | undefined;
  private lastApplied: string | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly o: CatalogReconcilerOptions) {}

  /** Starts reconciling (on becoming leader). */
  start(): void {
    this.lastApplied = undefined;
    this.timer = setInterval(() => void this.reconcile(), this.o.pollMs ?? 5_000);
    this.timer.unref();
    void this.reconcile();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Applies the file if it changed since the last successful pass. */
  reconcile(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.o.path, 'utf8');
    } catch (err) {
      this.o.log.warn('cannot read the model catalog', { path: this.o.path, err: err as Error });
      return;
    }
    if (text === this.lastApplied) return;
    const { models, problems } = parseCatalog(text);
    for (const problem of problems) this.o.log.warn(problem);
    try {
      await this.apply(models);
      this.lastApplied = text;
    } catch (err) {
      this.o.log.warn('applying the model catalog failed; will retry', { err: err as Error });
    }
  }

  private async apply(models: readonly CatalogModel[]): Promise<void> {
    const appliedEntry = await this.o.store.get(CATALOG_APPLIED_KEY);
    const previously = new Map<string, string>(appliedEntry ? Object.entries(JSON.parse(appliedEntry.value) as Record<string, string>) : []);
    const now = new Map<string, string>();
    for (const model of models) {
      const owner = model.owner ?? this.o.defaultOwner ?? DEFAULT_CATALOG_OWNER;
      const targetModelId = catalogModelId(model);
      try {
        await this.o.management.setVModel({
          vModelId: model.name,
          owner,
          targetModelId,
          updateOnly: false,
          modelInfo: { type: model.modelType, path: model.path, key: catalogModelKey(model) },
          autoDeleteTargetModel: true,
          loadNow: false,
          force: false,
          sync: false,
          expectedTargetModelId: '',
        });
        now.set(model.name, owner);
      } catch (err) {
        // One entry that cannot be applied (for example a vmodel of that name owned by someone else) is reported alone.
        this.o.log.warn('catalog entry not applied', { vmodelId: model.name, err: err as Error });
        if (previously.has(model.name)) now.set(model.name, previously.get(model.name)!);
      }
    }
    for (const [name, owner] of previously) {
      if (now.has(name)) continue;
      await this.o.management.deleteVModel({ vModelId: name, owner });
      this.o.log.info('removed vmodel that left the catalog', { vmodelId: name });
    }
    await this.o.store.put(CATALOG_APPLIED_KEY, JSON.stringify(Object.fromEntries(now)));
    this.o.log.info('model catalog applied', { models: now.size });
  }
}
