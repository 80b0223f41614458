import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import {
  canDelete,
  canListSnapshotIds,
  loadProvider,
  type MessageJournal,
  type StoreConfig,
  type StoreFiles,
} from '@cairn/actor-core';
import type { OpenedStores } from './open-stores';
import { allPersistenceIds, type Problem, problemOf } from './verify';

/** One row of `cairn ls`. */
export interface IdSummary {
  readonly persistenceId: string;
  readonly highestSequenceNr: number;
  /** The first surviving sequenceNr (the low-water mark); undefined when every event was truncated. */
  readonly firstSequenceNr: number | undefined;
  /** highest - first + 1: contiguous by the journal's contract, which `cairn verify` checks. */
  readonly events: number;
  /**
   * The id's snapshots (one per sequenceNr, corrupt ones included), when the snapshot store can list
   * them (capability `listIds`); undefined without a snapshot store or with one that cannot.
   */
  readonly snapshots: number | undefined;
  /**
   * Deleted (`deletePersistenceId`, `system.deleteEntity`) with nothing appended since: only its deletion
   * marker is left, numbered `highestSequenceNr`.
   */
  readonly deleted?: true;
  /** Why the id could not be summarised (its first event is corrupt, say). */
  readonly problem?: Problem;
}

/** The first and last event of an id, read without walking the events in between. */
export async function idBounds(
  journal: MessageJournal,
  persistenceId: string,
): Promise<{
  highest: number;
  first?: { sequenceNr: number; timestamp: number };
  last?: { sequenceNr: number; timestamp: number };
}> {
  const highest = await journal.highestSequenceNr(persistenceId);
  let first: { sequenceNr: number; timestamp: number } | undefined;
  for await (const e of journal.readFrom(persistenceId, 1, { max: 1 })) first = e;
  let last: { sequenceNr: number; timestamp: number } | undefined;
  if (first && highest > first.sequenceNr) {
    for await (const e of journal.readFrom(persistenceId, highest, { max: 1 })) last = e;
  } else last = first;
  return { highest, ...(first ? { first } : {}), ...(last ? { last } : {}) };
}

/** True when the id's record at `highest` is its deletion marker (on a journal that can delete). */
async function isDeleted(journal: MessageJournal, persistenceId: string, highest: number): Promise<boolean> {
  if (!canDelete(journal)) return false;
  for await (const e of journal.readFrom(persistenceId, highest, { max: 1, deletions: true }))
    return e.deleted === true;
  return false;
}

/** `cairn ls`: every id with its highest and first surviving sequenceNr, event and snapshot count. */
export async function listIds(stores: OpenedStores): Promise<IdSummary[]> {
  const listable =
    stores.snapshots !== undefined && canListSnapshotIds(stores.snapshots) ? stores.snapshots : undefined;
  const rows: IdSummary[] = [];
  for (const id of await allPersistenceIds(stores)) {
    let problem: Problem | undefined;
    const snapshots = listable
      ? await listable.listSnapshots(id).then(
          (listed) => listed.length,
          (e: unknown) => {
            problem = problemOf(e, id);
            return undefined;
          },
        )
      : undefined;
    let bounds = { highestSequenceNr: 0, firstSequenceNr: undefined as number | undefined, events: 0 };
    let deleted = false;
    if (stores.journal) {
      try {
        const { highest, first } = await idBounds(stores.journal, id);
        bounds = {
          highestSequenceNr: highest,
          firstSequenceNr: first?.sequenceNr,
          events: first ? highest - first.sequenceNr + 1 : 0,
        };
        deleted = !first && highest > 0 && (await isDeleted(stores.journal, id, highest));
      } catch (e) {
        bounds.highestSequenceNr = await stores.journal.highestSequenceNr(id).catch(() => 0);
        problem ??= problemOf(e, id);
      }
    }
    rows.push({
      persistenceId: id,
      ...bounds,
      snapshots,
      ...(deleted ? { deleted: true as const } : {}),
      ...(problem ? { problem } : {}),
    });
  }
  return rows;
}

/** Sizes of one data directory, with the kinds of file its provider names (`describeFiles`). */
export interface DirectoryStats {
  readonly path: string;
  readonly backend: string;
  readonly bytes: number;
  readonly files: number;
  /** What the provider says its files are (segments, snapshot files, data.mdb), when it says. */
  readonly kinds: readonly StoreFiles[];
}

/** The output of `cairn stats`. */
export interface StoreStats {
  readonly ids: number;
  readonly events: number;
  readonly oldestTimestamp: number | undefined;
  readonly newestTimestamp: number | undefined;
  /** Sizes of the data directories; undefined for a store kept elsewhere (a database) or not given. */
  readonly journal: DirectoryStats | undefined;
  readonly snapshots: DirectoryStats | undefined;
  /** Where each store keeps its data (see OpenedStores): 'none' when not given. */
  readonly journalStore: string;
  readonly snapshotsStore: string;
  readonly problems: Problem[];
}

async function walk(dir: string, visit: (file: string, size: number) => void): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await walk(full, visit);
    else if (entry.isFile()) visit(full, (await stat(full)).size);
  }
}

export async function directoryStats(
  config: StoreConfig | undefined,
  kind: 'journal' | 'snapshots',
): Promise<DirectoryStats | undefined> {
  if (!config || typeof config.path !== 'string') return undefined;
  let bytes = 0;
  let files = 0;
  await walk(config.path, (_file, size) => {
    bytes += size;
    files++;
  });
  // The layout is the provider's to know: a provider without the hook (or not loadable) adds nothing.
  const provider = await loadProvider(config.provider).catch(() => undefined);
  const kinds = (await provider?.describeFiles?.(config.path, kind)) ?? [];
  return { path: config.path, backend: config.provider, bytes, files, kinds };
}

/**
 * `cairn stats`: ids, events (first surviving to highest, per id), the oldest and newest event
 * timestamps (each id's first and last event), and the sizes of the data directories.
 */
export async function storeStats(stores: OpenedStores): Promise<StoreStats> {
  const problems: Problem[] = [];
  const ids = await allPersistenceIds(stores);
  let events = 0;
  let oldest: number | undefined;
  let newest: number | undefined;
  if (stores.journal) {
    for (const id of ids) {
      try {
        const { highest, first, last } = await idBounds(stores.journal, id);
        if (first) events += highest - first.sequenceNr + 1;
        for (const e of [first, last]) {
          if (!e) continue;
          oldest = oldest === undefined ? e.timestamp : Math.min(oldest, e.timestamp);
          newest = newest === undefined ? e.timestamp : Math.max(newest, e.timestamp);
        }
      } catch (e) {
        problems.push(problemOf(e, id));
      }
    }
  }
  return {
    ids: ids.length,
    events,
    oldestTimestamp: oldest,
    newestTimestamp: newest,
    journal: await directoryStats(stores.journalConfig, 'journal'),
    snapshots: await directoryStats(stores.snapshotsConfig, 'snapshots'),
    journalStore: stores.journalDescription,
    snapshotsStore: stores.snapshotsDescription,
    problems,
  };
}
