import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The runtime package's version, read once from its package.json (two levels up from src/ and dist/runtime/src/). */
function readVersion(): string {
  for (const candidate of [join(__dirname, '..', 'package.json'), join(__dirname, '..', '..', '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cdk8s-modelmesh-runtime' && pkg.version) return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0-unknown';
}

export const VERSION = readVersion();
