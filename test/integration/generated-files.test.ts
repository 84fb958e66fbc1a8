import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Generated files are committed; these tests regenerate them elsewhere and fail when the committed copy is stale. */

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'node_modules', '.bin');

function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path, base) : [path.slice(base.length + 1)];
  }).sort();
}

describe('generated files are current', () => {
  let scratch: string;
  beforeEach(() => { scratch = mkdtempSync(join(tmpdir(), 'mm-gen-')); });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  test('proto/gen matches `npm run gen` output', () => {
    execFileSync(join(BIN, 'buf'), ['generate', 'proto', '-o', scratch], { cwd: ROOT, stdio: 'pipe' });
    const fresh = join(scratch, 'proto', 'gen');
    const committed = join(ROOT, 'proto', 'gen');
    expect(listFiles(committed)).toEqual(listFiles(fresh));
    for (const file of listFiles(fresh)) {
      const same = readFileSync(join(fresh, file), 'utf8') === readFileSync(join(committed, file), 'utf8');
      if (!same) throw new Error(`proto/gen/${file} is stale: run \`npm run gen\` and commit the result`);
    }
  });

  test('projen output matches .projenrc.ts', () => {
    const managed = (JSON.parse(readFileSync(join(ROOT, '.projen', 'files.json'), 'utf8')) as { files: string[] }).files;
    for (const file of [...managed, '.projenrc.ts', 'package-lock.json']) {
      if (!existsSync(join(ROOT, file))) continue;
      cpSync(join(ROOT, file), join(scratch, file), { recursive: true });
    }
    symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'node_modules'));
    execFileSync(join(BIN, 'ts-node'), ['--project', 'projenrc/tsconfig.json', '.projenrc.ts'], {
      cwd: scratch,
      stdio: 'pipe',
      // Synthesize only: no dependency installation.
      env: { ...process.env, PROJEN_DISABLE_POST: 'true' },
    });
    const stale = [...managed, 'package.json'].filter((file) => {
      const fresh = join(scratch, file);
      return !existsSync(fresh) || readFileSync(fresh, 'utf8') !== readFileSync(join(ROOT, file), 'utf8');
    });
    expect(stale.map((file) => `${file} is stale: run \`npx projen\` and commit the result`)).toEqual([]);
  });
});
