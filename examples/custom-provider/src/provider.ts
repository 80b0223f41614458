import { checkOptionTypes, type PersistenceProvider } from '@cairn/actor-core';
import { JSONL_JOURNAL_OPTIONS, JsonlJournal, type JsonlJournalOptions } from './jsonl-journal';
import {
  JSONL_SNAPSHOT_OPTIONS,
  JsonlSnapshotStore,
  type JsonlSnapshotStoreOptions,
} from './jsonl-snapshot-store';

/**
 * The provider a Cairn config names by module: `{ "provider": "@cairn/example-custom-provider", "path": ... }`
 * (or a relative path to this module). Options are checked against the same schemas open() checks.
 */
export const provider: PersistenceProvider = {
  name: 'jsonl',
  requiresPath: true,
  createJournal: (options) => JsonlJournal.open(options as unknown as JsonlJournalOptions),
  createSnapshotStore: (options) => JsonlSnapshotStore.open(options as unknown as JsonlSnapshotStoreOptions),
  validateOptions: (kind, options) =>
    checkOptionTypes(options, kind === 'journal' ? JSONL_JOURNAL_OPTIONS : JSONL_SNAPSHOT_OPTIONS),
};
