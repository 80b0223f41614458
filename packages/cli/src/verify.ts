import {
  canDelete,
  canListSnapshotIds,
  isPersistenceError,
  type MessageJournal,
  type PersistenceReport,
  type SnapshotStore,
} from '@cairn/actor-core';
import { mapConcurrently } from './bounded-concurrency';
import { UsageError } from './exit-codes';
import type { OpenedStores } from './open-stores';
import type { ProgressBar } from './progress-bar';
import { describeRepair, hasRepairHistory } from './repair-history';

/** One thing wrong with the data, located as precisely as the backend can say. */
export interface Problem {
  /**
   * journal-corrupted: a record failed its checks (CRC, decoding, order); sequence-gap / missing-tail: a
   * sequenceNr between the first surviving event and highestSequenceNr cannot be found; corruption-found:
   * the backend found bad bytes on open that no id's read named; snapshot-corrupted: a snapshot failed its
   * checksum or envelope; snapshot-ahead: a snapshot newer than the journal's highest; unrecoverable: no
   * snapshot covers the events truncated away, so the actor cannot recover; read-failed: storage failed.
   */
  readonly kind:
    | 'journal-corrupted'
    | 'sequence-gap'
    | 'missing-tail'
    | 'corruption-found'
    | 'snapshot-corrupted'
    | 'snapshot-ahead'
    | 'unrecoverable'
    | 'read-failed';
  readonly persistenceId?: string;
  readonly sequenceNr?: number;
  readonly file?: string;
  readonly offset?: number;
  readonly key?: string;
  readonly message: string;
}

/** What reading one id's events found. */
export interface JournalIdCheck {
  readonly persistenceId: string;
  readonly highestSequenceNr: number;
  /** The first surviving event (the low-water mark), undefined when none could be read. */
  readonly firstSequenceNr: number | undefined;
  /** The last event read in order. */
  readonly lastSequenceNr: number | undefined;
  readonly events: number;
  readonly oldestTimestamp: number | undefined;
  readonly newestTimestamp: number | undefined;
  /**
   * The sequenceNr of the id's deletion marker (`deletePersistenceId`), on a journal that can delete:
   * everything below it is gone on purpose, and recovery starts afresh after it.
   */
  readonly deletedAt?: number;
  readonly problems: Problem[];
}

/** The outcome of `cairn verify`. */
export interface VerifyResult {
  readonly journal: string;
  readonly snapshots: string;
  readonly ids: number;
  readonly events: number;
  /** Snapshots that loaded and verified. */
  readonly snapshotsVerified: number;
  readonly problems: Problem[];
  /** What the backends reported that is not a problem (a torn tail cut back on open, a stale lock taken). */
  readonly notes: string[];
  /** Repairs the journal remembers (what was cut, when, acknowledged or not): history, not problems. */
  readonly history: string[];
  /** Ids asked for that the stores do not hold (no events, no snapshots): not a clean bill of health. */
  readonly missingIds: string[];
  /** No problem found and every id asked for is there. */
  readonly ok: boolean;
}

function locationOf(e: unknown): Pick<Problem, 'file' | 'offset' | 'key' | 'sequenceNr' | 'persistenceId'> {
  const err = e as Partial<
    Record<'file' | 'key' | 'persistenceId', string> & Record<'offset' | 'sequenceNr', number>
  >;
  const out: Record<string, unknown> = {};
  for (const k of ['persistenceId', 'sequenceNr', 'file', 'offset', 'key'] as const) {
    if (err[k] !== undefined) out[k] = err[k];
  }
  return out;
}

/** A failed read as a Problem: corruption keeps the backend's location, anything else is read-failed. */
export function problemOf(e: unknown, persistenceId: string): Problem {
  const corrupted = isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED');
  return {
    kind: corrupted ? 'journal-corrupted' : 'read-failed',
    persistenceId,
    ...locationOf(e),
    message: (e as Error)?.message ?? String(e),
  };
}

