import { runConcurrently } from './concurrency';
import { encodeValue } from './event-codec';
import { LatencyRecorder } from './latency';
import { MemorySampler } from './memory-sampler';
import {
  accountSnapshot,
  applyDeposit,
  type BalanceState,
  type DepositEvent,
  depositEvent,
  depositEvents,
  EMPTY_BALANCE,
} from './payload';
import { w1t, w7, w8 } from './read-side-workloads';
import { w4b } from './recovery-one-by-one';
import {
  type BenchStore,
  type BenchSystem,
  NotApplicableError,
  type RuntimeModule,
  type RuntimeTarget,
  SystemUnavailableError,
} from './system';
import { fdatasyncRate } from './systems/raw-fs';
import { check, scaled, triangle } from './workload-checks';

export const WORKLOAD_IDS = ['W1', 'W1T', 'W2', 'W3', 'W4', 'W4b', 'W5', 'W6', 'W7', 'W8'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/** One measured quantity; the first of a result is the one ratios are taken of. */
export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

export interface WorkloadResult {
  readonly figures: Figure[];
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly heapGrowthMiB?: number;
  readonly rssGrowthMiB?: number;
  /** Measured seconds of the timed part. */
  readonly seconds: number;
  /** What the timed part did, e.g. "100 ids x 1000 events". */
  readonly shape: string;
  readonly notes: string[];
}

export interface WorkloadContext {
  readonly system: BenchSystem;
  /** A fresh, empty directory of this run; the runner deletes it afterwards. */
  readonly dir: string;
  readonly scale: number;
}

export interface Workload {
  readonly id: WorkloadId;
  readonly title: string;
  /** Why the workload does not apply to the system at this scale, or undefined when it does. */
  notApplicable(system: BenchSystem, scale: number): string | undefined;
  run(context: WorkloadContext): Promise<WorkloadResult>;
}

/** Concurrent writers of W1 and W6 (the workload table: 100 persistence ids, all concurrently). */
const WRITERS = 100;
/** Ids recovered at once in W4, by peers and by the runtime alike. */
const RECOVERY_CONCURRENCY = 32;
/** Batch size used to build starting data (not measured). */
const SETUP_BATCH = 1000;

function perSecond(count: number, ms: number): number {
  return count / (ms / 1000);
}

/** Opens, runs, and closes even when the work fails. */
async function withStore<T>(
  system: BenchSystem,
  dir: string,
  durable: boolean,
  work: (store: BenchStore) => Promise<T>,
): Promise<T> {
  const store = await system.open(dir, { durable });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

async function verifyCounts(store: BenchStore, ids: readonly string[], expected: number): Promise<void> {
  for (const id of ids) {
    let sum = 0;
    const read = await store.replay(id, 1, (e) => {
      sum += e.amount;
    });
    check(
      read === expected && sum === triangle(expected),
      `${id} read ${read} events (sum ${sum}), expected ${expected}`,
    );
  }
}

const w1: Workload = {
  id: 'W1',
  title: 'durable concurrent append: 100 ids, each appends one event at a time (awaited), all concurrently',
  notApplicable: () => undefined,
  async run({ system, dir, scale }) {
    const perId = scaled(1000, scale, 1);
    const ids = Array.from({ length: WRITERS }, (_, n) => `w1-${n}`);
    const latencies = new LatencyRecorder(WRITERS * perId);
    return withStore(system, dir, true, async (store) => {
      const started = performance.now();
      await Promise.all(
        ids.map(async (id, n) => {
          for (let i = 1; i <= perId; i++) {
            const t = performance.now();
            await store.append(id, depositEvent(i, n));
            latencies.record(performance.now() - t);
          }
        }),
      );
      const ms = performance.now() - started;
      await verifyCounts(store, ids, perId);
      return {
        figures: [{ name: 'events/s', value: perSecond(WRITERS * perId, ms), unit: 'events/s' }],
        p50Ms: latencies.quantile(0.5),
        p99Ms: latencies.quantile(0.99),
        seconds: ms / 1000,
        shape: `${WRITERS} ids x ${perId} events`,
        notes: [],
      };
    });
  },
};

const w2: Workload = {
  id: 'W2',
  title: 'batch append: one id appends events in atomic, durable batches of 100',
  notApplicable: () => undefined,
  async run({ system, dir, scale }) {
    const batches = scaled(1000, scale, 1);
    return withStore(system, dir, true, async (store) => {
      const started = performance.now();
      for (let b = 0; b < batches; b++) {
        await store.appendBatch('w2-0', depositEvents(b * 100 + 1, 100, 0));
      }
      const ms = performance.now() - started;
      await verifyCounts(store, ['w2-0'], batches * 100);
      return {
        figures: [{ name: 'events/s', value: perSecond(batches * 100, ms), unit: 'events/s' }],
        seconds: ms / 1000,
        shape: `${batches} batches x 100 events`,
        notes: [],
      };
    });
  },
};

/** How often the replay callback samples memory (sync replays never yield to the sampler's timer). */
const SAMPLE_EVERY = 4096;

const w3: Workload = {
  id: 'W3',
  title: 'replay: one id holds 1,000,000 events; read and decode all from sequenceNr 1',
  notApplicable: () => undefined,
  async run({ system, dir, scale }) {
    const total = scaled(1_000_000, scale, SETUP_BATCH);
    await withStore(system, dir, false, async (store) => {
      for (let from = 1; from <= total; from += SETUP_BATCH) {
        await store.appendBatch('w3-0', depositEvents(from, Math.min(SETUP_BATCH, total - from + 1), 0));
      }
    });
    return withStore(system, dir, true, async (store) => {
      let sum = 0;
      let seen = 0;
      const sampler = new MemorySampler();
      const started = performance.now();
      let read: number;
      let memory: { heapGrowthMiB: number; rssGrowthMiB: number };
      try {
        read = await store.replay('w3-0', 1, (e: DepositEvent) => {
          sum += e.amount;
          if (++seen % SAMPLE_EVERY === 0) sampler.sample();
        });
      } finally {
        memory = sampler.stop();
      }
      const ms = performance.now() - started;
      check(read === total && sum === triangle(total), `read ${read} events (sum ${sum}), expected ${total}`);
      return {
        figures: [{ name: 'events/s', value: perSecond(total, ms), unit: 'events/s' }],
        heapGrowthMiB: memory.heapGrowthMiB,
        rssGrowthMiB: memory.rssGrowthMiB,
        seconds: ms / 1000,
        shape: `${total} events`,
        notes: [],
      };
    });
  },
};

/** Events per id in W4, and where Cairn's snapshot sits. */
const W4_EVENTS = 20;
const W4_SNAPSHOT_AT = 10;

function w4Ids(scale: number): number {
  return scaled(10_000, scale, 10);
}

/** Streams event-storage is given in W4 at most (the workload table has no W4 figure for it at all). */
const EVENT_STORAGE_MAX_STREAMS = 1000;

type Command = { readonly type: 'deposit'; readonly amount: number } | { readonly type: 'state' };

/** The actor of W4 and W6: a bank account whose deposits are the workload's events. */
function accountBehavior(runtime: RuntimeModule, persistenceId: string, account: number): unknown {
  return runtime.EventSourcedBehavior.create({
    persistenceId,
    emptyState: EMPTY_BALANCE,
    commandHandler: (state: BalanceState, command: Command) =>
      command.type === 'deposit'
        ? runtime.Effect.persist(depositEvent(command.amount, account)).thenReply(
            (next: BalanceState) => next.balance,
          )
        : runtime.Effect.reply(state),
    eventHandler: applyDeposit,
  });
}

const w4: Workload = {
  id: 'W4',
  title: 'recovery of many: ids with 20 events each (Cairn: a snapshot at 10); open and recover every id',
  notApplicable: (system, scale) =>
    system.id === 'event-storage' && w4Ids(scale) > EVENT_STORAGE_MAX_STREAMS
      ? `event-storage keeps two files per stream (a partition and an index, each created, held open and ` +
        `fsynced on close): building ${w4Ids(scale)} streams takes minutes and 10,000 need 20,000 open files; ` +
        `its W4 runs up to ${EVENT_STORAGE_MAX_STREAMS} ids (--scale ${EVENT_STORAGE_MAX_STREAMS / 10_000})`
      : undefined,
  async run({ system, dir, scale }) {
    const count = w4Ids(scale);
    const ids = Array.from({ length: count }, (_, n) => `w4-${n}`);
    const cairn = system.runtime !== undefined;
    let snapshotState: BalanceState = EMPTY_BALANCE;
    for (const e of depositEvents(1, W4_SNAPSHOT_AT, 0)) snapshotState = applyDeposit(snapshotState, e);
    await withStore(system, dir, false, (store) =>
      runConcurrently(count, RECOVERY_CONCURRENCY, async (n) => {
        const id = ids[n] as string;
        await store.appendBatch(id, depositEvents(1, W4_EVENTS, n));
        if (cairn) await store.snapshots?.save(id, W4_SNAPSHOT_AT, snapshotState);
      }),
    );
    const expectedBalance = triangle(W4_EVENTS);
    const notes: string[] = [];
    const shape = `${count} ids x ${W4_EVENTS} events${cairn ? `, snapshot at ${W4_SNAPSHOT_AT}` : ''}`;

    if (system.runtime) {
      let target: RuntimeTarget | undefined;
      const started = performance.now();
      try {
        target = await system.runtime(dir);
      } catch (error) {
        if (!(error instanceof SystemUnavailableError)) throw error;
        notes.push(`through the journal and snapshot API: ${error.message}`);
      }
      if (target) {
        const { system: actors, module } = target;
        try {
          const refs = new Array<{ ask(command: unknown): Promise<unknown> }>(count);
          await runConcurrently(count, RECOVERY_CONCURRENCY, async (n) => {
            refs[n] = await actors.spawn(accountBehavior(module, ids[n] as string, n));
          });
          const ms = performance.now() - started;
          for (let n = 0; n < count; n += Math.max(1, Math.floor(count / 100))) {
            const state = (await refs[n]?.ask({ type: 'state' })) as BalanceState | undefined;
            check(
              state?.balance === expectedBalance && state.events === W4_EVENTS,
              `${ids[n]} recovered ${JSON.stringify(state)}`,
            );
          }
          notes.push('through the actor runtime (ActorSystem.create + spawn)');
          return {
            figures: [{ name: 'ids/s', value: perSecond(count, ms), unit: 'ids/s' }],
            seconds: ms / 1000,
            shape,
            notes,
          };
        } finally {
          await actors.terminate();
        }
      }
    }

    const states = new Array<BalanceState>(count);
    // Timed: open and recovery, as on an application's start; not the close afterwards.
    const started = performance.now();
    const store = await system.open(dir, { durable: true });
    let ms: number;
    try {
      await runConcurrently(count, RECOVERY_CONCURRENCY, async (n) => {
        const id = ids[n] as string;
        const snapshot = cairn ? await store.snapshots?.load(id) : undefined;
        let state = (snapshot?.state as BalanceState | undefined) ?? EMPTY_BALANCE;
        await store.replay(id, (snapshot?.sequenceNr ?? 0) + 1, (e) => {
          state = applyDeposit(state, e);
        });
        states[n] = state;
      });
      ms = performance.now() - started;
    } finally {
      await store.close();
    }
    states.forEach((state, n) => {
      check(
        state.balance === expectedBalance && state.events === W4_EVENTS,
        `${ids[n]} recovered ${JSON.stringify(state)}`,
      );
    });
    return {
      figures: [{ name: 'ids/s', value: perSecond(count, ms), unit: 'ids/s' }],
      seconds: ms / 1000,
      shape,
      notes,
    };
  },
};

const w5: Workload = {
  id: 'W5',
  title: 'snapshots: save then load snapshots of a 10 KB state, durable',
  notApplicable: (system) =>
    system.id === 'event-storage' ? 'event-storage has no snapshot store' : undefined,
  async run({ system, dir, scale }) {
    const count = scaled(1000, scale, 10);
    const states = Array.from({ length: count }, (_, n) => accountSnapshot(n));
    const notes = [`state ${(encodeValue(states[0]).length / 1024).toFixed(1)} KiB as msgpack`];
    const result = await withStore(system, dir, true, async (store) => {
      const snapshots = store.snapshots;
      if (!snapshots) throw new NotApplicableError(`${system.label} has no snapshot store`);
      let started = performance.now();
      for (let n = 0; n < count; n++) {
        await snapshots.save(`w5-${n}`, n + 1, states[n]);
      }
      const saveMs = performance.now() - started;
      started = performance.now();
      for (let n = 0; n < count; n++) {
        const loaded = await snapshots.load(`w5-${n}`);
        const state = loaded?.state as ReturnType<typeof accountSnapshot> | undefined;
        check(
          loaded?.sequenceNr === n + 1 &&
            state?.account === `acct-${n}` &&
            state.history.length === states[n]?.history.length,
          `snapshot w5-${n} did not load back`,
        );
      }
      const loadMs = performance.now() - started;
      return {
        figures: [
          { name: 'saves/s', value: perSecond(count, saveMs), unit: 'saves/s' },
          { name: 'loads/s', value: perSecond(count, loadMs), unit: 'loads/s' },
        ],
        seconds: (saveMs + loadMs) / 1000,
        shape: `${count} snapshots`,
        notes,
      };
    });
    if (system.engine === 'fs') {
      const rate = await fdatasyncRate(dir, Math.min(count, 200));
      notes.push(`this disk: ${Math.round(rate)} fdatasync/s (10 KB write + fdatasync)`);
    }
    return result;
  },
};

const w6: Workload = {
  id: 'W6',
  title: 'end to end: W1 through the actor runtime (ref.ask of a command that persists one event)',
  notApplicable: (system) => (system.runtime ? undefined : 'not a Cairn provider (no actor runtime)'),
  async run({ system, dir, scale }) {
    if (!system.runtime) throw new NotApplicableError('no actor runtime');
    const perId = scaled(1000, scale, 1);
    const latencies = new LatencyRecorder(WRITERS * perId);
    const { system: actors, module } = await system.runtime(dir);
    try {
      const refs = await Promise.all(
        Array.from({ length: WRITERS }, (_, n) => actors.spawn(accountBehavior(module, `w6-${n}`, n))),
      );
      const started = performance.now();
      const balances = await Promise.all(
        refs.map(async (ref) => {
          let balance: unknown;
          for (let i = 1; i <= perId; i++) {
            const t = performance.now();
            balance = await ref.ask({ type: 'deposit', amount: i });
            latencies.record(performance.now() - t);
          }
          return balance;
        }),
      );
      const ms = performance.now() - started;
      balances.forEach((b, n) => {
        check(b === triangle(perId), `w6-${n} ended at balance ${b}, expected ${triangle(perId)}`);
      });
      return {
        figures: [{ name: 'events/s', value: perSecond(WRITERS * perId, ms), unit: 'events/s' }],
        p50Ms: latencies.quantile(0.5),
        p99Ms: latencies.quantile(0.99),
        seconds: ms / 1000,
        shape: `${WRITERS} actors x ${perId} asks`,
        notes: [],
      };
    } finally {
      await actors.terminate();
    }
  },
};

export const WORKLOADS: Readonly<Record<WorkloadId, Workload>> = {
  W1: w1,
  W1T: w1t,
  W2: w2,
  W3: w3,
  W4: w4,
  W4b: w4b,
  W5: w5,
  W6: w6,
  W7: w7,
  W8: w8,
};
