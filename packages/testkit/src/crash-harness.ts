import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  ActorSystem,
  createPersistence,
  isPersistenceError,
  type Persistence,
  type PersistenceConfig,
  type PersistenceReport,
} from '@cairn/actor-core';
import { type CrashAccountState, crashAccount } from './crash-account';
import { type CrashWriterSpec, crashEvent, crashState } from './crash-events';

/** What the killed writer had acknowledged: per id index, the highest acknowledged sequenceNr and snapshot. */
export interface Acknowledged {
  readonly events: Map<number, number>;
  readonly snapshots: Map<number, number>;
}

export interface CrashRoundOptions {
  /** The configuration the writer and the checker open (absolute paths). */
  readonly config: PersistenceConfig;
  readonly seed: number;
  /** Ids the writer appends to concurrently. Default 8. */
  readonly ids?: number;
  /** Id prefix; keep it the same across rounds on one data directory. Default "crash". */
  readonly prefix?: string;
  /** The writer is killed this many ms after its first acknowledged write: [min, max], picked from the seed. Default [50, 400]. */
  readonly killAfterMs?: readonly [number, number];
  /** Share of appendBatch calls. Default 0.3. */
  readonly batchShare?: number;
  /** Snapshot about every n events per id (0: none). Default 25. */
  readonly snapshotEvery?: number;
  /** 'journal' (default): the writer appends through the journal; 'actor': it asks event-sourced actors. */
  readonly mode?: 'journal' | 'actor';
}

export interface CrashRoundResult {
  readonly acknowledged: Acknowledged;
  readonly killedAfterMs: number;
  /** How the writer ended: 'SIGKILL' normally; anything else is a writer failure (see stderr). */
  readonly signal: string | null;
  readonly stderr: string;
}

/** The built writer program; the harness runs JavaScript, never TypeScript, in its children. */
export const CRASH_WRITER_FILE = path.join(__dirname, '..', 'dist', 'crash-writer.js');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the crash writer in a child process against `config`, SIGKILLs it at a moment picked from the
 * seed, and returns what it had acknowledged. Nothing is checked here: pass the result to
 * `verifyAcknowledged` (after the round, on the same directory).
 */