/**
 * Reads every event of one id in order and checks that the sequenceNrs run without gap or repeat from
 * the first surviving one to highestSequenceNr. Reading verifies each record's checksum in the backend,
 * which rejects at the first bad one naming where it is; nothing after it is served, so the check stops
 * there and says which sequenceNrs are unreadable.
 */
export async function checkJournalId(
  journal: MessageJournal,
  persistenceId: string,
): Promise<JournalIdCheck> {
  const problems: Problem[] = [];
  let highestSequenceNr: number;
  try {
    highestSequenceNr = await journal.highestSequenceNr(persistenceId);
  } catch (e) {
    // The id's metadata itself is unreadable (a corrupt LMDB metadata record, say): nothing more to check.
    return {
      persistenceId,
      highestSequenceNr: 0,
      firstSequenceNr: undefined,
      lastSequenceNr: undefined,
      events: 0,
      oldestTimestamp: undefined,
      newestTimestamp: undefined,
      problems: [problemOf(e, persistenceId)],
    };
  }
  let first: number | undefined;
  let last: number | undefined;
  /** The last record read, a deletion marker included: where the next must follow. */
  let previous: number | undefined;
  let deletedAt: number | undefined;
  let events = 0;
  let oldest: number | undefined;
  let newest: number | undefined;
  try {
    const records = canDelete(journal)
      ? journal.readFrom(persistenceId, 1, { deletions: true })
      : journal.readFrom(persistenceId, 1);
    for await (const entry of records) {
      const seq = entry.sequenceNr;
      if (previous !== undefined && seq > previous + 1) {
        problems.push({
          kind: 'sequence-gap',
          persistenceId,
          sequenceNr: previous + 1,
          message: `"${persistenceId}": sequenceNr ${previous + 1}${seq - 1 > previous + 1 ? `..${seq - 1}` : ''} missing (read ${previous}, then ${seq})`,
        });
      }
      previous = seq;
      if (entry.deleted) {
        deletedAt = seq;
        continue;
      }
      first ??= seq;
      last = seq;
      events++;
      oldest = oldest === undefined ? entry.timestamp : Math.min(oldest, entry.timestamp);
      newest = newest === undefined ? entry.timestamp : Math.max(newest, entry.timestamp);
    }
    if (previous !== undefined && previous < highestSequenceNr) {
      problems.push({
        kind: 'missing-tail',
        persistenceId,
        sequenceNr: previous + 1,
        message: `"${persistenceId}": sequenceNr ${previous + 1}..${highestSequenceNr} missing (highestSequenceNr is ${highestSequenceNr}, the last event read is ${previous})`,
      });
    }
    if (previous !== undefined && previous > highestSequenceNr) {
      problems.push({
        kind: 'journal-corrupted',
        persistenceId,
        sequenceNr: previous,
        message: `"${persistenceId}": event ${previous} is above highestSequenceNr ${highestSequenceNr}`,
      });
    }
  } catch (e) {
    const problem = problemOf(e, persistenceId);
    const from = problem.sequenceNr ?? (previous === undefined ? 1 : previous + 1);
    problems.push({
      ...problem,
      message: `${problem.message} (sequenceNr ${from}..${highestSequenceNr} of "${persistenceId}" unreadable)`,
    });
  }
  return {
    persistenceId,
    highestSequenceNr,
    firstSequenceNr: first,
    lastSequenceNr: last,
    events,
    oldestTimestamp: oldest,
    newestTimestamp: newest,
    ...(deletedAt === undefined ? {} : { deletedAt }),
    problems,
  };
}

/** The sequenceNrs of an id's snapshots that load and verify, newest first (loadLatest walking down). */
export async function walkSnapshots(
  snapshots: SnapshotStore,
  persistenceId: string,
  visit?: (entry: { sequenceNr: number; timestamp: number; state: unknown }) => void,
): Promise<number[]> {
  const found: number[] = [];
  let entry = await snapshots.loadLatest(persistenceId);
  while (entry) {
    found.push(entry.sequenceNr);
    visit?.(entry);
    entry =
      entry.sequenceNr > 1
        ? await snapshots.loadLatest(persistenceId, { maxSequenceNr: entry.sequenceNr - 1 })
        : undefined;
  }
  return found;
}

