/**
 * Entries of the `storage-config` Secret: one JSON document per storage key, in the format upstream's puller and
 * runtime adapters read. Credentials never appear in props: an entry that needs them is read from a Secret you manage
 * (`Storage.fromSecret`), which the pods see under the same directory as the generated entries.
 */

/** A reference to one key of an existing Secret. */
export interface SecretKeyRef {
  /** Name of the Secret, in the mesh's namespace. */
  readonly name: string;
  /** Key inside the Secret. */
  readonly key: string;
}

/**
 * An S3-compatible bucket reached without static keys: the mesh uses the node's or workload's identity when the SDK
 * finds one, and otherwise reads the bucket anonymously (unsigned requests), so the bucket must allow public reads.
 */
export interface S3StorageProps {
  /** Bucket models are read from. */
  readonly bucket: string;
  /** Endpoint URL, e.g. `https://s3.us-east-1.amazonaws.com` or a MinIO service. @default "" (the SDK default) */
  readonly endpointUrl?: string;
  /** Region. @default "" */
  readonly region?: string;
}

/** A Google Cloud Storage bucket, read anonymously or with the node's or workload's identity. */
export interface GcsStorageProps {
  /** Bucket models are read from. */
  readonly bucket: string;
}

/** An Azure Blob Storage container read anonymously. */
export interface AzureStorageProps {
  /** Storage account name (`<account>.blob.core.windows.net`). */
  readonly accountName: string;
  /** Blob container. */
  readonly container: string;
}

/** An HTTP(S) server; a model's path is appended to the URL. */
export interface HttpStorageProps {
  /** Base URL, e.g. `https://models.example.com/repo`. */
  readonly url: string;
  /** Extra request headers (no secrets: use `Storage.fromSecret` for authenticated servers). @default - none */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A PersistentVolumeClaim that holds models; it is mounted read-only into every runtime pod. */
export interface PvcStorageProps {
  /** Name of the claim, in the mesh's namespace. */
  readonly claimName: string;
}

/** Where a storage entry's JSON comes from, and what it is. */
export type StorageType = 's3' | 'gcs' | 'azure' | 'http' | 'pvc';

/** One typed entry of the `storage-config` Secret. */
export class Storage {
  /** S3 or an S3-compatible store. */
  public static s3(props: S3StorageProps): Storage {
    return new Storage('s3', {
      type: 's3',
      access_key_id: '',
      secret_access_key: '',
      endpoint_url: props.endpointUrl ?? '',
      region: props.region ?? '',
      bucket: props.bucket,
    });
  }

  /** Google Cloud Storage. */
  public static gcs(props: GcsStorageProps): Storage {
    return new Storage('gcs', { type: 'gcs', bucket: props.bucket });
  }

  /** Azure Blob Storage. */
  public static azure(props: AzureStorageProps): Storage {
    return new Storage('azure', { type: 'azure', account_name: props.accountName, container: props.container });
  }

  /** An HTTP(S) server. */
  public static http(props: HttpStorageProps): Storage {
    return new Storage('http', { type: 'http', url: props.url, ...(props.headers ? { headers: { ...props.headers } } : {}) });
  }

  /** A PersistentVolumeClaim, mounted at `/pvc_mounts/<claim>` in every runtime pod. */
  public static pvc(props: PvcStorageProps): Storage {
    return new Storage('pvc', { type: 'pvc', name: props.claimName }, props.claimName);
  }

  /**
   * An entry whose complete JSON document (with its credentials) is one key of a Secret you manage, for example with
   * External Secrets or Sealed Secrets. The pods read it as if it were part of `storage-config`.
   */
  public static fromSecret(type: StorageType, secret: SecretKeyRef): Storage {
    return new Storage(type, undefined, undefined, secret);
  }

  private constructor(
    /** The storage type. */
    public readonly type: StorageType,
    private readonly document?: Readonly<Record<string, unknown>>,
    /** For PVC entries: the claim to mount. */
    public readonly claimName?: string,
    /** For entries kept in your own Secret: where. */
    public readonly secret?: SecretKeyRef,
  ) {}

  /** The entry's JSON document, or undefined when it lives in your own Secret. */
  public toJson(): Record<string, unknown> | undefined {
    return this.document ? JSON.parse(JSON.stringify(this.document)) : undefined;
  }
}
