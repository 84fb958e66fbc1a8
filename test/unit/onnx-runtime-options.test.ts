import {
  DEFAULT_CAPACITY_BYTES, DEFAULT_LOAD_TIMEOUT_MS, DEFAULT_MAX_LOADING_CONCURRENCY, DEFAULT_MEM_BUFFER_BYTES,
  DEFAULT_MODEL_SIZE_BYTES, DEFAULT_MODEL_SIZE_MULTIPLIER, OnnxOptionError, OnnxRuntimeOptions, parseOnnxOptions,
} from '../../runtime/servers/onnx/options';

const GIB = 1024 ** 3;

function options(argv: string[], env: Record<string, string> = {}): OnnxRuntimeOptions {
  const parsed = parseOnnxOptions(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected options, got ${parsed.kind}`);
  return parsed.options;
}

function errorOf(argv: string[], env: Record<string, string> = {}): OnnxOptionError {
  try {
    parseOnnxOptions(argv, env);
  } catch (err) {
    if (err instanceof OnnxOptionError) return err;
    throw err;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('modelmesh runtime onnx options', () => {
  test('defaults: port 8085 on 127.0.0.1, 512 MiB, upstream adapters\' sizes and timeout, 2 loads at once', () => {
    expect(options([])).toEqual({
      host: '127.0.0.1',
      port: 8085,
      capacityBytes: DEFAULT_CAPACITY_BYTES,
      capacitySource: 'the default (neither --capacity nor CONTAINER_MEM_REQ_BYTES is set)',
      defaultModelSizeBytes: DEFAULT_MODEL_SIZE_BYTES,
      modelSizeMultiplier: DEFAULT_MODEL_SIZE_MULTIPLIER,
      maxLoadingConcurrency: DEFAULT_MAX_LOADING_CONCURRENCY,
      loadTimeoutMs: DEFAULT_LOAD_TIMEOUT_MS,
    });
    expect([DEFAULT_CAPACITY_BYTES, DEFAULT_MEM_BUFFER_BYTES, DEFAULT_MODEL_SIZE_BYTES, DEFAULT_MODEL_SIZE_MULTIPLIER, DEFAULT_LOAD_TIMEOUT_MS])
      .toEqual([512 * 1024 ** 2, 256 * 1024 ** 2, 1_000_000, 1.25, 30_000]);
    expect(Object.isFrozen(options([]))).toBe(true);
  });

  test('every flag is read, as "--flag value" or "--flag=value"', () => {
    expect(options(['--port', '9001', '--host=0.0.0.0', '--capacity', '200000000', '--default-model-size=2000000',
      '--model-size-multiplier', '2.75', '--max-loading-concurrency', '3', '--load-timeout-ms=90000'])).toEqual({
      host: '0.0.0.0',
      port: 9001,
      capacityBytes: 200_000_000,
      capacitySource: '--capacity',
      defaultModelSizeBytes: 2_000_000,
      modelSizeMultiplier: 2.75,
      maxLoadingConcurrency: 3,
      loadTimeoutMs: 90_000,
    });
  });

  test('upstream\'s adapter variables are read when no flag says otherwise; flags win', () => {
    const env = {
      MM_RUNTIME_PORT: '7000',
      DEFAULT_MODELSIZE: '500000',
      MODELSIZE_MULTIPLIER: '1.5',
      LOADING_CONCURRENCY: '5',
      LOADTIME_TIMEOUT: '60000',
      ROOT_MODEL_DIR: '/models',
    };
    expect(options([], env)).toMatchObject({
      port: 7000, defaultModelSizeBytes: 500_000, modelSizeMultiplier: 1.5, maxLoadingConcurrency: 5, loadTimeoutMs: 60_000, modelRoot: '/models',
    });
    expect(options(['--port', '7001', '--load-timeout-ms', '1000', '--model-size-multiplier', '1'], env))
      .toMatchObject({ port: 7001, loadTimeoutMs: 1000, modelSizeMultiplier: 1 });
    // An empty variable is unset, as Kubernetes renders an env entry without a value.
    expect(options([], { LOADTIME_TIMEOUT: '', MM_RUNTIME_PORT: '' })).toMatchObject({ port: 8085, loadTimeoutMs: DEFAULT_LOAD_TIMEOUT_MS });
  });

  test('capacity is CONTAINER_MEM_REQ_BYTES minus MEM_BUFFER_BYTES (256 MiB unless set), and --capacity wins', () => {
    expect(options([], { CONTAINER_MEM_REQ_BYTES: String(GIB) })).toMatchObject({
      capacityBytes: GIB - DEFAULT_MEM_BUFFER_BYTES,
      capacitySource: `CONTAINER_MEM_REQ_BYTES (${GIB}) − MEM_BUFFER_BYTES (${DEFAULT_MEM_BUFFER_BYTES})`,
    });
    expect(options([], { CONTAINER_MEM_REQ_BYTES: String(GIB), MEM_BUFFER_BYTES: '0' })).toMatchObject({ capacityBytes: GIB });
    expect(options(['--capacity', '300000000'], { CONTAINER_MEM_REQ_BYTES: String(GIB) }))
      .toMatchObject({ capacityBytes: 300_000_000, capacitySource: '--capacity' });
  });

  test('a memory request no larger than the buffer is refused, naming both', () => {
    const err = errorOf([], { CONTAINER_MEM_REQ_BYTES: String(200 * 1024 ** 2) });
    expect(err.option).toBe('CONTAINER_MEM_REQ_BYTES');
    expect(err.message).toBe(`CONTAINER_MEM_REQ_BYTES (${200 * 1024 ** 2}) must be greater than MEM_BUFFER_BYTES (${DEFAULT_MEM_BUFFER_BYTES}), `
      + 'or no memory is left for models; raise the container\'s memory request');
  });

  test('a capacity the mesh would refuse for the default model size is refused at start, naming its source', () => {
    expect(errorOf(['--capacity', '5000000']).message)
      .toBe('the capacity from --capacity is 5000000 bytes; the mesh needs at least 10000000 bytes for a default model size of 1000000');
    const err = errorOf([], { CONTAINER_MEM_REQ_BYTES: String(260 * 1024 ** 2) });
    expect(err.option).toBe('CONTAINER_MEM_REQ_BYTES');
    expect(err.message).toMatch(/^the capacity from CONTAINER_MEM_REQ_BYTES \(272629760\) − MEM_BUFFER_BYTES \(268435456\) is 4194304 bytes/);
    expect(options(['--capacity', '5000000', '--default-model-size', '100000']).capacityBytes).toBe(5_000_000);
  });

  test.each([
    [['--port', '80a'], {}, '--port', '--port must be a port number (0-65535), got "80a"'],
    [['--port', '70000'], {}, '--port', '--port must be a port number (0-65535), got "70000"'],
    [[], { MM_RUNTIME_PORT: 'x' }, 'MM_RUNTIME_PORT', 'MM_RUNTIME_PORT must be a port number (0-65535), got "x"'],
    [['--capacity', '1Gi'], {}, '--capacity', '--capacity must be a whole number of bytes greater than 0, got "1Gi"'],
    [[], { CONTAINER_MEM_REQ_BYTES: '1Gi' }, 'CONTAINER_MEM_REQ_BYTES',
      'CONTAINER_MEM_REQ_BYTES must be a whole number of bytes (the container\'s memory request), got "1Gi"'],
    [[], { CONTAINER_MEM_REQ_BYTES: String(GIB), MEM_BUFFER_BYTES: '-1' }, 'MEM_BUFFER_BYTES', 'MEM_BUFFER_BYTES must be a whole number of bytes, got "-1"'],
    [['--load-timeout-ms', '50'], {}, '--load-timeout-ms', '--load-timeout-ms must be a whole number of milliseconds, 100 or more, got "50"'],
    [[], { LOADTIME_TIMEOUT: 'soon' }, 'LOADTIME_TIMEOUT', 'LOADTIME_TIMEOUT must be a whole number of milliseconds, 100 or more, got "soon"'],
    [['--max-loading-concurrency', '0'], {}, '--max-loading-concurrency', '--max-loading-concurrency must be a whole number, 1 or more, got "0"'],
    [[], { DEFAULT_MODELSIZE: '0' }, 'DEFAULT_MODELSIZE', 'DEFAULT_MODELSIZE must be a whole number of bytes greater than 0, got "0"'],
    [['--model-size-multiplier', '0'], {}, '--model-size-multiplier',
      '--model-size-multiplier must be a decimal number above 0 and at most 100, such as 1.25, got "0"'],
    [[], { MODELSIZE_MULTIPLIER: '1e2' }, 'MODELSIZE_MULTIPLIER',
      'MODELSIZE_MULTIPLIER must be a decimal number above 0 and at most 100, such as 1.25, got "1e2"'],
    [['--host', ''], {}, '--host', '--host must be an address such as 127.0.0.1 or 0.0.0.0, got ""'],
    [['--size', '1'], {}, '--size', 'unknown option --size (see --help)'],
    [['--port'], {}, '--port', '--port needs a value (see --help)'],
    [['8085'], {}, '8085', 'unexpected argument "8085"; options are flags such as --port <n> (see --help)'],
  ] as [string[], Record<string, string>, string, string][])('%j %j is refused naming %s', (argv, env, option, message) => {
    const err = errorOf(argv, env);
    expect(err.option).toBe(option);
    expect(err.message).toBe(message);
  });

  test('--help wins over everything else', () => {
    expect(parseOnnxOptions(['--port', 'bad', '--help'])).toEqual({ kind: 'help' });
  });
});
