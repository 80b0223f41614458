import {
  createPersistence,
  type MessageJournal,
  type PersistenceReport,
  type SnapshotStore,
  type StoreConfig,
} from '@cairn/actor-core';
import type { ResolvedStores } from './store-location';

/** A journal and/or snapshot store opened for one command, with what their backends reported. */
export interface OpenedStores {
  readonly journal: MessageJournal | undefined;
  readonly snapshots: SnapshotStore | undefined;
  readonly journalConfig: StoreConfig | undefined;
  readonly snapshotsConfig: StoreConfig | undefined;
  /**
   * Everything the backends reported while open (a torn tail cut back on open, corruption found by a
   * scan, a corrupt snapshot skipped by loadLatest), in order. Collected through the `reporter` option
   * instead of process warnings, so each command can show them as findings.
   */
  readonly reports: PersistenceReport[];
  close(): Promise<void>;
}

/** "lmdb /data/journal", for headers and messages. */
export function describeStore(config: StoreConfig | undefined): string {
  if (!config) return 'none';
  return config.path === undefined ? config.provider : `${config.provider} ${config.path}`;
}

/**
 * Opens what `stores` names through the public route (createPersistence, so custom providers named in a
 * config work too). A half that was not given is opened as an unused in-memory store and reported as
 * undefined, since createPersistence always opens both.
 *
 * The file and LMDB backends have no read-only mode: opening takes the file journal's lock (a running
 * application keeps it, so `cairn` refuses with JournalLockedError rather than read under a writer),
 * and performs the backends' own open-time work (cutting back a torn tail, sealing a segment). Those are
 * reported, and the commands show them.
 */
export async function openStores(stores: ResolvedStores): Promise<OpenedStores> {
  const reports: PersistenceReport[] = [];
  const reporter = (report: PersistenceReport) => {
    reports.push(report);
  };
  const section = (config: StoreConfig | undefined): StoreConfig =>
    config ? { ...config, reporter } : { provider: 'memory' };
  const persistence = await createPersistence({
    journal: section(stores.journal),
    snapshots: section(stores.snapshots),
  });
  return {
    journal: stores.journal ? persistence.journal : undefined,
    snapshots: stores.snapshots ? persistence.snapshots : undefined,
    journalConfig: stores.journal,
    snapshotsConfig: stores.snapshots,
    reports,
    close: () => persistence.close(),
  };
}
