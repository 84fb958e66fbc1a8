import { ChildProcess, spawn } from 'node:child_process';

export interface SpawnOptions {
  /** Name used in error messages and output prefixes. */
  readonly name: string;
  /** Added to the parent's environment. */
  readonly env?: Record<string, string>;
  readonly cwd?: string;
}

/** A child process started by a test, with its output kept for diagnostics. */
export class ManagedProcess {
  private readonly output: string[] = [];
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(public readonly name: string, private readonly child: ChildProcess) {
    const keep = (chunk: Buffer) => {
      this.output.push(chunk.toString('utf8'));
      if (this.output.length > 2_000) this.output.splice(0, this.output.length - 2_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? null : code);
        resolve(code);
      });
      child.once('error', (err) => {
        this.output.push(`spawn error: ${err.message}\n`);
        this.exitCode = -1;
        resolve(-1);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Everything the process printed so far (the most recent part of it). */
  get log(): string {
    return this.output.join('');
  }

  /** Resolves with the exit code (null when ended by a signal). */
  waitForExit(): Promise<number | null> {
    return this.exited;
  }

  /** Sends `signal`, then SIGKILL if the process has not exited within `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => { if (this.running) this.child.kill('SIGKILL'); }, graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** `kill -9`. */
  kill(): Promise<number | null> {
    return this.stop('SIGKILL', 0);
  }
}

/**
 * Starts and tracks child processes for one test file, so `stopAll()` in `afterAll` stops exactly the processes
 * that this file started, never anything else on the machine.
 */
export class ProcessGroup {
  private readonly processes: ManagedProcess[] = [];

  spawn(command: string, args: readonly string[], options: SpawnOptions): ManagedProcess {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const managed = new ManagedProcess(options.name, child);
    this.processes.push(managed);
    return managed;
  }

  /** Stops every process this group started, SIGTERM first. */
  async stopAll(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
    this.processes.length = 0;
  }
}
