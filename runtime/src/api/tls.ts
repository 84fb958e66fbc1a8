import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import type { SecureContextOptions } from 'node:tls';
import { ChannelCredentials, credentials } from '@grpc/grpc-js';
import { MeshEnv } from '../../../lib/contract';
import type { TlsConfig } from '../config';
import { ConfigError } from '../config';
import type { Logger } from '../log';
import type { SecureServerOptions } from './front-door';

/**
 * The front door's certificate, read from `MM_TLS_*` files and read again when they change (cert-manager renews
 * them in place). Serves both sides: the server options of the front door, REST and metrics ports, and the client
 * options of calls to peers (and of REST's loopback calls to the front door), which present the same certificate.
 */

export interface TlsMaterial {
  readonly key: Buffer;
  readonly cert: Buffer;
  /** What peers' certificates are checked against: MM_TLS_TRUST_CERT_PATH, else our own certificate and the public roots. */
  readonly ca: readonly (Buffer | string)[];
}

/** How often the files are checked for changes. */
const WATCH_INTERVAL_MS = 5_000;

function read(variable: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(variable, `names a file that cannot be read: ${(err as Error).message}`);
  }
}

export function readTlsMaterial(config: TlsConfig): TlsMaterial {
  const cert = read(MeshEnv.TLS_KEY_CERT_PATH, config.certPath);
  const key = read(MeshEnv.TLS_PRIVATE_KEY_PATH, config.keyPath);
  const trust = config.trustCertPaths.map((path) => read(MeshEnv.TLS_TRUST_CERT_PATH, path));
  try {
    createSecureContext({ key, cert });
  } catch (err) {
    throw new ConfigError(MeshEnv.TLS_KEY_CERT_PATH, `and ${MeshEnv.TLS_PRIVATE_KEY_PATH} do not hold a usable certificate and matching key: ${(err as Error).message}`);
  }
  return { cert, key, ca: trust.length > 0 ? trust : [cert, ...rootCertificates] };
}

/** Options for the front door's TLS server and `setSecureContext`. */
export function serverOptions(config: TlsConfig, material: TlsMaterial): SecureServerOptions {
  return {
    key: material.key,
    cert: material.cert,
    ca: [...material.ca],
    requestCert: config.clientAuth !== 'none',
    rejectUnauthorized: config.clientAuth === 'require',
  };
}

/**
 * Calls between instances go to pod addresses, which certificates do not name; the chain is verified against the
 * trusted CAs, the host name is not.
 */
const skipHostName = () => undefined;

/** TLS options for the data plane's HTTP/2 connections to peers. */
export function clientOptions(material: TlsMaterial): SecureContextOptions & { checkServerIdentity: () => undefined } {
  return { key: material.key, cert: material.cert, ca: [...material.ca], checkServerIdentity: skipHostName };
}

/** grpc-js credentials for calls to peers and to our own front door. */
export function clientCredentials(material: TlsMaterial): ChannelCredentials {
  const ca = Buffer.concat(material.ca.map((c) => Buffer.from(typeof c === 'string' ? `${c}\n` : c)));
  return credentials.createSsl(ca, material.key, material.cert, { checkServerIdentity: skipHostName });
}

/** Watches the certificate files; `onChange` gets the new material once all files read cleanly. */
export class TlsFiles {
  private material: TlsMaterial;
  private readonly listeners: ((material: TlsMaterial) => void)[] = [];
  private readonly paths: string[];

  constructor(private readonly config: TlsConfig, private readonly log: Logger) {
    this.material = readTlsMaterial(config);
    this.paths = [config.certPath, config.keyPath, ...config.trustCertPaths];
  }

  get current(): TlsMaterial {
    return this.material;
  }

  onChange(listener: (material: TlsMaterial) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    for (const path of this.paths) watchFile(path, { interval: WATCH_INTERVAL_MS, persistent: false }, () => this.reload());
  }

  stop(): void {
    for (const path of this.paths) unwatchFile(path);
  }

  private reload(): void {
    let next: TlsMaterial;
    try {
      next = readTlsMaterial(this.config);
    } catch (err) {
      // Mid-rotation a file may be missing for a moment: keep serving the old certificate and wait for the next change.
      this.log.warn('could not reload TLS files; keeping the current certificate', { err: err as Error });
      return;
    }
    this.material = next;
    this.log.info('TLS certificate reloaded', { certPath: this.config.certPath });
    for (const listener of this.listeners) listener(next);
  }
}
