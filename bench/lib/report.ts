import * as os from 'node:os';

/** What every scenario gets from the command line. */
export interface ScenarioOptions {
  /** Shorter warm-up and measuring periods (a smoke run, not figures to quote). */
  readonly quick: boolean;
  /** The meshes serve Prometheus metrics (and record every call), as in production. */
  readonly meshMetrics: boolean;
  /** Scenarios that draw charts write them (SVG) into this folder when it is given. */
  readonly chartDir?: string;
  /** Progress lines go here (stderr), so stdout holds only the tables. */
  readonly progress: (line: string) => void;
}

/** A scenario's outcome: a table for people and the same figures as data for the JSON file. */
export interface ScenarioResult {
  readonly scenario: string;
  /** False when the measurement itself cannot be trusted (failed calls, changed topology); a missed target is still valid. */
  readonly valid: boolean;
  /** Why the result is invalid, when it is. */
  readonly problems: readonly string[];
  readonly table: string;
  readonly data: Record<string, unknown>;
}

export type Scenario = (options: ScenarioOptions) => Promise<ScenarioResult>;

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly totalMemoryMiB: number;
  readonly node: string;
  readonly platform: string;
  readonly arch: string;
  /** 1, 5 and 15 minute load averages when the run started: other work on the machine skews every figure. */
  readonly loadAverage: readonly number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemoryMiB: Math.round(os.totalmem() / 1024 / 1024),
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
    loadAverage: os.loadavg().map((n) => Math.round(n * 100) / 100),
  };
}

export interface Column {
  readonly title: string;
  /** Numbers read best right-aligned. @default 'right' */
  readonly align?: 'left' | 'right';
}

/** A plain-text table with a header rule; cells are already formatted strings. */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells
    .map((cell, i) => (columns[i].align === 'left' ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
    .join('  ')
    .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(columns.map((c) => c.title)), rule, ...rows.map(line)].join('\n');
}

/** Rounds to an integer string, or '-' for a missing value. */
export function integer(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value)) : '-';
}

/** Signed integer string (a difference). */
export function signedInteger(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const rounded = Math.round(value);
  return rounded > 0 ? `+${rounded}` : String(rounded);
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : '-';
}

/** A target of the issue a scenario measures, and whether this run met it. */
export interface Check {
  readonly name: string;
  readonly measured: number;
  readonly limit: number;
  readonly comparison: 'at most' | 'at least';
  readonly unit: string;
  readonly pass: boolean;
}

export function check(name: string, measured: number, comparison: Check['comparison'], limit: number, unit: string): Check {
  const pass = comparison === 'at most' ? measured <= limit : measured >= limit;
  return { name, measured, limit, comparison, unit, pass };
}

/** `PASS  name: 1.23 unit (target: at least 1 unit)`; `format` writes the measured figure (default: 3 significant digits). */
export function checkLine(c: Check, format: (value: number) => string = figure): string {
  return `${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${format(c.measured)} ${c.unit} (target: ${c.comparison} ${c.limit} ${c.unit})`;
}

/** A figure for people: integers from 100 up, else three significant digits. */
export function figure(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return Math.abs(value) >= 100 ? String(Math.round(value)) : String(Number(value.toPrecision(3)));
}

/** The load-average line every table ends with: other work on the machine skews every figure. */
export function machineLine(machine: MachineInfo, loadAverageEnd: readonly number[], what: string): string {
  return `${what} share this machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.totalMemoryMiB} MiB, node ${machine.node};`
    + ` load average ${machine.loadAverage.join(' ')} at start, ${loadAverageEnd.join(' ')} at end.`;
}
