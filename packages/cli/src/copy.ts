import { isDeepStrictEqual } from 'node:util';
import {
  AbstractSnapshotStore,
  type JournalEntry,
  type MessageJournal,
  type ReadOptions,
  type SnapshotCriteria,
  type SnapshotEntry,
  type SnapshotStore,
} from '@cairn/actor-core';
import { mapConcurrently } from './bounded-concurrency';
import type { DumpReader, DumpWriter } from './dump-file';
import type { OpenedStores } from './open-stores';
import type { ProgressBar } from './progress-bar';
import { listSnapshotDirectories } from './snapshot-ids';
import { type Problem, problemOf } from './verify';

/** What `cairn copy` reads: a journal and snapshot store, or a dump. */
export interface CopySource {
  readonly description: string;
  persistenceIds(): AsyncIterable<string>;
  /** Ids that have snapshots but maybe no events (when the store can list them). */
  snapshotIds(): AsyncIterable<string>;
  highestSequenceNr(persistenceId: string): Promise<number>;
  readFrom(persistenceId: string, fromSequenceNr: number, options?: ReadOptions): AsyncIterable<JournalEntry>;
  /** Undefined when there is no snapshot store. */
  loadLatest?(persistenceId: string, criteria?: SnapshotCriteria): Promise<SnapshotEntry | undefined>;
}

/** Where `cairn copy` writes. */
export interface CopyTarget {
  readonly description: string;
  /**
   * True when the target stores the sequenceNrs and timestamps it is given (a dump). A journal written
   * through the public API numbers from 1 itself and stamps appends with the time of the copy.
   */
  readonly keepsNumbering: boolean;
  /** True when copied events keep their original timestamps (a dump, or a journal with importEntries). */
  readonly keepsTimestamps: boolean;
  /** True when copied snapshots keep their original timestamps (a dump, or a store with importSnapshot). */
  readonly keepsSnapshotTimestamps: boolean;
  readonly hasSnapshots: boolean;
  /**
   * Ids copied at once. A journal takes several (their appends share group commits, so a durable target
   * syncs far less often); a dump takes one, so each id's lines stay together and in order.
   */
  readonly parallelIds: number;
  highestSequenceNr(persistenceId: string): Promise<number>;
  /** The event at `sequenceNr`, to check that the source continues what the target holds. */
  eventAt(persistenceId: string, sequenceNr: number): Promise<JournalEntry | undefined>;
  appendEntries(
    persistenceId: string,
    entries: readonly JournalEntry[],
    expectedSequenceNr: number,
  ): Promise<void>;
  /** Records a highestSequenceNr above the last event, where the target can (a dump). */
  markHighest(persistenceId: string, highest: number): Promise<void>;
  /** True when the target holds this snapshot already (same state; same timestamp where it keeps them). */
  hasSnapshot(persistenceId: string, sequenceNr: number, state: unknown, timestamp: number): Promise<boolean>;
  saveSnapshot(entry: SnapshotEntry): Promise<void>;
  /** Called after each id: a dump syncs there once a few MiB are unsynced (a journal's appends already are). */
  idDone(persistenceId: string): Promise<void>;
}

export function storesAsSource(stores: OpenedStores, description: string): CopySource {
  const { journal, snapshots } = stores;
  return {
    description,
    persistenceIds: journal ? () => journal.persistenceIds() : async function* () {},
    async *snapshotIds() {
      for (const d of (await listSnapshotDirectories(stores.snapshotsConfig)) ?? []) yield d.persistenceId;
    },
    highestSequenceNr: (id) => (journal ? journal.highestSequenceNr(id) : Promise.resolve(0)),
    readFrom: (id, from, options) =>
      journal ? journal.readFrom(id, from, options) : (async function* () {})(),
    ...(snapshots ? { loadLatest: (id: string, c?: SnapshotCriteria) => snapshots.loadLatest(id, c) } : {}),
  };
}

export function dumpAsSource(dump: DumpReader): CopySource {
  return {
    description: `dump ${dump.file}`,
    persistenceIds: () => dump.persistenceIds(),
    snapshotIds: () => dump.snapshotIds(),
    highestSequenceNr: (id) => dump.highestSequenceNr(id),
    readFrom: (id, from, options) => dump.readFrom(id, from, options),
    loadLatest: (id, criteria) => dump.loadLatest(id, criteria),
  };
}

