import { LatencyRecorder } from './latency';
import { MemorySampler } from './memory-sampler';
import { type DepositEvent, depositEvent, depositEvents } from './payload';
import { type BenchQuery, type BenchStore, type BenchSystem, NotApplicableError } from './system';
import { check, scaled, triangle } from './workload-checks';
import type { Workload, WorkloadResult } from './workloads';

/**
 * The read-side workloads (Cairn's providers only: the peers have no global order across ids):
 * W7 live projection under W1's load, W8 catch-up over 1,000,000 events of 1,000 ids, and W1T, W1 with
 * two tags on every event (its ratio to the same run's W1 is the cost of tags).
 */

const WRITERS = 100;
const W8_IDS = 1000;
const SETUP_CHUNK = 100;
const SAMPLE_EVERY = 4096;

function onlyCairn(system: BenchSystem): string | undefined {
  return system.id.startsWith('cairn-') || system.globalOrder
    ? undefined
    : 'the peers have no global order across ids to query';
}

async function withQuery<T>(
  system: BenchSystem,
  dir: string,
  durable: boolean,
  work: (store: BenchStore, query: BenchQuery) => Promise<T>,
): Promise<T> {
  const store = await system.open(dir, { durable });
  try {
    if (!store.query)
      throw new NotApplicableError(`${system.label} offers no event queries (not landed yet?)`);
    return await work(store, store.query);
  } finally {
    await store.close();
  }
}

async function verifyIds(store: BenchStore, prefix: string, ids: number, perId: number): Promise<void> {
  for (let n = 0; n < ids; n++) {
    let sum = 0;
    const read = await store.replay(`${prefix}-${n}`, 1, (e) => {
      sum += e.amount;
    });
    check(read === perId && sum === triangle(perId), `${prefix}-${n} read ${read} events (sum ${sum})`);
  }
}

export const w7: Workload = {
  id: 'W7',
  title: "live projection: W1's load with one live allEvents reader consuming as events commit",
  notApplicable: onlyCairn,
  async run({ system, dir, scale }) {
    const perId = scaled(1000, scale, 1);
    const total = WRITERS * perId;
    const resolvedAt = new Float64Array(total).fill(Number.NaN);
    const deliveredAt = new Float64Array(total).fill(Number.NaN);
    return withQuery(system, dir, true, async (store, query) => {
      let delivered = 0;
      let lastDelivery = 0;
      let allDelivered: () => void = () => undefined;
      const done = new Promise<void>((resolve) => {
        allDelivered = resolve;
      });
      const reader = await query.follow((_e, persistenceId, sequenceNr) => {
        const index = Number(persistenceId.slice(3)) * perId + sequenceNr - 1;
        deliveredAt[index] = performance.now();
        lastDelivery = deliveredAt[index] as number;
        if (++delivered === total) allDelivered();
      });
      const started = performance.now();
      try {
        await Promise.all(
          Array.from({ length: WRITERS }, async (_, n) => {
            for (let i = 1; i <= perId; i++) {
              await store.append(`w7-${n}`, depositEvent(i, n));
              resolvedAt[n * perId + i - 1] = performance.now();
            }
          }),
        );
        const writersMs = performance.now() - started;
        const timeout = setTimeout(() => allDelivered(), 30_000);
        await done;
        clearTimeout(timeout);
        check(delivered === total, `the reader got ${delivered} of ${total} events`);
        const lags = new LatencyRecorder(total);
        let early = 0;
        for (let k = 0; k < total; k++) {
          const lag = (deliveredAt[k] as number) - (resolvedAt[k] as number);
          if (lag < 0) early++;
          lags.record(Math.max(0, lag));
        }
        const readerMs = lastDelivery - started;
        await verifyIds(store, 'w7', WRITERS, perId);
        const result: WorkloadResult = {
          figures: [
            { name: 'reader events/s', value: total / (readerMs / 1000), unit: 'events/s' },
            { name: 'writer events/s', value: total / (writersMs / 1000), unit: 'events/s (writers)' },
          ],
          p50Ms: lags.quantile(0.5),
          p99Ms: lags.quantile(0.99),
          seconds: readerMs / 1000,
          shape: `${WRITERS} ids x ${perId} events, 1 live reader`,
          notes: [
            'p50/p99: lag from append resolve to delivery',
            ...(early > 0
              ? [`${early} event(s) delivered before their append resolved (lag counted 0)`]
              : []),
          ],
        };
        return result;
      } finally {
        await reader.stop();
      }
    });
  },
};

export const w8: Workload = {
  id: 'W8',
  title: 'catch-up: allEvents from the start over 1,000,000 events of 1,000 ids',
  notApplicable: onlyCairn,
  async run({ system, dir, scale }) {
    const perId = Math.max(1, Math.round(scaled(1_000_000, scale, W8_IDS) / W8_IDS));
    const total = perId * W8_IDS;
    // Interleaved across ids in chunks, as many writers would leave it.
    await withQuery(system, dir, false, async (store) => {
      for (let from = 1; from <= perId; from += SETUP_CHUNK) {
        const count = Math.min(SETUP_CHUNK, perId - from + 1);
        for (let n = 0; n < W8_IDS; n++) await store.appendBatch(`w8-${n}`, depositEvents(from, count, n));
      }
    });
    return withQuery(system, dir, true, async (_store, query) => {
      let sum = 0;
      let seen = 0;
      const sampler = new MemorySampler();
      const started = performance.now();
      let read: number;
      let memory: { heapGrowthMiB: number; rssGrowthMiB: number };
      try {
        read = await query.catchUp((e: DepositEvent) => {
          sum += e.amount;
          if (++seen % SAMPLE_EVERY === 0) sampler.sample();
        });
      } finally {
        memory = sampler.stop();
      }
      const ms = performance.now() - started;
      check(
        read === total && sum === W8_IDS * triangle(perId),
        `read ${read} events (sum ${sum}), expected ${total}`,
      );
      return {
        figures: [{ name: 'events/s', value: total / (ms / 1000), unit: 'events/s' }],
        heapGrowthMiB: memory.heapGrowthMiB,
        rssGrowthMiB: memory.rssGrowthMiB,
        seconds: ms / 1000,
        shape: `${W8_IDS} ids x ${perId} events`,
        notes: [],
      };
    });
  },
};

export const w1t: Workload = {
  id: 'W1T',
  title: "W1 with two tags on every event (the cost of tags: compare with the same run's W1)",
  notApplicable: onlyCairn,
  async run({ system, dir, scale }) {
    const perId = scaled(1000, scale, 1);
    const latencies = new LatencyRecorder(WRITERS * perId);
    return withQuery(system, dir, true, async (store, query) => {
      const started = performance.now();
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, n) => {
          const tags = ['deposit', `acct-${n}`];
          for (let i = 1; i <= perId; i++) {
            const t = performance.now();
            await query.appendTagged(`w1t-${n}`, depositEvent(i, n), tags);
            latencies.record(performance.now() - t);
          }
        }),
      );
      const ms = performance.now() - started;
      await verifyIds(store, 'w1t', WRITERS, perId);
      return {
        figures: [{ name: 'events/s', value: (WRITERS * perId) / (ms / 1000), unit: 'events/s' }],
        p50Ms: latencies.quantile(0.5),
        p99Ms: latencies.quantile(0.99),
        seconds: ms / 1000,
        shape: `${WRITERS} ids x ${perId} events, 2 tags each`,
        notes: [],
      };
    });
  },
};
