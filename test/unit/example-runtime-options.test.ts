import {
  DEFAULT_CAPACITY_BYTES, DEFAULT_LOAD_TIMEOUT_MS, DEFAULT_MAX_LOADING_CONCURRENCY, DEFAULT_MODEL_SIZE_BYTES,
  ExampleOptionError, ExampleRuntimeOptions, parseExampleOptions,
} from '../../runtime/servers/example/options';

function options(argv: string[], env: Record<string, string> = {}): ExampleRuntimeOptions {
  const parsed = parseExampleOptions(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected options, got ${parsed.kind}`);
  return parsed.options;
}

function errorOf(argv: string[], env: Record<string, string> = {}): ExampleOptionError {
  try {
    parseExampleOptions(argv, env);
  } catch (err) {
    if (err instanceof ExampleOptionError) return err;
    throw err;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('modelmesh runtime example options', () => {
  test('defaults follow the design: port 8085 on 127.0.0.1, 256 MiB, size from the file, no delay, 4 loads', () => {
    expect(options([])).toEqual({
      host: '127.0.0.1',
      port: 8085,
      capacityBytes: DEFAULT_CAPACITY_BYTES,
      defaultModelSizeBytes: DEFAULT_MODEL_SIZE_BYTES,
      loadDelayMs: 0,
      maxLoadingConcurrency: DEFAULT_MAX_LOADING_CONCURRENCY,
      loadTimeoutMs: DEFAULT_LOAD_TIMEOUT_MS,
      inferDelayMs: 0,
    });
    expect(DEFAULT_CAPACITY_BYTES).toBe(256 * 1024 * 1024);
    expect(DEFAULT_MAX_LOADING_CONCURRENCY).toBe(4);
    expect(options([]).modelSizeBytes).toBeUndefined();
  });

  test('every flag is read, as "--flag value" or "--flag=value"', () => {
    expect(options([
      '--port', '9001', '--host=0.0.0.0', '--capacity', '1000', '--model-size=100', '--default-model-size', '200',
      '--load-delay-ms', '250', '--max-loading-concurrency=2', '--load-timeout-ms', '5000', '--fail-path', 'bad',
      '--model-concurrency', '3', '--infer-delay-ms=20',
    ])).toEqual({
      host: '0.0.0.0',
      port: 9001,
      capacityBytes: 1000,
      modelSizeBytes: 100,
      defaultModelSizeBytes: 200,
      loadDelayMs: 250,
      maxLoadingConcurrency: 2,
      loadTimeoutMs: 5000,
      failPath: 'bad',
      modelConcurrency: 3,
      inferDelayMs: 20,
    });
  });

  test('the default model size follows --model-size when only that is given', () => {
    expect(options(['--model-size', '4096']).defaultModelSizeBytes).toBe(4096);
  });

  test('the result is frozen', () => {
    expect(Object.isFrozen(options([]))).toBe(true);
  });

  test('MM_RUNTIME_PORT sets the port; --port wins over it', () => {
    expect(options([], { MM_RUNTIME_PORT: '7000' }).port).toBe(7000);
    expect(options(['--port', '7001'], { MM_RUNTIME_PORT: '7000' }).port).toBe(7001);
    expect(options([], { MM_RUNTIME_PORT: '' }).port).toBe(8085);
  });

  test('port 0 (a free port) is allowed', () => {
    expect(options(['--port', '0']).port).toBe(0);
  });

  test('--socket listens on a Unix socket instead of a port', () => {
    expect(options(['--socket', '/run/mm/spi.sock']).socketPath).toBe('/run/mm/spi.sock');
    expect(options([])).not.toHaveProperty('socketPath');
  });

  test('--help asks for help', () => {
    expect(parseExampleOptions(['--capacity', '5', '--help'])).toEqual({ kind: 'help' });
    expect(parseExampleOptions(['-h'])).toEqual({ kind: 'help' });
  });

  test.each([
    [['--port', '80a'], '--port', /--port must be a port number \(0-65535\), got "80a"/],
    [['--port', '65536'], '--port', /--port must be a port number/],
    [['--capacity', 'abc'], '--capacity', /--capacity must be a whole number of bytes greater than 0, got "abc"/],
    [['--capacity', '0'], '--capacity', /--capacity must be a whole number of bytes greater than 0, got "0"/],
    [['--capacity', '1e9'], '--capacity', /got "1e9"/],
    [['--model-size', '-5'], '--model-size', /--model-size must be a whole number of bytes greater than 0, got "-5"/],
    [['--default-model-size', '1.5'], '--default-model-size', /--default-model-size must be a whole number of bytes/],
    [['--load-delay-ms', 'soon'], '--load-delay-ms', /--load-delay-ms must be a whole number of milliseconds \(0 or more\), got "soon"/],
    [['--max-loading-concurrency', '0'], '--max-loading-concurrency', /--max-loading-concurrency must be a whole number, 1 or more, got "0"/],
    [['--load-timeout-ms', '50'], '--load-timeout-ms', /--load-timeout-ms must be a whole number of milliseconds, 100 or more, got "50"/],
    [['--host', ''], '--host', /--host must be an address/],
    [['--socket', ''], '--socket', /--socket must be a file path/],
    [['--socket', '/s', '--port', '1'], '--socket', /give --port or --socket, not both/],
    [['--capacity'], '--capacity', /--capacity needs a value/],
    [['--port', '--capacity', '5'], '--port', /--port needs a value/],
    [['--size', '5'], '--size', /unknown option --size/],
    [['example'], 'example', /unexpected argument "example"/],
    [['--capacity', '100', '--model-size', '200'], '--capacity', /--capacity \(100\) must be at least --model-size \(200\)/],
  ])('%j is refused, naming %s', (argv, option, message) => {
    const err = errorOf(argv);
    expect(err.option).toBe(option);
    expect(err.message).toMatch(message);
  });

  test('a bad MM_RUNTIME_PORT names the variable', () => {
    const err = errorOf([], { MM_RUNTIME_PORT: 'eighty' });
    expect(err.option).toBe('MM_RUNTIME_PORT');
    expect(err.message).toBe('MM_RUNTIME_PORT must be a port number (0-65535), got "eighty"');
  });
});
