import { type CellRecord, formatCount } from './results-table';

/**
 * One record for a cell measured in several rounds: the round with the median primary figure (its
 * latencies and notes come with it, so a row stays one real measurement, not a blend), noting the spread.
 * Failed rounds are named in the note; a cell with no successful round reports its first failure.
 */
export function combineRounds(rounds: readonly CellRecord[]): CellRecord {
  const first = rounds[0];
  if (!first) throw new RangeError('combineRounds needs at least one round');
  if (rounds.length === 1) return first;
  const ok = rounds.filter((r): r is Extract<CellRecord, { status: 'ok' }> => r.status === 'ok');
  const failed = rounds.filter((r) => r.status !== 'ok' && r.status !== 'n/a');
  if (ok.length === 0) return failed[0] ?? first;
  const primary = (r: (typeof ok)[number]): number => r.figures[0]?.value ?? 0;
  const sorted = [...ok].sort((a, b) => primary(a) - primary(b));
  // With an even count, the lower middle: a noisy machine errs slow, so do we.
  const median = sorted[Math.floor((sorted.length - 1) / 2)] as (typeof ok)[number];
  const low = primary(sorted[0] as (typeof ok)[number]);
  const high = primary(sorted[sorted.length - 1] as (typeof ok)[number]);
  const notes = [
    `median of ${ok.length} rounds, ${spread(low, high)} ${median.figures[0]?.unit ?? ''}`.trim(),
  ];
  if (failed.length > 0) {
    notes.push(
      `${failed.length} of ${rounds.length} rounds ${failed.map((f) => `${f.status}: ${'reason' in f ? f.reason : ''}`).join('; ')}`,
    );
  }
  return { ...median, notes: [...median.notes, ...notes] };
}

function spread(low: number, high: number): string {
  return `${formatCount(low)}..${formatCount(high)}`;
}
