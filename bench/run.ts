import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { coldStart } from './cold-start';
import { density } from './density';
import { cleanUpOnSignals } from './lib/cleanup';
import { Scenario, ScenarioResult, machineInfo } from './lib/report';
import { registration } from './registration';
import { routing } from './routing';

/**
 * The benchmark suite: `npm run bench -- [--quick] [--json <file>] [--scenario <name>]...`. Each scenario prints a
 * table (stdout) and its figures go to the JSON file. The exit code is 1 when a scenario could not run or its
 * measurement is invalid (failed calls); a missed performance target is reported, not an error.
 */

const SCENARIOS: Readonly<Record<string, Scenario>> = { routing, registration, 'cold-start': coldStart, density };

const USAGE = `usage: npm run bench -- [--quick] [--metrics on|off] [--json <file>] [--charts <dir>] [--scenario <name>]...
  --quick            short warm-up and measuring periods (a smoke run)
  --metrics on|off   whether the meshes serve Prometheus metrics, as in production (default: on)
  --json <file>      also write every scenario's figures and the machine's description to <file>
  --charts <dir>     write the scenarios' SVG charts into <dir>
  --scenario <name>  run only this scenario (repeatable, or comma-separated); default: all
scenarios: ${Object.keys(SCENARIOS).join(', ')}`;

async function main(argv: string[]): Promise<number> {
  let values: { quick?: boolean; metrics?: string; json?: string; charts?: string; scenario?: string[]; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        metrics: { type: 'string' },
        json: { type: 'string' },
        charts: { type: 'string' },
        scenario: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const names = (values.scenario ?? Object.keys(SCENARIOS)).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(name in SCENARIOS));
  if (unknown.length) {
    console.error(`unknown scenario ${unknown.join(', ')}\n${USAGE}`);
    return 2;
  }

  const metrics = values.metrics ?? 'on';
  if (metrics !== 'on' && metrics !== 'off') {
    console.error(`--metrics must be on or off, got "${metrics}"\n${USAGE}`);
    return 2;
  }

  cleanUpOnSignals();
  const quick = values.quick ?? false;
  const meshMetrics = metrics === 'on';
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  const results: ScenarioResult[] = [];
  for (const name of names) {
    const began = Date.now();
    let result: ScenarioResult;
    try {
      result = await SCENARIOS[name]({ quick, meshMetrics, progress, ...(values.charts ? { chartDir: values.charts } : {}) });
    } catch (err) {
      // A scenario that cannot run is reported like an invalid one, and the next scenario still runs.
      const message = err instanceof Error ? err.message : String(err);
      result = { scenario: name, valid: false, problems: [message], table: `could not run: ${message}`, data: {} };
    }
    results.push(result);
    console.log(`\n== ${name} (${((Date.now() - began) / 1_000).toFixed(1)} s) ==\n${result.table}`);
  }

  if (values.json) {
    const document = {
      startedAt,
      quick,
      meshMetrics,
      machine,
      scenarios: results.map((r) => ({ scenario: r.scenario, valid: r.valid, problems: r.problems, ...r.data })),
    };
    writeFileSync(values.json, `${JSON.stringify(document, null, 2)}\n`);
    progress(`wrote ${values.json}`);
  }
  return results.every((r) => r.valid) ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Everything started is stopped by now; a lingering handle must not keep a finished benchmark alive.
  setTimeout(() => process.exit(code), 5_000).unref();
}, (err: unknown) => {
  console.error(err);
  process.exit(1);
});
