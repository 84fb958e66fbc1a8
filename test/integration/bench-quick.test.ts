import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Smoke test of the benchmark suite: `npm run bench -- --quick` runs every scenario end to end (its own etcd,
 * runtimes and meshes), writes the JSON and the charts, and exits 0 (every measurement valid). Targets are not
 * asserted: a quick run on a shared machine gives no figures to quote.
 */

const REPO = resolve(__dirname, '..', '..');
const SCENARIOS = ['routing', 'registration', 'cold-start', 'density'];
/** The quick suite is meant to take under two minutes; the bound leaves room for a busy machine. */
const TIMEOUT_MS = 6 * 60_000;

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'mm-bench-quick-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('npm run bench -- --quick runs every scenario and reports valid figures', async () => {
  const json = join(dir, 'bench.json');
  const began = Date.now();
  const child = spawn(process.execPath, [join(REPO, 'node_modules/ts-node/dist/bin.js'), '--transpile-only', '--project', 'bench/tsconfig.json',
    'bench/run.ts', '--quick', '--json', json, '--charts', dir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8'); });
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  const seconds = (Date.now() - began) / 1_000;

  if (code !== 0) throw new Error(`bench --quick exited ${code} after ${seconds.toFixed(0)} s:\n${output}`);
  const document = JSON.parse(readFileSync(json, 'utf8')) as { quick: boolean; scenarios: Array<{ scenario: string; valid: boolean }> };
  expect(document.quick).toBe(true);
  expect(document.scenarios.map((s) => [s.scenario, s.valid])).toEqual(SCENARIOS.map((s) => [s, true]));
  for (const chart of ['density-latency.svg', 'density-memory.svg']) {
    expect(readFileSync(join(dir, chart), 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
  }
  process.stderr.write(`bench --quick took ${seconds.toFixed(0)} s\n`);
}, TIMEOUT_MS);