export async function runCrashRound(options: CrashRoundOptions): Promise<CrashRoundResult> {
  if (!existsSync(CRASH_WRITER_FILE)) {
    throw new Error(`${CRASH_WRITER_FILE} is missing: run \`npm run build\` first (npm test does)`);
  }
  const [min, max] = options.killAfterMs ?? [50, 400];
  const killAfterMs = min + (Math.abs(Math.imul(options.seed, 2654435761)) % Math.max(1, max - min + 1));
  const spec: CrashWriterSpec = {
    config: options.config,
    ids: options.ids ?? 8,
    prefix: options.prefix ?? 'crash',
    seed: options.seed,
    batchShare: options.batchShare ?? 0.3,
    snapshotEvery: options.snapshotEvery ?? 25,
    mode: options.mode ?? 'journal',
  };
  const child = spawn(process.execPath, [CRASH_WRITER_FILE], {
    env: { ...process.env, CAIRN_CRASH_SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const acknowledged: Acknowledged = { events: new Map(), snapshots: new Map() };
  let stderr = '';
  let buffered = '';
  let ready: () => void = () => undefined;
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  let acked: () => void = () => undefined;
  const firstAck = new Promise<void>((resolve) => {
    acked = resolve;
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [kind, a, , c] = line.split(' ');
      if (kind === 'ready') ready();
      else if (kind === 'ack') {
        acknowledged.events.set(Number(a), Number(c));
        acked();
      } else if (kind === 'snap') acknowledged.snapshots.set(Number(a), Number(line.split(' ')[2]));
    }
  });
  const exited = new Promise<string | null>((resolve) =>
    child.on('exit', (_code, signal) => resolve(signal)),
  );
  await Promise.race([isReady, exited]);
  // The kill delay counts from the first acknowledged write: on a loaded machine the first commit alone
  // may take longer than the delay, and a round that acknowledged nothing proves nothing.
  await Promise.race([firstAck, exited]);
  await Promise.race([sleep(killAfterMs), exited]);
  kill(child);
  const signal = await exited;
  return { acknowledged, killedAfterMs: killAfterMs, signal, stderr };
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export interface VerifyOptions {
  readonly prefix?: string;
  /** true when every acknowledged write must have survived (fsync on, durable defaults). Default true. */
  readonly durable?: boolean;
  /** Collects what the providers report (torn tails repaired, snapshots skipped). */
  readonly reports?: PersistenceReport[];
  /** How the data was written; 'actor' also checks that the runtime recovers exactly the fold of the events. */
  readonly mode?: 'journal' | 'actor';
}

export interface VerifyResult {
  /** Invariant violations: acknowledged events missing (when durable), gaps, duplicates, wrong content. */
  readonly problems: string[];
  /** Acknowledged events not found (allowed only when not durable, and only at an id's tail). */
  readonly lost: number;
  /** Events read and checked. */
  readonly checked: number;
  /** Reads or opens that failed with a corruption error (counted, not a violation by themselves). */
  readonly corruptionDetected: string[];
}

/**
 * Opens `config` and checks the crash invariants against what was acknowledged: every acknowledged event
 * present (when durable); sequence numbers contiguous from 1 with no duplicates; every event's content the
 * one written at its sequenceNr (nothing wrong is ever served); highestSequenceNr equal to the last event;
 * the newest snapshot verifies and holds exactly the fold of events up to its sequenceNr. A read that
 * rejects with a corruption error is recorded in `corruptionDetected` (detected, not served).
 */
export async function verifyAcknowledged(
  config: PersistenceConfig,
  acknowledged: Acknowledged,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  const prefix = options.prefix ?? 'crash';
  const durable = options.durable ?? true;
  const reporter = (report: PersistenceReport) => options.reports?.push(report);
  const problems: string[] = [];
  const corruptionDetected: string[] = [];
  let lost = 0;
  let checked = 0;
  let persistence: Persistence;
  let actors: ActorSystem | undefined;
  const system = async (): Promise<ActorSystem> => {
    actors ??= await ActorSystem.create({ persistence, reporter });
    return actors;
  };
  try {
    persistence = await createPersistence({
      journal: { ...config.journal, reporter },
      snapshots: { ...config.snapshots, reporter },
    });
  } catch (e) {
    // A damaged format marker (cairn-store.json) makes the store refuse to open with StoreMismatchError
    // naming it: detected, nothing served or written.
    if (
      isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED') ||
      isPersistenceError(e, 'ERR_SNAPSHOT_CORRUPTED') ||
      isPersistenceError(e, 'ERR_STORE_MISMATCH')
    ) {
      return { problems, lost, checked, corruptionDetected: [`open: ${(e as Error).message}`] };
    }
    throw e;
  }
  try {
    for (const [i, ackedHighest] of acknowledged.events) {
      const id = `${prefix}-${i}`;
      // Typed damage named by the stores (a corrupt record, an id's damaged metadata, a snapshot listing
      // an LMDB page broke) or recovery refusing the data: detected for this id, never served.
      try {
        let expected = 1;
        for await (const entry of persistence.journal.readFrom(id, 1)) {
          const want = crashEvent(i, entry.sequenceNr);
          if (entry.sequenceNr !== expected) {
            problems.push(
              `${id}: expected sequenceNr ${expected}, read ${entry.sequenceNr} (gap or duplicate)`,
            );
            break;
          }
          const got = entry.message as ReturnType<typeof crashEvent>;
          if (got?.n !== want.n || got.amount !== want.amount || got.id !== want.id) {
            problems.push(
              `${id}#${entry.sequenceNr}: served ${JSON.stringify(got)}, written ${JSON.stringify(want)}`,
            );
            break;
          }
          expected += 1;
          checked += 1;
        }
        const last = expected - 1;
        if (last < ackedHighest) {
          lost += ackedHighest - last;
          if (durable) problems.push(`${id}: acknowledged up to ${ackedHighest}, journal ends at ${last}`);
        }
        const highest = await persistence.journal.highestSequenceNr(id);
        if (highest !== last) problems.push(`${id}: highestSequenceNr ${highest}, last event ${last}`);

        const ackedSnapshot = acknowledged.snapshots.get(i);
        const snapshot = await persistence.snapshots.loadLatest(id);
        if (snapshot) {
          const wanted =
            options.mode === 'actor'
              ? { seq: snapshot.sequenceNr, sum: crashState(i, snapshot.sequenceNr) }
              : crashState(i, snapshot.sequenceNr);
          if (!isDeepStrictEqual(snapshot.state, wanted)) {
            problems.push(
              `${id}: snapshot at ${snapshot.sequenceNr} holds ${String(snapshot.state)}, not the fold`,
            );
          }
          if (snapshot.sequenceNr > last) {
            const ahead = `${id}: snapshot at ${snapshot.sequenceNr} is ahead of the journal (${last})`;
            // Where losing acknowledged events is allowed (a deliberately damaged copy whose journal tail was
            // cut, or fsync off), an intact snapshot past the journal's new end is their consequence, and
            // recovery refuses it (RecoveryFailedError, as actor mode checks): detected, not served.
            if (!durable && last < ackedHighest) corruptionDetected.push(ahead);
            else problems.push(ahead);
          }
        }
        const skipped = options.reports?.some((r) => r.kind === 'snapshot-skipped' && r.persistenceId === id);
        if (
          durable &&
          ackedSnapshot !== undefined &&
          (snapshot?.sequenceNr ?? 0) < ackedSnapshot &&
          !skipped
        ) {
          problems.push(
            `${id}: snapshot at ${ackedSnapshot} was acknowledged, newest loadable is ${snapshot?.sequenceNr}`,
          );
        }
        // Refusing to recover (data damaged after the journal was cut back) is detection, not a wrong state.
        if (options.mode === 'actor') problems.push(...(await checkRecovery(system(), prefix, i, last)));
      } catch (e) {
        if (!DETECTED.some((code) => isPersistenceError(e, code))) throw e;
        corruptionDetected.push(`${id}: ${(e as Error).message}`);
      }
    }
  } finally {
    await actors?.terminate();
    await persistence.close();
  }
  return { problems, lost, checked, corruptionDetected };
}

/** What a check of one id counts as detected damage when it is thrown. */
const DETECTED = ['ERR_JOURNAL_CORRUPTED', 'ERR_SNAPSHOT_CORRUPTED', 'ERR_RECOVERY_FAILED'] as const;

/** Spawns the crash account on the data and checks it recovers exactly the fold of events 1..last. */
async function checkRecovery(
  system: Promise<ActorSystem>,
  prefix: string,
  i: number,
  last: number,
): Promise<string[]> {
  let recovered: CrashAccountState | undefined;
  const ref = await (await system).spawn(
    crashAccount(prefix, i, { onRecovered: (state) => (recovered = state) }),
  );
  await ref.stop();
  const wanted = { seq: last, sum: crashState(i, last) };
  return isDeepStrictEqual(recovered, wanted)
    ? []
    : [
        `${prefix}-${i}: the runtime recovered ${JSON.stringify(recovered)}, the journal's fold is ${JSON.stringify(wanted)}`,
      ];
}
