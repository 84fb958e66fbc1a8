import { ApiObject, Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Mounts, ObjectNames } from './contract';
import { checkName, invalid } from './errors';
import { Storage } from './storage';

/** Props of {@link StorageConfig}. */
export interface StorageConfigProps {
  /** Entries by storage key. More can be added with `addEntry`. @default - none */
  readonly entries?: Readonly<Record<string, Storage>>;
  /** Name of the generated Secret. @default "storage-config" */
  readonly secretName?: string;
}

const STORAGE_KEY = /^[-._a-zA-Z0-9]+$/;

/**
 * The `storage-config` Secret: one JSON entry per storage key (types s3, gcs, azure, http, pvc). Entries kept in your
 * own Secrets are projected next to the generated ones, so the pods see a single directory.
 */
export class StorageConfig extends Construct {
  /** Where the pods mount the entries. */
  public static readonly MOUNT_PATH = Mounts.STORAGE_CONFIG_DIR;

  /** Name of the generated Secret. */
  public readonly secretName: string;
  /** The generated Secret. */
  public readonly secret: ApiObject;
  private readonly entries = new Map<string, Storage>();

  public constructor(scope: Construct, id: string, props: StorageConfigProps = {}) {
    super(scope, id);
    this.secretName = props.secretName ?? ObjectNames.STORAGE_SECRET;
    checkName(this, 'secretName', this.secretName, 253);
    for (const [key, storage] of Object.entries(props.entries ?? {})) this.addEntry(key, storage);
    this.secret = new k8s.KubeSecret(this, 'Resource', {
      metadata: { name: this.secretName },
      type: 'Opaque',
      stringData: Lazy.any({ produce: () => this.renderData() }),
    });
  }

  /** Adds an entry under `key`; `default` is the entry used by models that name no key. */
  public addEntry(key: string, storage: Storage): void {
    if (!STORAGE_KEY.test(key)) invalid(this, `entries["${key}"]`, "is not a valid storage key: use letters, digits, '-', '_' or '.'");
    if (this.entries.has(key)) invalid(this, `entries["${key}"]`, 'is defined twice; each storage key names one entry');
    this.entries.set(key, storage);
  }

  /** Whether an entry exists under `key`. */
  public hasEntry(key: string): boolean {
    return this.entries.has(key);
  }

  /** The entries, sorted by key. */
  public get storageEntries(): Array<[string, Storage]> {
    return [...this.entries.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Claims of the PVC entries, sorted and de-duplicated: every runtime pod mounts them read-only. */
  public get claimNames(): string[] {
    return [...new Set(this.storageEntries.map(([, storage]) => storage.claimName).filter((c): c is string => !!c))].sort();
  }

  /** The volume runtime pods mount at `/storage-config`: the generated Secret plus entries from your own Secrets. */
  public volume(name: string): k8s.Volume {
    const external = this.storageEntries.filter(([, storage]) => storage.secret !== undefined);
    return {
      name,
      projected: {
        defaultMode: 0o440,
        sources: [
          { secret: { name: this.secretName } },
          ...external.map(([key, storage]) => ({
            secret: { name: storage.secret!.name, items: [{ key: storage.secret!.key, path: key }] },
          })),
        ],
      },
    };
  }

  private renderData(): Record<string, string> | undefined {
    const data: Record<string, string> = {};
    for (const [key, storage] of this.storageEntries) {
      const document = storage.toJson();
      if (document) data[key] = JSON.stringify(document);
    }
    return Object.keys(data).length > 0 ? data : undefined;
  }
}