export function storesAsTarget(
  journal: MessageJournal | undefined,
  snapshots: SnapshotStore | undefined,
  description: string,
): CopyTarget {
  // Cairn's journals take events with their own sequenceNr and timestamp through importEntries, and
  // keep the numbering of truncated ids (importEntries may start an empty id above 1; importTruncated
  // records the highest of an id whose events are all gone).
  const importer = journal as
    | {
        importEntries?: (id: string, entries: readonly JournalEntry[]) => Promise<void>;
        importTruncated?: (id: string, highest: number) => Promise<void>;
      }
    | undefined;
  const canImport = typeof importer?.importEntries === 'function';
  const keepsNumbering = canImport && typeof importer?.importTruncated === 'function';
  // Every store built on the core's snapshot base class takes a snapshot with its own timestamp.
  const snapshotImporter = snapshots instanceof AbstractSnapshotStore ? snapshots : undefined;
  return {
    description,
    keepsNumbering,
    keepsTimestamps: canImport,
    keepsSnapshotTimestamps: snapshotImporter !== undefined,
    hasSnapshots: snapshots !== undefined,
    parallelIds: 8,
    highestSequenceNr: (id) => (journal ? journal.highestSequenceNr(id) : Promise.resolve(0)),
    async eventAt(id, sequenceNr) {
      if (journal) for await (const e of journal.readFrom(id, sequenceNr, { max: 1 })) return e;
      return undefined;
    },
    async appendEntries(id, entries, expectedSequenceNr) {
      if (!journal) throw new Error(`${description} has no journal`);
      if (canImport) {
        // Checks, like expectedSequenceNr, that the entries continue the target's highest exactly.
        await importer!.importEntries!(id, entries);
        return;
      }
      const assigned = await journal.appendBatch(
        id,
        entries.map((e) => e.message),
        { expectedSequenceNr },
      );
      // expectedSequenceNr made the numbering continue the target's; a mismatch here is a backend bug.
      assigned.forEach((seq, i) => {
        if (seq !== entries[i]!.sequenceNr) {
          throw new Error(
            `"${id}": the target assigned sequenceNr ${seq} to source event ${entries[i]!.sequenceNr}`,
          );
        }
      });
    },
    async markHighest(id, highest) {
      if (!keepsNumbering || (await journal!.highestSequenceNr(id)) >= highest) return;
      await importer!.importTruncated!(id, highest);
    },
    async hasSnapshot(id, sequenceNr, state, timestamp) {
      const found = await snapshots?.loadLatest(id, { maxSequenceNr: sequenceNr });
      return (
        found?.sequenceNr === sequenceNr &&
        isDeepStrictEqual(found.state, state) &&
        // One with another timestamp is imported again (it replaces the one at that sequenceNr).
        (snapshotImporter === undefined || found.timestamp === timestamp)
      );
    },
    async saveSnapshot(entry) {
      if (snapshotImporter) await snapshotImporter.importSnapshot(entry);
      else await snapshots?.save(entry.persistenceId, entry.sequenceNr, entry.state);
    },
    idDone: async () => undefined,
  };
}

export function dumpAsTarget(dump: DumpWriter): CopyTarget {
  return {
    description: `dump ${dump.file}`,
    keepsNumbering: true,
    keepsTimestamps: true,
    keepsSnapshotTimestamps: true,
    hasSnapshots: true,
    parallelIds: 1,
    highestSequenceNr: (id) => dump.highestSequenceNr(id),
    async eventAt(id, sequenceNr) {
      const last = await dump.lastEvent(id);
      return last?.sequenceNr === sequenceNr ? last : undefined;
    },
    appendEntries: (id, entries, expected) => dump.appendEntries(id, entries, expected),
    markHighest: (id, highest) => dump.markHighest(id, highest),
    hasSnapshot: (id, seq) => dump.hasSnapshot(id, seq),
    saveSnapshot: (entry) => dump.saveSnapshot(entry),
    idDone: () => dump.sync(),
  };
}

/** How one id fared. */
export interface IdCopy {
  readonly persistenceId: string;
  readonly sourceHighest: number;
  /** Events appended by this run (0 when the target already had them all). */
  readonly eventsCopied: number;
  /** Events the target already had from an earlier, interrupted run. */
  readonly eventsAlreadyThere: number;
  readonly snapshotsCopied: number;
  readonly snapshotsAlreadyThere: number;
  /** Set when the id's events were not (fully) copied: why. */
  readonly notCopied?: string;
}

