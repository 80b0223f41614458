import { checkOptionTypes, type PersistenceProvider } from '@cairn/actor-core';
import { PostgresMessageJournal } from './postgres-message-journal';
import {
  POSTGRES_JOURNAL_OPTION_TYPES,
  POSTGRES_SNAPSHOT_OPTION_TYPES,
  type PostgresMessageJournalOptions,
  type PostgresSnapshotStoreOptions,
} from './postgres-options';
import { PostgresSnapshotStore } from './postgres-snapshot-store';

/**
 * The "postgres" provider: `{ provider: 'postgres', connectionString, schema }` in a Cairn config opens a
 * PostgresMessageJournal or a PostgresSnapshotStore (connectionString omitted: the PG* variables apply).
 */
export const provider: PersistenceProvider = {
  name: 'postgres',
  createJournal: (options) => PostgresMessageJournal.open(options as PostgresMessageJournalOptions),
  createSnapshotStore: (options) => PostgresSnapshotStore.open(options as PostgresSnapshotStoreOptions),
  createOffsetStore: async (journal) => {
    if (!(journal instanceof PostgresMessageJournal)) {
      throw new TypeError('the postgres provider keeps offsets only for a journal it opened');
    }
    return journal.offsetStore();
  },
  validateOptions: (kind, options) =>
    checkOptionTypes(
      options,
      kind === 'journal' ? POSTGRES_JOURNAL_OPTION_TYPES : POSTGRES_SNAPSHOT_OPTION_TYPES,
    ),
};
