import type { CellRecord } from '../src/results-table';
import { combineRounds } from '../src/rounds';

function ok(value: number, p99Ms: number): CellRecord {
  return {
    workload: 'W1',
    system: 'raw-fs',
    cellSeconds: 1,
    status: 'ok',
    figures: [{ name: 'events/s', value, unit: 'events/s' }],
    p99Ms,
    seconds: 1,
    shape: 'test',
    notes: ['own note'],
  };
}

const failed: CellRecord = {
  workload: 'W1',
  system: 'raw-fs',
  cellSeconds: 1,
  status: 'failed',
  reason: 'boom',
};

test('one round is reported as it is', () => {
  const only = ok(100, 1);
  expect(combineRounds([only])).toBe(only);
});

test('the round with the median figure is reported whole, with the spread', () => {
  const combined = combineRounds([ok(30_000, 3), ok(10_000, 9), ok(20_000, 5)]);
  expect(combined.status).toBe('ok');
  if (combined.status !== 'ok') return;
  expect(combined.figures[0]?.value).toBe(20_000);
  expect(combined.p99Ms).toBe(5);
  expect(combined.notes).toEqual(['own note', 'median of 3 rounds, 10.0k..30.0k events/s']);
});

test('an even count takes the lower middle; failed rounds are named', () => {
  const combined = combineRounds([ok(400, 1), failed, ok(100, 1), ok(300, 1), ok(200, 1)]);
  if (combined.status !== 'ok') throw new Error('expected ok');
  expect(combined.figures[0]?.value).toBe(200);
  expect(combined.notes[2]).toBe('1 of 5 rounds failed: boom');
});

test('no successful round reports the first failure', () => {
  expect(combineRounds([failed, { ...failed, reason: 'later' }])).toEqual(failed);
  expect(() => combineRounds([])).toThrow(RangeError);
});
