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
    expect(rates.busy(0)).toEqual([]);
  });

  test('the total and each rate follow the minute as buckets expire, and quiet models are forgotten', () => {
    let now = 2_000_000;
    const rates = new RateTracker(() => now);
    rates.record('a');
    now += 20_000;
    rates.record('b');
    rates.record('b');
    expect(rates.total()).toBe(3);
    now += 45_000;
    // a's request is 65 s old, b's 45 s.
    expect(rates.total()).toBe(2);
    expect(rates.busy(0)).toEqual([['b', 2]]);
    expect(rates.busy(3)).toEqual([]);
    expect(rates.perMinute('a')).toBe(0);
    now += 600_000;
    expect(rates.total()).toBe(0);
    rates.record('a');
    expect(rates.total()).toBe(1);
    expect(rates.busy(1)).toEqual([['a', 1]]);
  });

  test('a request counted while the clock stepped back is still counted', () => {
    let now = 3_000_000;
    const rates = new RateTracker(() => now);
    rates.record('a');
    now -= 15_000;
    rates.record('a');
    expect(rates.perMinute('a')).toBe(2);
    expect(rates.total()).toBe(2);
  });
});
