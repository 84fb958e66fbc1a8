import { FailFast, LoadOutcome } from '../../../runtime/src/lifecycle/fail-fast';

const OK: LoadOutcome = { ok: true, loadedElsewhere: false, transient: false };
const FATAL: LoadOutcome = { ok: false, loadedElsewhere: true, transient: false };
const FAILED: LoadOutcome = { ok: false, loadedElsewhere: false, transient: false };
const UNREACHABLE: LoadOutcome = { ok: false, loadedElsewhere: true, transient: true };

const check = () => new FailFast({ clearancePeriodMs: 180_000, startTime: 1_000 });

describe('FailFast', () => {
  test('the third failure of a model that is loaded elsewhere trips, and it stays tripped', () => {
    const f = check();
    expect(f.record(FATAL, 2_000)).toBeUndefined();
    expect(f.record(OK, 2_000)).toBeUndefined();
    expect(f.record(FATAL, 3_000)).toBeUndefined();
    expect(f.record(FATAL, 4_000)).toBe('3 loads failed here of models that are loaded on other instances');
    expect(f.record(OK, 5_000)).toBeUndefined();
    expect(f.tripped).toBe('3 loads failed here of models that are loaded on other instances');
  });

  test('more than half of more than 20 loads failing trips, even when nothing is loaded elsewhere', () => {
    const f = check();
    for (let i = 0; i < 10; i++) expect(f.record(OK, 2_000)).toBeUndefined();
    for (let i = 0; i < 10; i++) expect(f.record(FAILED, 2_000)).toBeUndefined();
    // The 21st load makes 11 of 21 failed: over half of more than 20.
    expect(f.record(FAILED, 2_000)).toBe('11 of 21 loads failed');
  });

  test('20 loads are too few to judge by ratio, and half is not more than half', () => {
    const f = check();
    for (let i = 0; i < 20; i++) f.record(FAILED, 2_000);
    expect(f.tripped).toBeUndefined();
    const g = check();
    for (let i = 0; i < 11; i++) g.record(OK, 2_000);
    for (let i = 0; i < 11; i++) g.record(FAILED, 2_000);
    expect(g.tripped).toBeUndefined();
  });

  test('transient failures (model server or storage unreachable, cancelled) are not counted', () => {
    const f = check();
    for (let i = 0; i < 10; i++) f.record(UNREACHABLE, 2_000);
    expect(f.tripped).toBeUndefined();
    f.record(FATAL, 2_000);
    f.record(FATAL, 2_000);
    expect(f.tripped).toBeUndefined();
  });

  test('after the clearance period nothing trips', () => {
    const f = check();
    f.record(FATAL, 2_000);
    f.record(FATAL, 2_000);
    expect(f.record(FATAL, 181_001)).toBeUndefined();
    expect(f.tripped).toBeUndefined();
  });
});
