import pino from 'pino';

/**
 * Structured logs (pino): one JSON object per line on stderr, `level` as a name, ISO `time`, `msg`, then the
 * instance's and the event's fields. Lifecycle events (load, unload, evict, placement, leave, leader change) are
 * logged with their reasons so an operator can follow decisions; errors are logged by message.
 */

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export type LogFields = Record<string, unknown>;

export interface Logger {
  trace(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  /** Whether a line at `level` would be written (skip building costly fields when not). */
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
}

/** Errors become their message: stacks belong in debugging, not in every warning an operator reads. */
function plainFields(fields: LogFields | undefined): LogFields | undefined {
  if (!fields) return fields;
  let out: LogFields | undefined;
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof Error) {
      out ??= { ...fields };
      out[k] = v.message;
    }
  }
  return out ?? fields;
}

function wrap(p: pino.Logger): Logger {
  const at = (level: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: LogFields) => {
    if (p.isLevelEnabled(level)) p[level](plainFields(fields) ?? {}, msg);
  };
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (fields) => wrap(p.child(plainFields(fields) ?? {})),
    enabled: (level) => p.isLevelEnabled(level),
  };
}

/** A logger writing lines at `level` and above through `write` (stderr by default), with `base` on every line. */
export function createLogger(level: LogLevel, base: LogFields = {}, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return wrap(pino({
    level,
    base,
    messageKey: 'msg',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, { write }));
}

/**
 * Routes process warnings (Node's deprecations, a library's notice such as the AWS SDK's about Node versions) into
 * `log` as one line each, instead of Node's multi-line text on stderr, which breaks a stream of JSON lines. Returns
 * a function that puts Node's own printer back.
 */
export function logProcessWarnings(log: Logger): () => void {
  const previous = process.listeners('warning');
  process.removeAllListeners('warning');
  const onWarning = (warning: Error) => log.warn('process warning', { name: warning.name, warning: warning.message.replace(/\s*\n\s*/g, ' ') });
  process.on('warning', onWarning);
  return () => {
    process.off('warning', onWarning);
    for (const listener of previous) process.on('warning', listener);
  };
}