export interface CopyResult {
  readonly from: string;
  readonly to: string;
  readonly ids: IdCopy[];
  readonly eventsCopied: number;
  readonly snapshotsCopied: number;
  /** Problems met while copying (corrupt source data) and those found verifying the target afterwards. */
  readonly problems: Problem[];
  /** Events and snapshots compared after the copy. */
  readonly verified: { readonly events: number; readonly snapshots: number };
  readonly ok: boolean;
}

export interface CopyOptions {
  /** Events per appendBatch (one atomic write each). Default 500. */
  readonly chunkSize?: number;
  /** Makes a progress bar for the number of ids to copy; ticked once per id. */
  readonly progress?: (ids: number) => ProgressBar;
}

async function firstEvent(source: CopySource, id: string): Promise<JournalEntry | undefined> {
  for await (const e of source.readFrom(id, 1, { max: 1 })) return e;
  return undefined;
}

/** The sequenceNrs of an id's snapshots that load, newest first. */
async function snapshotChain(source: CopySource, id: string): Promise<number[]> {
  const chain: number[] = [];
  if (!source.loadLatest) return chain;
  let entry = await source.loadLatest(id);
  while (entry) {
    chain.push(entry.sequenceNr);
    entry =
      entry.sequenceNr > 1 ? await source.loadLatest(id, { maxSequenceNr: entry.sequenceNr - 1 }) : undefined;
  }
  return chain;
}

/**
 * Why the target's events of an id are not the start of the source's (so resuming would splice two
 * histories), or undefined when they are: the target's last event must equal the source's at that number.
 */
async function divergence(
  source: CopySource,
  target: CopyTarget,
  id: string,
  already: number,
  first: JournalEntry,
): Promise<string | undefined> {
  if (already === 0 || already < first.sequenceNr) return undefined;
  const theirs = await target.eventAt(id, already);
  let ours: JournalEntry | undefined;
  for await (const e of source.readFrom(id, already, { max: 1 })) ours = e;
  if (
    theirs &&
    ours &&
    theirs.sequenceNr === ours.sequenceNr &&
    isDeepStrictEqual(theirs.message, ours.message)
  ) {
    return undefined;
  }
  return `the target's event ${already} differs from the source's: it holds another history of this id, nothing appended`;
}

/** Every id of the source, journal and snapshot-only ones, sorted. */
export async function sourceIds(source: CopySource): Promise<string[]> {
  const ids = new Set<string>();
  for await (const id of source.persistenceIds()) ids.add(id);
  for await (const id of source.snapshotIds()) ids.add(id);
  return [...ids].sort();
}

