import { createLogger, logProcessWarnings } from '../../runtime/src/log';

test('process warnings become one log line each instead of Node\'s text on stderr', () => {
  const lines: string[] = [];
  const restore = logProcessWarnings(createLogger('info', { instance: 'i-1' }, (line) => lines.push(line)));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    // What process.emitWarning does on the next tick (jest's sandboxed process does not deliver emitWarning).
    const warning = new Error('first line\nsecond line');
    warning.name = 'NodeVersionSupportWarning';
    process.emit('warning', warning);
  } finally {
    stderr.mockRestore();
    restore();
  }
  expect(stderr).not.toHaveBeenCalled();
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0])).toMatchObject({
    level: 'warn', instance: 'i-1', msg: 'process warning', name: 'NodeVersionSupportWarning', warning: 'first line second line',
  });
});

test('restoring gives the warning listeners back', () => {
  const before = process.listeners('warning');
  const restore = logProcessWarnings(createLogger('silent'));
  expect(process.listeners('warning')).toHaveLength(1);
  restore();
  expect(process.listeners('warning')).toEqual(before);
});
