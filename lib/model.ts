import { Construct } from 'constructs';
import { CatalogModel } from './contract';
import { invalid, problem } from './errors';
import * as kserve from './imports/serving.kserve.io';
import { modelTypeOf, RuntimeLabelSource, runtimeServes } from './model-types';

/** How a model is declared to the cluster. */
export enum ModelDeclaration {
  /** An entry of the mesh's declared-model catalog ConfigMap, which the mesh leader reconciles into a vmodel. */
  CATALOG = 'catalog',
  /** A KServe `InferenceService` in ModelMesh mode, for clusters whose KServe tooling watches them. */
  INFERENCE_SERVICE = 'inferenceService',
}

/** The model's format. */
export interface ModelFormatRef {
  /** Format name, e.g. `onnx`. */
  readonly name: string;
  /** Format version. @default - any version the runtime serves */
  readonly version?: string;
}

/** Options of a declared model (`ModelMesh.addModel`). */
export interface ModelOptions {
  /** The vmodel id clients use (also the InferenceService name). @default - the construct id */
  readonly name?: string;
  /** The model's format; some runtime of the mesh must serve it. */
  readonly format: ModelFormatRef;
  /** Serve only on this runtime (by name). @default - any runtime that auto-selects the format */
  readonly runtime?: string;
  /** `s3://bucket/path`, `gs://bucket/path`, `pvc://claim/path`, `https://…` (Azure Blob or plain HTTP). Mutually exclusive with `path`. */
  readonly storageUri?: string;
  /** Path inside the storage entry. Mutually exclusive with `storageUri`. */
  readonly path?: string;
  /** `storage-config` entry to read from. @default - the entry named `default` */
  readonly storageKey?: string;
  /** Overrides of the storage entry's string fields. @default - none */
  readonly storageParams?: Readonly<Record<string, string>>;
  /** Path of the model's schema file inside the storage. @default - none */
  readonly schemaPath?: string;
  /** Owner of the vmodel. @default - the mesh's default owner */
  readonly owner?: string;
  /** Catalog entry or InferenceService. @default ModelDeclaration.CATALOG */
  readonly declaration?: ModelDeclaration;
}

/** What a model needs from its mesh to validate itself. */
export interface ModelHost {
  /** Runtimes of the mesh. */
  readonly runtimeSources: readonly RuntimeLabelSource[];
  /** Whether a storage entry exists. */
  hasStorageKey(key: string): boolean;
}

/** Props of {@link Model}. */
export interface ModelProps extends ModelOptions {
  /** The mesh that serves the model. */
  readonly mesh: ModelHost;
}

const VMODEL_ID = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,252}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Parses a storage URI exactly as modelmesh-serving does for InferenceServices. */
export function parseStorageUri(uri: string): { path: string; params: Record<string, string> } | string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not a URI';
  }
  const rest = decodeURIComponent(url.pathname).replace(/^\/+/, '');
  switch (url.protocol) {
    case 'pvc:': return { path: rest, params: { type: 'pvc', name: url.host } };
    case 's3:': return { path: rest, params: { type: 's3', bucket: url.host } };
    case 'gs:': return { path: rest, params: { type: 'gcs', bucket: url.host } };
    case 'http:':
    case 'https:': {
      if (url.hostname.endsWith('.blob.core.windows.net')) {
        const [container, ...path] = rest.split('/');
        return { path: path.join('/'), params: { type: 'azure', account_name: url.hostname.split('.')[0], container } };
      }
      return { path: rest, params: { type: 'http', url: `${url.protocol}//${url.host}${url.search}` } };
    }
    default: return `has the unsupported scheme "${url.protocol.replace(/:$/, '')}" (use s3, gs, pvc, http or https)`;
  }
}

/**
 * A declared model: an entry in the mesh's catalog (the leader keeps a vmodel pointing at it), or a KServe
 * InferenceService in ModelMesh mode.
 */
export class Model extends Construct {
  /** The vmodel id. */
  public readonly name: string;
  /** The model type string the mesh places by (`mt:<format>[:<version>]` or `rt:<runtime>`). */
  public readonly modelType: string;
  /** How the model is declared. */
  public readonly declaration: ModelDeclaration;
  /** The InferenceService, when declared as one. */
  public readonly inferenceService?: kserve.InferenceService;
  private readonly options: ModelOptions;
  private readonly path: string;
  private readonly storageParams?: Record<string, string>;

