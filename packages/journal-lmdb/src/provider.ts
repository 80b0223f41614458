import { access, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { checkOptionTypes, type PersistenceProvider, storeBackendOf } from '@cairn/actor-core';
import { LmdbMessageJournal, type LmdbMessageJournalOptions } from './lmdb-message-journal';
import { LMDB_JOURNAL_OPTION_TYPES, LMDB_SNAPSHOT_OPTION_TYPES } from './lmdb-options';
import { LmdbSnapshotStore, type LmdbSnapshotStoreOptions } from './lmdb-snapshot-store';

/**
 * The "lmdb" provider: `{ provider: 'lmdb', path }` in a Cairn config opens an LmdbMessageJournal or an
 * LmdbSnapshotStore on `path` (a journal and a snapshot store on one path share one environment), and
 * keeps projection offsets in the journal's environment (`createPersistence(...).offsets`, an
 * LmdbOffsetStore).
 */
export const provider: PersistenceProvider = {
  name: 'lmdb',
  requiresPath: true,
  createJournal: (options) => LmdbMessageJournal.open(options as unknown as LmdbMessageJournalOptions),
  createSnapshotStore: (options) => LmdbSnapshotStore.open(options as unknown as LmdbSnapshotStoreOptions),
  // Offsets live in the journal's own environment; the journal is always this provider's own.
  createOffsetStore: async (journal) => {
    if (!(journal instanceof LmdbMessageJournal)) {
      throw new TypeError('the lmdb provider keeps offsets only for a journal it opened');
    }
    return journal.offsetStore();
  },
  validateOptions: (kind, options) =>
    checkOptionTypes(options, kind === 'journal' ? LMDB_JOURNAL_OPTION_TYPES : LMDB_SNAPSHOT_OPTION_TYPES),
  // A journal and a snapshot store on one path share one environment: either may be asked for there.
  detect: async (directory) =>
    (await storeBackendOf(directory)) === 'lmdb' &&
    (await access(path.join(directory, 'data.mdb')).then(
      () => true,
      () => false,
    )),
  // One environment file holds everything (journal, snapshots, read models); it never shrinks.
  describeFiles: async (directory) => {
    const size = await stat(path.join(directory, 'data.mdb')).then(
      (s) => s.size,
      () => undefined,
    );
    return size === undefined ? [] : [{ label: 'data.mdb', count: 1, bytes: size }];
  },
};
