import { compareRuns } from '../src/compare';
import type { CellRecord } from '../src/results-table';

function ok(workload: CellRecord['workload'], system: CellRecord['system'], value: number): CellRecord {
  return {
    workload,
    system,
    cellSeconds: 1,
    status: 'ok',
    figures: [{ name: 'events/s', value, unit: 'events/s' }],
    seconds: 1,
    shape: 'test',
    notes: [],
  };
}

test('rows pair the same cell of two runs, with the change and both runs own ratios', () => {
  const before = {
    startedAt: '2026-11-23T12:00:00.000Z',
    records: [ok('W1', 'cairn-file', 50_000), ok('W1', 'raw-fs', 100_000), ok('W1', 'sqlite-full', 5_000)],
  };
  const after = {
    startedAt: '2026-11-23T13:00:00.000Z',
    records: [
      ok('W1', 'cairn-file', 60_000),
      ok('W1', 'raw-fs', 75_000),
      ok('W1', 'sqlite-full', 6_000),
      ok('W2', 'cairn-lmdb', 1_000),
      { workload: 'W3', system: 'cairn-lmdb', cellSeconds: 1, status: 'failed', reason: 'x' } as CellRecord,
    ],
  };
  const lines = compareRuns(before, after).split('\n');
  expect(lines[2]).toBe(
    '| W1 | cairn file | 50.0k events/s | 60.0k events/s | +20% | 0.50x -> 0.80x | 10.00x -> 10.00x |',
  );
  expect(lines[3]).toBe('| W1 | raw-fs | 100k events/s | 75.0k events/s | -25% |  | 20.00x -> 12.50x |');
  expect(lines[5]).toBe('| W2 | cairn lmdb | - | 1000 events/s |  |  |  |');
  expect(lines).toHaveLength(6);
});
