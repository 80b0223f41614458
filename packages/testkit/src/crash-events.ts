import type { PersistenceConfig } from '@cairn/actor-core';

/** What the crash writer child does; passed as JSON in CAIRN_CRASH_SPEC. */
export interface CrashWriterSpec {
  readonly config: PersistenceConfig;
  /** Ids written concurrently, named `${prefix}-${i}`. */
  readonly ids: number;
  readonly prefix: string;
  readonly seed: number;
  /** Share of writes that are appendBatch calls of 2..8 events (0..1). */
  readonly batchShare: number;
  /** Save a snapshot about every this many events per id (0: never). */
  readonly snapshotEvery: number;
  /** 'journal': append through the journal API; 'actor': ask event-sourced actors (the runtime persists). */
  readonly mode: 'journal' | 'actor';
}

export interface CrashEvent {
  readonly n: number;
  readonly amount: number;
  readonly id: number;
}

/** The event the writer appends as sequenceNr `seq` of an id: verifiable from (id, seq) alone. */
export function crashEvent(idIndex: number, seq: number): CrashEvent {
  return { n: seq, amount: (seq * 7 + idIndex * 13) % 101, id: idIndex };
}

/** The state a snapshot at `seq` must hold: the sum of the amounts of events 1..seq. */
export function crashState(idIndex: number, seq: number): number {
  let sum = 0;
  for (let s = 1; s <= seq; s++) sum += crashEvent(idIndex, s).amount;
  return sum;
}
