import { isPersistenceError, RecoveryFailedError } from '../errors';
import {
  canDelete,
  type DeletionMarker,
  type JournalEntry,
  type MessageJournal,
  type SnapshotCriteria,
  type SnapshotEntry,
  type SnapshotStore,
} from '../spi';
import type { EventSourcedBehavior, Signal } from './behavior';

/** What recovery rebuilt. */
export interface RecoveredState<S> {
  readonly state: S;
  /** The highest sequenceNr of the id: every event up to it is folded into `state`. */
  readonly sequenceNr: number;
  readonly replayed: number;
  /** The sequenceNr of the snapshot used, if any. */
  readonly fromSnapshot: number | undefined;
  /** Snapshot sequenceNrs known to exist (the one used), for safe journal truncation later. */
  readonly snapshotSequenceNrs: readonly number[];
}

/**
 * Rebuilds an actor's state: the newest snapshot that verifies and whose state can be used (falling
 * back to older ones), then every event after it, streamed. Every sequenceNr from the snapshot's + 1 up to
 * the journal's highest must be replayed; a missing one fails with RecoveryFailedError naming it.
 */
export async function recover<C, E, S, R>(
  behavior: EventSourcedBehavior<C, E, S, R>,
  journal: MessageJournal<unknown>,
  snapshots: SnapshotStore<unknown>,
  signal: (state: S, s: Signal<E, S>) => void,
): Promise<RecoveredState<S>> {
  const id = behavior.persistenceId;
  const fail = (message: string, sequenceNr?: number, cause?: unknown): RecoveryFailedError =>
    new RecoveryFailedError(id, message, { sequenceNr, cause });

  const options = behavior.recovery;
  const start =
    options?.snapshot === 'none'
      ? undefined
      : await loadUsableSnapshot(behavior, snapshots, signal, fail, options?.toSequenceNr);
  let state = start?.state ?? behavior.emptyState;
  const fromSnapshot = start?.sequenceNr;
  const snapshotSeq = fromSnapshot ?? 0;

  let highest: number;
  try {
    highest = await journal.highestSequenceNr(id);
  } catch (e) {
    throw fail(`reading the journal's highest sequenceNr failed: ${message(e)}`, undefined, e);
  }
  if (snapshotSeq > highest) {
    throw fail(
      `the snapshot at sequenceNr ${snapshotSeq} is ahead of the journal, whose highest is ${highest}: ` +
        `events ${highest + 1}..${snapshotSeq} are missing from the journal (a different or rolled-back journal?)`,
      highest + 1,
    );
  }

  // What to replay up to: the highest, unless the recovery options stop earlier.
  const target = Math.min(
    highest,
    options?.toSequenceNr ?? highest,
    options?.replayMax === undefined ? highest : snapshotSeq + options.replayMax,
  );
  let expected = snapshotSeq + 1;
  if (expected <= target) {
    const fromJournal = behavior.eventAdapter?.fromJournal?.bind(behavior.eventAdapter);
    try {
      // With deletions, the id's deletion marker comes too: everything before it is gone, and the entity
      // starts afresh after it (also over a snapshot taken before the deletion).
      const entries: AsyncIterable<JournalEntry<unknown> | DeletionMarker> = canDelete(journal)
        ? journal.readFrom(id, expected, { toSequenceNr: target, deletions: true })
        : journal.readFrom(id, expected, { toSequenceNr: target });
      for await (const entry of entries) {
        if (entry.deleted) {
          state = behavior.emptyState;
          expected = entry.sequenceNr + 1;
          continue;
        }
        if (entry.sequenceNr !== expected) {
          throw fail(
            `sequenceNr ${expected} is missing from the journal (next found: ${entry.sequenceNr}); ` +
              `replaying past it would build a wrong state${start ? ` from the snapshot at ${snapshotSeq}` : ''}`,
            expected,
          );
        }
        try {
          const adapted = fromJournal ? fromJournal(entry.message, entry.sequenceNr) : (entry.message as E);
          // An adapter's array is zero or more events (a split or dropped schema); a stored array without
          // an adapter is one event.
          if (fromJournal && Array.isArray(adapted)) {
            for (const event of adapted as readonly E[]) state = behavior.eventHandler(state, event);
          } else {
            state = behavior.eventHandler(state, adapted as E);
          }
        } catch (e) {
          throw fail(`applying event ${entry.sequenceNr} failed: ${message(e)}`, entry.sequenceNr, e);
        }
        expected++;
      }
    } catch (e) {
      if (isPersistenceError(e, 'ERR_RECOVERY_FAILED')) throw e;
      const at = isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED')
        ? ((e as { sequenceNr?: number }).sequenceNr ?? expected)
        : expected;
      throw fail(`reading the journal at sequenceNr ${at} failed: ${message(e)}`, at, e);
    }
    if (expected <= target) {
      throw fail(
        `sequenceNr ${expected} is missing from the journal: it ends there but its highest is ${highest}`,
        expected,
      );
    }
  }
  return {
    state,
    sequenceNr: Math.max(target, snapshotSeq),
    replayed: Math.max(0, target - snapshotSeq),
    fromSnapshot,
    snapshotSequenceNrs: fromSnapshot === undefined ? [] : [fromSnapshot],
  };
}