/** Copies one id (see copyData); its outcome and the problems met. */
async function copyId(
  source: CopySource,
  target: CopyTarget,
  id: string,
  chunkSize: number,
): Promise<{ result: IdCopy; problems: Problem[] }> {
  const problems: Problem[] = [];
  const sourceHighest = await source.highestSequenceNr(id);
  let already = await target.highestSequenceNr(id);
  const startedAt = already;
  let copied = 0;
  let notCopied: string | undefined;
  let first: JournalEntry | undefined;
  try {
    first = await firstEvent(source, id);
  } catch (e) {
    problems.push(problemOf(e, id));
    notCopied = `its first event cannot be read: ${(e as Error).message}`;
  }
  let diverged: string | undefined;
  if (notCopied === undefined && first !== undefined && already <= sourceHighest) {
    try {
      diverged = await divergence(source, target, id, already, first);
    } catch (e) {
      problems.push(problemOf(e, id));
      diverged = `the target's event ${already} cannot be compared with the source's: ${(e as Error).message}`;
    }
  }
  if (notCopied === undefined) {
    if (already > sourceHighest) {
      notCopied = `the target is ahead (highestSequenceNr ${already} there, ${sourceHighest} in the source)`;
    } else if (sourceHighest > 0 && first === undefined) {
      if (target.keepsNumbering) await target.markHighest(id, sourceHighest);
      else
        notCopied = `every event was truncated (highestSequenceNr ${sourceHighest}); the journal API cannot record a highestSequenceNr without events`;
    } else if (first !== undefined && first.sequenceNr > 1 && !target.keepsNumbering) {
      notCopied =
        `its first surviving event is ${first.sequenceNr} (events below were truncated); appended through the journal API ` +
        `they would be numbered from 1, so it is not copied (a dump keeps the numbering)`;
    } else if (diverged !== undefined) {
      notCopied = diverged;
    } else if (first !== undefined) {
      try {
        let chunk: JournalEntry[] = [];
        const flush = async () => {
          if (chunk.length === 0) return;
          await target.appendEntries(id, chunk, already);
          already = chunk[chunk.length - 1]!.sequenceNr;
          copied += chunk.length;
          chunk = [];
        };
        // Read errors (corrupt source records) are held until the good events before them are written.
        let readError: unknown;
        const events = source
          .readFrom(id, Math.max(first.sequenceNr, already + 1), { toSequenceNr: sourceHighest })
          [Symbol.asyncIterator]();
        try {
          for (;;) {
            let next: IteratorResult<JournalEntry>;
            try {
              next = await events.next();
            } catch (e) {
              readError = e;
              break;
            }
            if (next.done) break;
            chunk.push(next.value);
            if (chunk.length >= chunkSize) await flush();
          }
        } finally {
          await events.return?.();
        }
        await flush();
        if (readError !== undefined) throw readError;
        if (target.keepsNumbering) await target.markHighest(id, sourceHighest);
      } catch (e) {
        problems.push(problemOf(e, id));
        notCopied = `copying stopped after sequenceNr ${already}: ${(e as Error).message}`;
      }
    }
  }
  let snapshotsDone = 0;
  let snapshotsThere = 0;
  // Snapshots only where the events are complete: a snapshot ahead of its journal would make the
  // target recover to a state its events do not reach.
  if (notCopied === undefined && target.hasSnapshots && source.loadLatest) {
    try {
      for (const seq of (await snapshotChain(source, id)).reverse()) {
        const entry = await source.loadLatest(id, { maxSequenceNr: seq });
        if (!entry) continue;
        if (await target.hasSnapshot(id, seq, entry.state, entry.timestamp)) {
          snapshotsThere++;
          continue;
        }
        await target.saveSnapshot(entry);
        snapshotsDone++;
      }
    } catch (e) {
      problems.push(problemOf(e, id));
      notCopied = `snapshots not copied: ${(e as Error).message}`;
    }
  }
  await target.idDone(id);
  return {
    problems,
    result: {
      persistenceId: id,
      sourceHighest,
      eventsCopied: copied,
      eventsAlreadyThere: Math.max(0, startedAt - Math.max(0, (first?.sequenceNr ?? 1) - 1)),
      snapshotsCopied: snapshotsDone,
      snapshotsAlreadyThere: snapshotsThere,
      ...(notCopied === undefined ? {} : { notCopied }),
    },
  };
}

/**
 * Copies every id's events (appendBatch in chunks with expectedSequenceNr, so the numbering matches and
 * a concurrent writer is refused) and its snapshots that verify (oldest first, so the newest lands last).
 *
 * Resumable: each id continues from the target's highestSequenceNr, and snapshots the target already has
 * are skipped, so running it again after an interruption finishes the job and never writes twice.
 * Truncated ids keep their numbering in a dump and in Cairn's journals (importEntries, importTruncated);
 * a journal written through the public API alone cannot keep it for an id whose first surviving event is
 * above 1, nor for one whose events were all truncated: those are reported as not copied, with the reason. Corrupt source data stops that id at the bad record (what
 * came before is copied) and is reported as a problem.
 */
export async function copyData(
  source: CopySource,
  target: CopyTarget,
  options: CopyOptions = {},
): Promise<Omit<CopyResult, 'verified' | 'ok'>> {
  const chunkSize = options.chunkSize ?? 500;
  const ids = await sourceIds(source);
  const progress = options.progress?.(ids.length);
  const outcomes = await mapConcurrently(ids, target.parallelIds, async (id) => {
    const outcome = await copyId(source, target, id, chunkSize);
    progress?.tick();
    return outcome;
  });
  progress?.finish();
  const results = outcomes.map((o) => o.result);
  return {
    from: source.description,
    to: target.description,
    ids: results,
    eventsCopied: results.reduce((n, r) => n + r.eventsCopied, 0),
    snapshotsCopied: results.reduce((n, r) => n + r.snapshotsCopied, 0),
    problems: outcomes.flatMap((o) => o.problems),
  };
}

