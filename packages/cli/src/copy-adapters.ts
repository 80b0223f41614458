import { isDeepStrictEqual } from 'node:util';
import {
  canDelete,
  canFlush,
  canImport,
  canImportSnapshots,
  canListSnapshotIds,
  canQuery,
  type JournalEntry,
  type MessageJournal,
  type ReadOptions,
  type SnapshotCriteria,
  type SnapshotEntry,
  type SnapshotStore,
} from '@cairn/actor-core';
import type { DumpReader, DumpWriter } from './dump-file';
import type { OpenedStores } from './open-stores';

/**
 * The two ends of `cairn copy`: a source (a journal and snapshot store, or a dump) and a target (the
 * same), each behind one small interface, so copying and verifying know nothing of either.
 */

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
  /**
   * True when the id's record at `sequenceNr` (its highest) is a deletion marker: the id was deleted
   * (`deletePersistenceId`). Undefined when the source cannot tell (a dump keeps no markers).
   */
  deletedAt?(persistenceId: string, sequenceNr: number): Promise<boolean>;
  /**
   * Every surviving event of every id in the source's global order (the order its queries, and so its
   * projections, deliver them), up to what was committed when the iteration started. Undefined when the
   * source has no global order (a journal without queries, a dump).
   */
  globalOrder?(): AsyncIterable<JournalEntry>;
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
  /** True when copied events keep their tags (a dump, or a journal with importEntries). */
  readonly keepsTags: boolean;
  /** True when copied snapshots keep their original timestamps (a dump, or a store with importSnapshot). */
  readonly keepsSnapshotTimestamps: boolean;
  readonly hasSnapshots: boolean;
  /**
   * Writes entries of several ids in the order given, in one commit, so that the target's global order
   * has them in that order (a journal with queries and `importInOrder`). Undefined when the target has no
   * global order of its own (a dump keeps each id's events together).
   */
  appendInOrder?(entries: readonly JournalEntry[]): Promise<void>;
  /** The most entries one appendInOrder takes (the journal's maxBatchSize). */
  readonly maxInOrder?: number;
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
  /**
   * Deletes the id on the target as the source's marker at `markerAt` deleted it there: a marker at the
   * same number where the id is new to the target (its highest recorded as `markerAt - 1` first). Undefined
   * when the target cannot record a deletion (a dump, a journal without deletion or import).
   */
  markDeleted?(persistenceId: string, markerAt: number): Promise<void>;
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
    snapshotIds: () =>
      snapshots !== undefined && canListSnapshotIds(snapshots)
        ? snapshots.persistenceIds()
        : (async function* () {})(),
    highestSequenceNr: (id) => (journal ? journal.highestSequenceNr(id) : Promise.resolve(0)),
    readFrom: (id, from, options) =>
      journal ? journal.readFrom(id, from, options) : (async function* () {})(),
    ...(journal
      ? {
          deletedAt: async (id: string, sequenceNr: number) => {
            for await (const e of journal.readFrom(id, sequenceNr, { max: 1, deletions: true })) {
              return e.sequenceNr === sequenceNr && (e as { deleted?: boolean }).deleted === true;
            }
            return false;
          },
        }
      : {}),
    ...(snapshots ? { loadLatest: (id: string, c?: SnapshotCriteria) => snapshots.loadLatest(id, c) } : {}),
    ...(journal && canQuery(journal) ? { globalOrder: () => journal.allEvents({ live: false }) } : {}),
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
  // A journal that declares `import` takes events with their own sequenceNr, timestamp and tags
  // (importEntries) and keeps the numbering of truncated ids (importEntries may start an empty id above 1;
  // importTruncated records the highest of an id whose events are all gone).
  const importer = journal !== undefined && canImport(journal) ? journal : undefined;
  const keepsNumbering = importer !== undefined;
  // A snapshot store that declares `import` takes a snapshot with its own timestamp.
  const snapshotImporter = snapshots !== undefined && canImportSnapshots(snapshots) ? snapshots : undefined;
  return {
    description,
    keepsNumbering,
    keepsTimestamps: importer !== undefined,
    keepsTags: importer !== undefined,
    keepsSnapshotTimestamps: snapshotImporter !== undefined,
    hasSnapshots: snapshots !== undefined,
    ...(importer && canQuery(importer)
      ? {
          appendInOrder: (entries: readonly JournalEntry[]) => importer.importInOrder(entries),
          ...(canFlush(importer) ? { maxInOrder: importer.maxBatchSize } : {}),
        }
      : {}),
    parallelIds: 8,
    highestSequenceNr: (id) => (journal ? journal.highestSequenceNr(id) : Promise.resolve(0)),
    async eventAt(id, sequenceNr) {
      if (journal) for await (const e of journal.readFrom(id, sequenceNr, { max: 1 })) return e;
      return undefined;
    },
    async appendEntries(id, entries, expectedSequenceNr) {
      if (!journal) throw new Error(`${description} has no journal`);
      if (importer) {
        // Checks, like expectedSequenceNr, that the entries continue the target's highest exactly.
        await importer.importEntries(id, entries);
        return;
      }
      // Through the public API: tags go along only when every entry of the chunk has the same ones.
      const tagged = entries.every((e) => sameTags(e.tags, entries[0]!.tags)) ? entries[0]!.tags : undefined;
      const assigned = await journal.appendBatch(
        id,
        entries.map((e) => e.message),
        { expectedSequenceNr, ...(tagged && tagged.length > 0 ? { tags: [...tagged] } : {}) },
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
      if (!importer || (await importer.highestSequenceNr(id)) >= highest) return;
      await importer.importTruncated(id, highest);
    },
    ...(importer && canDelete(importer)
      ? {
          async markDeleted(id: string, markerAt: number) {
            const held = await importer.highestSequenceNr(id);
            // There already (a marker, from an earlier run of this copy), or ahead (the plan said so).
            if (held >= markerAt) return;
            // New to the target: the marker lands at the source's number. An id the target holds older
            // events of gets its marker after them (deletion truncates them all the same).
            if (held === 0 && markerAt > 1) await importer.importTruncated(id, markerAt - 1);
            await importer.deletePersistenceId(id);
          },
        }
      : {}),
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
    keepsTags: true,
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

function sameTags(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return x.length === y.length && x.every((t, i) => t === y[i]);
}

/** The sequenceNrs of an id's snapshots that load, newest first. */
export async function snapshotChain(source: CopySource, id: string): Promise<number[]> {
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
