import { runConcurrently } from './concurrency';
import { depositEvents } from './payload';
import type { BenchStore, BenchSystem, SystemId } from './system';
import { check, scaled, triangle } from './workload-checks';
import type { Workload, WorkloadResult } from './workloads';

/**
 * W4b, recovery one by one: the restart of an application whose actors come back one at a time (a web
 * app's entities recovered on their first request). Every id's 20 events are written beforehand
 * interleaved across ids in batches of 5 (id 0 events 1-5, id 1 events 1-5, ..., then id 0 events 6-10,
 * ...), so each id's events lie in 4 separate places of a shared log. Timed: open the store and read every
 * id in full from sequenceNr 1 at the journal level (no snapshots, no runtime), each id awaited before the
 * next; then again (a fresh open) with 32 ids in flight. Both include the open, neither the close.
 */

const EVENTS_PER_ID = 20;
const BATCH = 5;
const CONCURRENT = 32;
/** The systems W4b runs on: Cairn's in-process providers and the raw peers of their engines. */
const MEASURED: ReadonlySet<SystemId> = new Set<SystemId>([
  'cairn-memory',
  'cairn-file',
  'cairn-lmdb',
  'raw-fs',
  'raw-lmdb',
]);

export function w4bIds(scale: number): number {
  return scaled(10_000, scale, 10);
}

/** Opens the store durable, reads every id (`inFlight` at a time), closes; the ms of open + reads. */
async function timedRecovery(
  system: BenchSystem,
  dir: string,
  ids: readonly string[],
  inFlight: number,
): Promise<number> {
  const counts = new Array<number>(ids.length).fill(-1);
  const sums = new Array<number>(ids.length).fill(-1);
  const started = performance.now();
  const store: BenchStore = await system.open(dir, { durable: true });
  let ms: number;
  try {
    const recover = async (n: number): Promise<void> => {
      let sum = 0;
      counts[n] = await store.replay(ids[n] as string, 1, (e) => {
        sum += e.amount;
      });
      sums[n] = sum;
    };
    if (inFlight === 1) {
      for (let n = 0; n < ids.length; n++) await recover(n);
    } else {
      await runConcurrently(ids.length, inFlight, recover);
    }
    ms = performance.now() - started;
  } finally {
    await store.close();
  }
  const expectedSum = triangle(EVENTS_PER_ID);
  ids.forEach((id, n) => {
    check(
      counts[n] === EVENTS_PER_ID && sums[n] === expectedSum,
      `${id} read ${counts[n]} events (sum ${sums[n]}), expected ${EVENTS_PER_ID} (sum ${expectedSum})`,
    );
  });
  return ms;
}

export const w4b: Workload = {
  id: 'W4b',
  title:
    'recovery one by one: ids of 20 events written interleaved in batches of 5; open, read each id in full',
  notApplicable: (system) =>
    MEASURED.has(system.id)
      ? undefined
      : 'W4b compares the memory, file and LMDB providers with the raw peers of their engines only',
  async run({ system, dir, scale }): Promise<WorkloadResult> {
    const count = w4bIds(scale);
    const ids = Array.from({ length: count }, (_, n) => `w4b-${n}`);
    const store = await system.open(dir, { durable: false });
    try {
      for (let first = 1; first <= EVENTS_PER_ID; first += BATCH) {
        // In id order; several in flight only so that building the data does not take long.
        await runConcurrently(count, CONCURRENT, (n) =>
          store.appendBatch(ids[n] as string, depositEvents(first, BATCH, n)),
        );
      }
    } finally {
      await store.close();
    }
    const oneByOneMs = await timedRecovery(system, dir, ids, 1);
    const concurrentMs = await timedRecovery(system, dir, ids, CONCURRENT);
    return {
      figures: [
        { name: 'ids/s one by one', value: count / (oneByOneMs / 1000), unit: 'ids/s one by one' },
        {
          name: `ids/s ${CONCURRENT} at a time`,
          value: count / (concurrentMs / 1000),
          unit: `ids/s ${CONCURRENT} at a time`,
        },
      ],
      seconds: (oneByOneMs + concurrentMs) / 1000,
      shape: `${count} ids x ${EVENTS_PER_ID} events, written in batches of ${BATCH} interleaved across ids`,
      notes: [],
    };
  },
};