async function loadUsableSnapshot<C, E, S, R>(
  behavior: EventSourcedBehavior<C, E, S, R>,
  snapshots: SnapshotStore<unknown>,
  signal: (state: S, s: Signal<E, S>) => void,
  fail: (message: string, sequenceNr?: number, cause?: unknown) => RecoveryFailedError,
  toSequenceNr: number | undefined,
): Promise<{ state: S; sequenceNr: number } | undefined> {
  const id = behavior.persistenceId;
  const fromSnapshot = behavior.snapshotAdapter?.fromSnapshot?.bind(behavior.snapshotAdapter);
  let criteria: SnapshotCriteria | undefined =
    toSequenceNr === undefined ? undefined : { maxSequenceNr: toSequenceNr };
  for (;;) {
    let entry: SnapshotEntry<unknown> | undefined;
    try {
      entry = await snapshots.loadLatest(id, criteria);
    } catch (e) {
      // The store skips corrupt snapshots itself; one that throws a corruption error instead is passed
      // over here, so the outcome does not depend on which store is configured.
      const corrupted = isPersistenceError(e, 'ERR_SNAPSHOT_CORRUPTED');
      const corruptSeq = corrupted ? (e as { sequenceNr?: number }).sequenceNr : undefined;
      if (corrupted && corruptSeq === undefined) {
        // Damage that names no snapshot (the store could not even list the id's snapshots, as a damaged
        // LMDB page can do): recover from the events alone, which fails if they were truncated.
        signal(behavior.emptyState, { type: 'snapshotSkipped', sequenceNr: 0, error: e });
        return undefined;
      }
      if (corruptSeq === undefined)
        throw fail(`loading the latest snapshot failed: ${message(e)}`, undefined, e);
      signal(behavior.emptyState, { type: 'snapshotSkipped', sequenceNr: corruptSeq, error: e });
      if (corruptSeq <= 1) return undefined;
      criteria = { maxSequenceNr: corruptSeq - 1 };
      continue;
    }
    if (!entry) return undefined;
    try {
      const state = fromSnapshot ? fromSnapshot(entry.state, entry.sequenceNr) : (entry.state as S);
      return { state, sequenceNr: entry.sequenceNr };
    } catch (e) {
      signal(behavior.emptyState, { type: 'snapshotSkipped', sequenceNr: entry.sequenceNr, error: e });
      if (entry.sequenceNr <= 1) return undefined;
      criteria = { maxSequenceNr: entry.sequenceNr - 1 };
    }
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
