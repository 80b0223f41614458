import { LatencyRecorder } from '../src/latency';
import { type CellRecord, formatCount, renderTable } from '../src/results-table';

function ok(workload: CellRecord['workload'], system: CellRecord['system'], ...values: number[]): CellRecord {
  const unit = workload === 'W4' ? 'ids/s' : workload === 'W5' ? 'saves/s' : 'events/s';
  return {
    workload,
    system,
    cellSeconds: 1,
    status: 'ok',
    figures: values.map((value, k) => ({
      name: k === 0 ? unit : 'loads/s',
      value,
      unit: k === 0 ? unit : 'loads/s',
    })),
    seconds: 1,
    shape: 'test',
    notes: [],
  };
}

function row(table: string, workload: string, label: string): string[] {
  const line = table.split('\n').find((l) => l.startsWith(`| ${workload} | ${label} |`));
  if (!line) throw new Error(`no row ${workload} ${label} in\n${table}`);
  return line.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, ''));
}

test('ratios are taken against the raw peer of the same engine and against better-sqlite3 FULL', () => {
  const table = renderTable([
    ok('W1', 'cairn-file', 120_000),
    ok('W1', 'cairn-lmdb', 45_000),
    ok('W1', 'raw-fs', 150_000),
    ok('W1', 'raw-lmdb', 50_000),
    ok('W1', 'sqlite-full', 6_000),
  ]);
  expect(row(table, 'W1', 'cairn file').slice(5, 7)).toEqual(['0.80x', '20.00x']);
  expect(row(table, 'W1', 'cairn lmdb').slice(5, 7)).toEqual(['0.90x', '7.50x']);
  expect(row(table, 'W1', 'raw-fs').slice(5, 7)).toEqual(['', '25.00x']);
  expect(row(table, 'W1', 'better-sqlite3 FULL').slice(5, 7)).toEqual(['', '']);
});

test('cairn lmdb is also held against the raw peer that keeps the same indexes, in its notes', () => {
  const table = renderTable([
    ok('W1', 'cairn-lmdb', 45_000),
    ok('W1', 'raw-lmdb', 50_000),
    ok('W1', 'raw-lmdb-indexed', 40_000),
    ok('W8', 'cairn-lmdb', 300_000),
    ok('W8', 'raw-lmdb-indexed', 400_000),
  ]);
  const w1 = row(table, 'W1', 'cairn lmdb');
  expect(w1[5]).toBe('0.90x');
  expect(w1[7]).toContain('1.13x raw-lmdb-indexed');
  expect(row(table, 'W8', 'cairn lmdb')[7]).toContain('0.75x raw-lmdb-indexed');
  expect(row(table, 'W1', 'raw-lmdb')[7]).not.toContain('raw-lmdb-indexed');
});

test('W5 compares saves and loads separately; W6 is held against W1 and its own W1', () => {
  const table = renderTable([
    ok('W1', 'cairn-file', 100_000),
    ok('W1', 'raw-fs', 200_000),
    ok('W1', 'sqlite-full', 10_000),
    ok('W5', 'cairn-file', 300, 4000),
    ok('W5', 'raw-fs', 600, 2000),
    ok('W6', 'cairn-file', 70_000),
  ]);
  expect(row(table, 'W5', 'cairn file').slice(5, 6)).toEqual(['0.50x / 2.00x']);
  const w6 = row(table, 'W6', 'cairn file');
  expect(w6.slice(5, 7)).toEqual(['0.35x (W1)', '7.00x (W1)']);
  expect(w6[7]).toContain('0.70x own W1');
});

test('missing peers leave the ratio empty; unavailable and failed cells say why; n/a cells are listed below', () => {
  const table = renderTable([
    ok('W2', 'cairn-lmdb', 1000),
    {
      workload: 'W2',
      system: 'cairn-file',
      cellSeconds: 0,
      status: 'unavailable',
      reason: 'no FileMessageJournal | yet',
    },
    {
      workload: 'W2',
      system: 'classic-level',
      cellSeconds: 0,
      status: 'failed',
      reason: 'Error: boom\nat line',
    },
    { workload: 'W5', system: 'event-storage', cellSeconds: 0, status: 'n/a', reason: 'no snapshot store' },
  ]);
  expect(row(table, 'W2', 'cairn lmdb').slice(5, 7)).toEqual(['', '']);
  expect(row(table, 'W2', 'cairn file')[2]).toBe('unavailable');
  expect(table).toContain('no FileMessageJournal \\| yet');
  expect(table).toContain('Error: boom at line');
  expect(table).not.toContain('| W5 | event-storage');
  expect(table).toContain('Not run:\n- W5 on event-storage: no snapshot store');
});

test('counts print compactly', () => {
  expect(formatCount(1_234_567)).toBe('1.23M');
  expect(formatCount(123_456)).toBe('123k');
  expect(formatCount(45_678)).toBe('45.7k');
  expect(formatCount(812.4)).toBe('812');
  expect(formatCount(81.94)).toBe('81.9');
});

test('latency quantiles are nearest-rank over what was recorded', () => {
  const latencies = new LatencyRecorder(1000);
  expect(latencies.quantile(0.5)).toBeUndefined();
  for (let k = 100; k >= 1; k--) latencies.record(k);
  expect(latencies.quantile(0.5)).toBe(50);
  expect(latencies.quantile(0.99)).toBe(99);
  expect(latencies.quantile(1)).toBe(100);
});