/** Problems without repeats: one corrupt snapshot is reported each time a walk passes it. */
export function uniqueProblems(problems: readonly Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = JSON.stringify([p.kind, p.persistenceId, p.sequenceNr, p.file, p.offset, p.key]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** A backend report as a Problem, when it is one (corruption), or undefined for a note. */
export function reportProblem(report: PersistenceReport): Problem | undefined {
  if (report.kind === 'snapshot-skipped') {
    return {
      kind: 'snapshot-corrupted',
      ...(report.persistenceId === undefined ? {} : { persistenceId: report.persistenceId }),
      ...locationOf(report.error),
      message: report.error?.message ?? report.message,
    };
  }
  if (report.kind === 'corruption-found') {
    return {
      kind: 'corruption-found',
      ...(report.persistenceId === undefined ? {} : { persistenceId: report.persistenceId }),
      message: report.message,
    };
  }
  return undefined;
}

/** All ids to look at: the journal's, and those only the snapshot store has (when it can list them). */
export async function allPersistenceIds(stores: OpenedStores): Promise<string[]> {
  const ids = new Set<string>();
  if (stores.journal) for await (const id of stores.journal.persistenceIds()) ids.add(id);
  const snapshots = stores.snapshots;
  if (snapshots !== undefined && canListSnapshotIds(snapshots)) {
    for await (const id of snapshots.persistenceIds()) ids.add(id);
  } else if (!stores.journal) {
    // Checking nothing and printing OK would be a lie.
    throw new UsageError(
      `the ${stores.snapshotsConfig?.provider ?? 'configured'} snapshot store cannot list its persistenceIds ` +
        '(it does not declare the listIds capability); give the journal too (--journal or --config), ' +
        'whose ids are then checked',
    );
  }
  return [...ids].sort();
}

/** Ids verified at once. */
const VERIFY_CONCURRENCY = 8;

/** verify for one id: its events, its snapshots, and whether it can recover. */
async function verifyId(
  stores: OpenedStores,
  id: string,
): Promise<{ events: number; snapshots: number; problems: Problem[]; known: boolean }> {
  const problems: Problem[] = [];
  let snapshots = 0;
  let check: JournalIdCheck | undefined;
  if (stores.journal) {
    check = await checkJournalId(stores.journal, id);
    problems.push(...check.problems);
  }
  if (stores.snapshots) {
    let walked: number[] = [];
    try {
      walked = await walkSnapshots(stores.snapshots, id);
    } catch (e) {
      problems.push({ ...problemOf(e, id), kind: 'read-failed' });
    }
    snapshots = walked.length;
    const newest = walked[0];
    if (check && newest !== undefined && newest > check.highestSequenceNr) {
      problems.push({
        kind: 'snapshot-ahead',
        persistenceId: id,
        sequenceNr: newest,
        message: `"${id}": snapshot at sequenceNr ${newest} is newer than the journal's highestSequenceNr ${check.highestSequenceNr}`,
      });
    }
    if (check && check.highestSequenceNr > 0) {
      // Events below the first surviving one were truncated: a snapshot at or above first - 1 must cover them.
      const first = check.firstSequenceNr ?? (check.problems.length === 0 ? check.highestSequenceNr + 1 : 1);
      // A deletion marker stands for everything below it: recovery starts afresh after it.
      const covered = Math.max(newest ?? 0, check.deletedAt ?? 0);
      if (first > 1 && covered < first - 1) {
        problems.push({
          kind: 'unrecoverable',
          persistenceId: id,
          sequenceNr: (newest ?? 0) + 1,
          message:
            `"${id}": events 1..${first - 1} were truncated and ` +
            (newest === undefined
              ? 'no snapshot verifies'
              : `the newest snapshot that verifies is at ${newest}`) +
            `; recovery would miss sequenceNr ${(newest ?? 0) + 1}..${first - 1}`,
        });
      }
    }
  }
  const known = (check?.highestSequenceNr ?? 0) > 0 || snapshots > 0 || problems.length > 0;
  return { events: check?.events ?? 0, snapshots, problems, known };
}

/** What `verifyStores` looks at and how it shows progress. */
export interface VerifyOptions {
  /** Only these ids (default: every id the journal and a listable snapshot store have). */
  readonly ids?: readonly string[];
  /** Makes a progress bar for the number of ids; ticked once per id. */
  readonly progress?: (ids: number) => ProgressBar;
}

/**
 * `cairn verify`: every event of every id (checksums verified by the backend as it reads, sequence
 * continuity checked here), every snapshot of every id (loadLatest walking down; corrupt ones come back
 * through the reporter), and whether each id could recover (a snapshot covers what was truncated).
 */
export async function verifyStores(stores: OpenedStores, options: VerifyOptions = {}): Promise<VerifyResult> {
  const problems: Problem[] = [];
  const ids = options.ids ? [...new Set(options.ids)].sort() : await allPersistenceIds(stores);
  const progress = options.progress?.(ids.length);
  let events = 0;
  let snapshotsVerified = 0;
  // A few ids at a time: the backends' IO pools serve reads of different ids in parallel.
  const perId = await mapConcurrently(ids, VERIFY_CONCURRENCY, async (id) => {
    const result = await verifyId(stores, id);
    progress?.tick();
    return result;
  });
  for (const r of perId) {
    events += r.events;
    snapshotsVerified += r.snapshots;
    problems.push(...r.problems);
  }
  progress?.finish();
  const notes: string[] = [];
  const missingIds = ids.filter((_, i) => !perId[i]!.known);
  const corruptIds = new Set(
    problems.filter((p) => p.kind === 'journal-corrupted').map((p) => p.persistenceId),
  );
  const reported: Problem[] = [];
  for (const report of stores.reports) {
    const problem = reportProblem(report);
    if (!problem) notes.push(`${report.kind}: ${report.message}`);
    // An id's read already named this corruption with its sequenceNr; the open-time scan adds nothing.
    else if (problem.kind === 'corruption-found' && corruptIds.has(problem.persistenceId)) continue;
    else reported.push(problem);
  }
  // Ids are checked concurrently, so reports arrive in any order; list them by id, stably.
  reported.sort((a, b) => (a.persistenceId ?? '').localeCompare(b.persistenceId ?? ''));
  problems.push(...uniqueProblems(reported));
  return {
    journal: stores.journalDescription,
    snapshots: stores.snapshotsDescription,
    ids: ids.length,
    events,
    snapshotsVerified,
    problems,
    notes,
    history:
      stores.journal && hasRepairHistory(stores.journal)
        ? stores.journal
            .repairHistory()
            .filter((r) => options.ids === undefined || options.ids.includes(r.id))
            .map(describeRepair)
        : [],
    missingIds,
    ok: problems.length === 0 && missingIds.length === 0,
  };
}

/** One problem on one line, location first, for people. */
export function formatProblem(p: Problem): string {
  const where = [
    p.file !== undefined ? `file ${p.file}` : undefined,
    p.offset !== undefined ? `offset ${p.offset}` : undefined,
    p.key !== undefined ? `key ${p.key}` : undefined,
    p.persistenceId !== undefined ? `id ${JSON.stringify(p.persistenceId)}` : undefined,
    p.sequenceNr !== undefined ? `sequenceNr ${p.sequenceNr}` : undefined,
  ].filter((x) => x !== undefined);
  return `${p.kind}${where.length > 0 ? ` [${where.join(', ')}]` : ''}: ${p.message}`;
}
