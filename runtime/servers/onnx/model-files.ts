import type { Stats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { invalidArgument, notFound } from '../../src/errors';

/** The file a folder's model is read from, as in Triton's and upstream's ONNX layouts. */
export const MODEL_FILE_NAME = 'model.onnx';
const ONNX_FORMAT = 'onnx';

/** What the model key (the JSON modelmesh-serving and our mesh pass to loadModel) says that matters here. */
export interface ModelKeyInfo {
  /** `model_type.name` (or `model_type` as a string): upstream's adapters take the format from here first. */
  readonly format?: string;
  /** `disk_size_bytes`, added by the puller. */
  readonly diskSizeBytes?: number;
}

/** Reads the model key; anything that is not a JSON object (upstream allows that) says nothing. */
export function parseModelKey(modelKey: string): ModelKeyInfo {
  let key: unknown;
  try {
    key = JSON.parse(modelKey);
  } catch {
    return {};
  }
  if (key === null || typeof key !== 'object' || Array.isArray(key)) return {};
  const { model_type: modelType, disk_size_bytes: diskSize } = key as Record<string, unknown>;
  let format: string | undefined;
  if (typeof modelType === 'string') {format = modelType;} else if (modelType !== null && typeof modelType === 'object' && typeof (modelType as { name?: unknown }).name === 'string') {
    format = (modelType as { name: string }).name;
  }
  const diskSizeBytes = typeof diskSize === 'number' && Number.isFinite(diskSize) && diskSize >= 0 ? diskSize : undefined;
  return { ...(format ? { format } : {}), ...(diskSizeBytes !== undefined ? { diskSizeBytes } : {}) };
}

/**
 * Why this runtime will not try a model of this type, or undefined when it will. Accepted: `onnx`; the type labels
 * modelmesh-serving sends, `mt:onnx` and `mt:onnx:<version>`; and `rt:<runtime>`, which the mesh only places on
 * runtimes carrying that label, i.e. this one — each optionally followed by `|pv:<protocol>`. A format named in
 * the model key (`model_type`) decides first, as in upstream's adapters.
 */
export function modelTypeProblem(modelType: string, key: ModelKeyInfo): string | undefined {
  if (key.format !== undefined) {
    return key.format.toLowerCase() === ONNX_FORMAT ? undefined
      : `the model key names format "${key.format}"; the ONNX runtime serves format "${ONNX_FORMAT}"`;
  }
  const label = modelType.split('|')[0].trim().toLowerCase();
  if (label === ONNX_FORMAT || label === `mt:${ONNX_FORMAT}` || label.startsWith(`mt:${ONNX_FORMAT}:`)) return undefined;
  if (label.startsWith('rt:') && label.length > 3) return undefined;
  return `model type "${modelType}" is not served by the ONNX runtime; it serves "${ONNX_FORMAT}", "mt:${ONNX_FORMAT}[:<version>]" `
    + 'and "rt:<runtime>" types';
}

/** A model's file and what it occupies on disk. */
export interface ModelFile {
  /** The .onnx file onnxruntime opens (external data files sit beside it). */
  readonly file: string;
  /** Bytes on disk: the file, or everything in the model's folder when the path named a folder. */
  readonly diskBytes: number;
}

/** `modelPath` made absolute: relative paths are taken from `modelRoot` (ROOT_MODEL_DIR) when set. */
export function absoluteModelPath(modelPath: string, modelRoot?: string): string {
  return isAbsolute(modelPath) ? modelPath : resolve(modelRoot ?? '.', modelPath);
}

/**
 * Finds the model's file: the path itself, or `model.onnx` in a folder (else the folder's only `.onnx` file).
 * A missing path is NOT_FOUND; an unusable one INVALID_ARGUMENT.
 */
export async function locateModelFile(path: string): Promise<ModelFile> {
  const info = await statOrThrow(path);
  if (info.isFile()) return { file: path, diskBytes: info.size };
  if (!info.isDirectory()) throw invalidArgument(`model path ${path} is neither a file nor a folder`);

  const entries = await readdir(path, { withFileTypes: true });
  const candidates = entries.filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.onnx')).map((e) => e.name);
  let name: string | undefined;
  if (candidates.includes(MODEL_FILE_NAME)) name = MODEL_FILE_NAME;
  else if (candidates.length === 1) name = candidates[0];
  if (name === undefined) {
    const found = candidates.length === 0 ? 'none' : candidates.map((c) => `"${c}"`).join(', ');
    throw notFound(`model folder ${path} holds no ${MODEL_FILE_NAME} and not exactly one other .onnx file (found: ${found})`);
  }
  return { file: join(path, name), diskBytes: await folderBytes(path) };
}

/** Bytes on disk at `path` (a file, or a folder's files, two levels deep), or undefined when it cannot be read. */
export async function diskBytesAt(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    if (info.isFile()) return info.size;
    return info.isDirectory() ? await folderBytes(path) : undefined;
  } catch {
    return undefined;
  }
}

/** Model size reported to the mesh: bytes on disk × the multiplier, at least 1. */
export function modelSizeOf(diskBytes: number, multiplier: number): number {
  return Math.max(1, Math.ceil(diskBytes * multiplier));
}

/** Total size of a folder's regular files; `depth` bounds the walk so a mistaken path (`/`) stays cheap. */
async function folderBytes(path: string, depth = 2): Promise<number> {
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isFile()) total += (await stat(child)).size;
    else if (entry.isDirectory() && depth > 1) total += await folderBytes(child, depth - 1);
  }
  return total;
}

async function statOrThrow(path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notFound(`model path ${path} does not exist`);
    const reason = err instanceof Error ? err.message : String(err);
    throw invalidArgument(`model path ${path} cannot be read (${code ?? 'error'}): ${reason}`);
  }
}
