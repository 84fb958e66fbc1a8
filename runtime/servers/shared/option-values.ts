/** Digits only: rejects "", "-1", "1.5", "1e3", "0x10" and "80a", which Number() would partly accept. */
export function wholeNumber(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Largest value of the SPI's uint32 fields (maxLoadingConcurrency, modelLoadingTimeoutMs). */
export const UINT32_MAX = 0xffff_ffff;

/**
 * Splits `--flag value` / `--flag=value` arguments into a map, or reports `--help`. `fail(option, message)` makes the
 * caller's error for an unexpected argument, an unknown flag or a missing value.
 */
export function readFlags<F extends string>(argv: readonly string[], flags: ReadonlySet<F>,
  fail: (option: string, message: string) => Error): { readonly help: true } | { readonly help: false; readonly given: Map<F, string> } {
  const given = new Map<F, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { help: true };
    if (!arg.startsWith('--')) throw fail(arg, `unexpected argument "${arg}"; options are flags such as --port <n> (see --help)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!(flags as ReadonlySet<string>).has(name)) throw fail(`--${name}`, `unknown option --${name} (see --help)`);
    let value: string | undefined;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      value = argv[i + 1];
      // A following flag is not a value: `--port --host x` is a missing port, not a port named "--host".
      if (value === undefined || value.startsWith('--')) throw fail(`--${name}`, `--${name} needs a value (see --help)`);
      i++;
    }
    given.set(name as F, value);
  }
  return { help: false, given };
}

/** `--socket <path>`: listen on a Unix socket instead of a port (the two exclude each other). */
export function socketPathOption(given: ReadonlyMap<string, string>, fail: (option: string, message: string) => Error): string | undefined {
  const path = given.get('socket');
  if (path === undefined) return undefined;
  if (path.trim() === '') throw fail('--socket', '--socket must be a file path, got ""');
  if (given.has('port')) throw fail('--socket', 'give --port or --socket, not both');
  return path;
}

/** The `--socket` line of both servers' usage text. */
export const SOCKET_USAGE = '  --socket <path>                listen on this Unix socket (owner-only, mode 0600) instead of a port\n';
