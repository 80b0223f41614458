import {
  canOpenReadOnly,
  createPersistence,
  loadProvider,
  type MessageJournal,
  type OffsetStore,
  type PersistenceProvider,
  type PersistenceReport,
  type SnapshotStore,
  type StoreConfig,
} from '@cairn/actor-core';
import { UnsupportedError } from './exit-codes';
import type { ResolvedStores } from './store-location';

/** A journal and/or snapshot store opened for one command, with what their backends reported. */
export interface OpenedStores {
  readonly journal: MessageJournal | undefined;
  readonly snapshots: SnapshotStore | undefined;
  /** The journal provider's offset store (projections' offsets), when it keeps one. */
  readonly offsets: OffsetStore | undefined;
  readonly journalConfig: StoreConfig | undefined;
  readonly snapshotsConfig: StoreConfig | undefined;
  /** Where each store keeps its data, for messages (its provider's `describe`; never a secret). */
  readonly journalDescription: string;
  readonly snapshotsDescription: string;
  /**
   * Everything the backends reported while open (a torn tail cut back on open, corruption found by a
   * scan, a corrupt snapshot skipped by loadLatest), in order. Collected through the `reporter` option
   * instead of process warnings, so each command can show them as findings.
   */
  readonly reports: PersistenceReport[];
  close(): Promise<void>;
}

/**
 * "lmdb /data/journal", for headers and messages: the provider's own description when it has one
 * (`describe`: a database names its server and schema, never a password), else its name and path.
 */
export function describeStore(
  config: StoreConfig | undefined,
  provider?: PersistenceProvider,
  kind: 'journal' | 'snapshots' = 'journal',
): string {
  if (!config) return 'none';
  if (provider?.describe) {
    const { provider: _name, ...options } = config;
    return provider.describe(kind, options);
  }
  return config.path === undefined ? config.provider : `${config.provider} ${config.path}`;
}

/** describeStore with the config's provider loaded (a provider that cannot be loaded: name and path). */
export async function describeConfiguredStore(
  config: StoreConfig | undefined,
  kind: 'journal' | 'snapshots',
): Promise<string> {
  if (!config) return 'none';
  const provider = await loadProvider(config.provider).catch(() => undefined);
  return describeStore(config, provider, kind);
}

/**
 * Opens what `stores` names through the public route (createPersistence, so custom providers named in a
 * config work too). A half that was not given is opened as an unused in-memory store and reported as
 * undefined, since createPersistence always opens both.
 *
 * With `readOnly`, every store is opened read-only: no lock is taken (a running application may keep
 * writing), nothing is created, removed, cut back, compacted or migrated, and any write would be refused.
 * A provider whose options take no `readOnly`, or whose opened store does not declare the `readOnly`
 * capability, is refused with UnsupportedError rather than opened writable beside a live application.
 */
export async function openStores(
  stores: ResolvedStores,
  options: { readOnly?: boolean } = {},
): Promise<OpenedStores> {
  const reports: PersistenceReport[] = [];
  const reporter = (report: PersistenceReport) => {
    reports.push(report);
  };
  if (options.readOnly) {
    await refuseWithoutReadOnly('journal', stores.journal);
    await refuseWithoutReadOnly('snapshots', stores.snapshots);
  }
  const section = (config: StoreConfig | undefined): StoreConfig =>
    config
      ? { ...config, reporter, ...(options.readOnly ? { readOnly: true } : {}) }
      : { provider: 'memory' };
  const persistence = await createPersistence({
    journal: section(stores.journal),
    snapshots: section(stores.snapshots),
  });
  const journal = stores.journal ? persistence.journal : undefined;
  const snapshots = stores.snapshots ? persistence.snapshots : undefined;
  if (options.readOnly) {
    const writable = [journal, snapshots].find((s) => s !== undefined && !canOpenReadOnly(s));
    if (writable) {
      await persistence.close();
      throw new UnsupportedError(
        `the ${writable === journal ? await describeConfiguredStore(stores.journal, 'journal') : await describeConfiguredStore(stores.snapshots, 'snapshots')} store took readOnly ` +
          'but does not declare the readOnly capability, so it may have opened writable; it was closed again.',
      );
    }
  }
  return {
    journal,
    snapshots,
    offsets: stores.journal ? persistence.offsets : undefined,
    journalConfig: stores.journal,
    snapshotsConfig: stores.snapshots,
    journalDescription: await describeConfiguredStore(stores.journal, 'journal'),
    snapshotsDescription: await describeConfiguredStore(stores.snapshots, 'snapshots'),
    reports,
    close: () => persistence.close(),
  };
}

/**
 * A provider that cannot open read-only (its option check rejects `readOnly`) is refused before anything
 * is opened: a tool must not open a store writable beside a running application without being asked.
 */
async function refuseWithoutReadOnly(kind: 'journal' | 'snapshots', config: StoreConfig | undefined) {
  if (!config) return;
  const provider = await loadProvider(config.provider);
  const problems = provider.validateOptions?.(kind, { readOnly: true }) ?? ['no option check'];
  if (problems.length > 0) {
    throw new UnsupportedError(
      `the "${provider.name}" provider cannot open its ${kind === 'journal' ? 'journal' : 'snapshot store'} ` +
        `read-only (${problems.join('; ')}), and this command does not open a store writable. Nothing was opened.`,
    );
  }
}