  public constructor(scope: Construct, id: string, props: ModelProps) {
    super(scope, id);
    this.options = props;
    this.name = props.name ?? id;
    this.declaration = props.declaration ?? ModelDeclaration.CATALOG;
    if (!VMODEL_ID.test(this.name)) invalid(this, 'name', `must be letters, digits, '.', '_' or '-'; got "${this.name}"`);
    if (this.declaration === ModelDeclaration.INFERENCE_SERVICE && !DNS_SUBDOMAIN.test(this.name)) {
      invalid(this, 'name', `must be a lowercase DNS name to become an InferenceService; got "${this.name}"`);
    }
    if (!props.format.name) invalid(this, 'format.name', 'must name the model format, e.g. "onnx"');
    if ((props.storageUri === undefined) === (props.path === undefined)) {
      invalid(this, 'storageUri', 'or path must be given, and not both: storageUri names the whole location, path one inside a storage entry');
    }
    if (props.storageUri !== undefined) {
      const parsed = parseStorageUri(props.storageUri);
      if (typeof parsed === 'string') invalid(this, 'storageUri', `${parsed}; got "${props.storageUri}"`);
      this.path = parsed.path;
      this.storageParams = { ...(props.storageParams ?? {}), ...parsed.params };
    } else {
      this.path = props.path!;
      this.storageParams = props.storageParams ? { ...props.storageParams } : undefined;
    }
    this.modelType = modelTypeOf(props.format, props.runtime);

    const mesh = props.mesh;
    this.node.addValidation({
      validate: () => {
        const errors: string[] = [];
        const runtimes = mesh.runtimeSources;
        if (props.runtime !== undefined && !runtimes.some((runtime) => runtime.name === props.runtime)) {
          errors.push(problem(this, 'runtime', `"${props.runtime}" is not a runtime of the mesh (runtimes: ${runtimes.map((r) => r.name).join(', ') || 'none'})`));
        } else if (!runtimes.some((runtime) => runtimeServes(runtime, props.format, props.runtime))) {
          const format = props.format.version ? `${props.format.name}:${props.format.version}` : props.format.name;
          errors.push(problem(this, 'format', `"${format}" is served by no runtime of the mesh${props.runtime ? ` named "${props.runtime}"` : ' that auto-selects it'}`));
        }
        if (props.storageKey !== undefined && !mesh.hasStorageKey(props.storageKey)) {
          errors.push(problem(this, 'storageKey', `"${props.storageKey}" is not an entry of the mesh's storage config`));
        }
        return errors;
      },
    });

    if (this.declaration === ModelDeclaration.INFERENCE_SERVICE) {
      this.inferenceService = new kserve.InferenceService(this, 'Resource', {
        metadata: { name: this.name, annotations: { 'serving.kserve.io/deploymentMode': 'ModelMesh' } },
        spec: {
          predictor: {
            model: {
              modelFormat: { name: props.format.name, version: props.format.version },
              runtime: props.runtime,
              storageUri: props.storageUri,
              storage: props.storageUri === undefined ? {
                key: props.storageKey,
                path: props.path,
                parameters: props.storageParams ? { ...props.storageParams } : undefined,
                schemaPath: props.schemaPath,
              } : undefined,
            },
          },
        },
      });
    }
  }

  /** The model's catalog entry (for `ModelDeclaration.CATALOG`). */
  public toCatalogEntry(): CatalogModel {
    const o = this.options;
    return {
      name: this.name,
      modelType: this.modelType,
      modelFormat: o.format.version === undefined ? { name: o.format.name } : { name: o.format.name, version: o.format.version },
      path: this.path,
      ...(o.storageKey !== undefined ? { storageKey: o.storageKey } : {}),
      ...(this.storageParams ? { storageParams: sorted(this.storageParams) } : {}),
      ...(o.storageUri !== undefined ? { storageUri: o.storageUri } : {}),
      ...(o.schemaPath !== undefined ? { schemaPath: o.schemaPath } : {}),
      ...(o.owner !== undefined ? { owner: o.owner } : {}),
    };
  }
}

function sorted(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(record).sort().map((key) => [key, record[key]]));
}
