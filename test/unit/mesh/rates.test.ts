import { RateTracker } from '../../../runtime/src/mesh/rates';

describe('RateTracker', () => {
  test('counts requests over a sliding minute per model', () => {
    let now = 1_000_000;
    const rates = new RateTracker(() => now);
    for (let i = 0; i < 30; i++) rates.record('a');
    now += 30_000;
    for (let i = 0; i < 10; i++) rates.record('a');
    rates.record('b');
    expect(rates.perMinute('a')).toBe(40);
    expect(rates.total()).toBe(41);
    now += 35_000;
    // The first 30 requests are now more than a minute old.
    expect(rates.perMinute('a')).toBe(10);
    now += 60_000;
    expect(rates.active()).toEqual(new Map());
  });
});
