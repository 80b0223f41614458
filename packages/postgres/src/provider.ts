import { checkOptionTypes, type PersistenceProvider } from '@cairn/actor-core';
import { describeTarget } from './driver';
import { PostgresMessageJournal } from './postgres-message-journal';
import {
  DEFAULT_SCHEMA,
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
  // The server, user, database and schema; the password never (describeTarget leaves it out).
  describe: (_kind, options) =>
    `postgres ${describeTarget(typeof options.connectionString === 'string' ? options.connectionString : undefined)} schema "${typeof options.schema === 'string' ? options.schema : DEFAULT_SCHEMA}"`,
  validateOptions: (kind, options) =>
    checkOptionTypes(
      options,
      kind === 'journal' ? POSTGRES_JOURNAL_OPTION_TYPES : POSTGRES_SNAPSHOT_OPTION_TYPES,
    ),
};