/**
 * Reads source and target side by side and compares them: for every copied id the same highest
 * sequenceNr, the same events (sequenceNr and message, deep-equal after decoding; timestamps too when the
 * target keeps them) and every source snapshot present with an equal state (and timestamp, when
 * `keepsSnapshotTimestamps`).
 */
export async function verifyCopy(
  source: CopySource,
  copy: CopySource,
  copied: readonly IdCopy[],
  keepsTimestamps: boolean,
  keepsSnapshotTimestamps = false,
): Promise<{ problems: Problem[]; events: number; snapshots: number }> {
  const checked = await mapConcurrently(
    copied.filter((c) => c.notCopied === undefined),
    VERIFY_COPY_CONCURRENCY,
    ({ persistenceId }) => compareId(source, copy, persistenceId, keepsTimestamps, keepsSnapshotTimestamps),
  );
  return {
    problems: checked.flatMap((c) => c.problems),
    events: checked.reduce((n, c) => n + c.events, 0),
    snapshots: checked.reduce((n, c) => n + c.snapshots, 0),
  };
}

/** Ids compared at once after a copy. */
const VERIFY_COPY_CONCURRENCY = 8;

/** verifyCopy for one id. */
async function compareId(
  source: CopySource,
  copy: CopySource,
  id: string,
  keepsTimestamps: boolean,
  keepsSnapshotTimestamps: boolean,
): Promise<{ problems: Problem[]; events: number; snapshots: number }> {
  const problems: Problem[] = [];
  let events = 0;
  let snapshots = 0;
  const mismatch = (persistenceId: string, sequenceNr: number | undefined, message: string) =>
    problems.push({
      kind: 'read-failed',
      persistenceId,
      ...(sequenceNr === undefined ? {} : { sequenceNr }),
      message: `copy differs: ${message}`,
    });
  try {
    const [sh, th] = [await source.highestSequenceNr(id), await copy.highestSequenceNr(id)];
    if (sh !== th)
      mismatch(id, undefined, `"${id}" highestSequenceNr ${sh} in the source, ${th} in the copy`);
    const a = source.readFrom(id, 1)[Symbol.asyncIterator]();
    const b = copy.readFrom(id, 1)[Symbol.asyncIterator]();
    try {
      while (true) {
        const [x, y] = [await a.next(), await b.next()];
        if (x.done && y.done) break;
        if (x.done || y.done) {
          const extra = (x.done ? y.value : x.value) as JournalEntry;
          mismatch(
            id,
            extra.sequenceNr,
            `"${id}" event ${extra.sequenceNr} is only in the ${x.done ? 'copy' : 'source'}`,
          );
          break;
        }
        if (x.value.sequenceNr !== y.value.sequenceNr) {
          mismatch(
            id,
            x.value.sequenceNr,
            `"${id}" source event ${x.value.sequenceNr} faces copy event ${y.value.sequenceNr}`,
          );
          break;
        }
        if (!isDeepStrictEqual(x.value.message, y.value.message)) {
          mismatch(
            id,
            x.value.sequenceNr,
            `"${id}" event ${x.value.sequenceNr} has another message in the copy`,
          );
        } else if (keepsTimestamps && x.value.timestamp !== y.value.timestamp) {
          mismatch(
            id,
            x.value.sequenceNr,
            `"${id}" event ${x.value.sequenceNr} has timestamp ${y.value.timestamp} in the copy, ${x.value.timestamp} in the source`,
          );
        }
        events++;
      }
    } finally {
      await a.return?.();
      await b.return?.();
    }
    if (source.loadLatest && copy.loadLatest) {
      for (const seq of await snapshotChain(source, id)) {
        const [s, c] = [
          await source.loadLatest(id, { maxSequenceNr: seq }),
          await copy.loadLatest(id, { maxSequenceNr: seq }),
        ];
        if (c?.sequenceNr !== seq) mismatch(id, seq, `"${id}" snapshot ${seq} is missing in the copy`);
        else if (!isDeepStrictEqual(s?.state, c.state))
          mismatch(id, seq, `"${id}" snapshot ${seq} has another state in the copy`);
        else if (keepsSnapshotTimestamps && s?.timestamp !== c.timestamp)
          mismatch(
            id,
            seq,
            `"${id}" snapshot ${seq} has timestamp ${c.timestamp} in the copy, ${s?.timestamp} in the source`,
          );
        else snapshots++;
      }
    }
  } catch (e) {
    problems.push(problemOf(e, id));
  }
  return { problems, events, snapshots };
}
