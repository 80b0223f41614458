import { MemorySnapshotStore, type SnapshotStore } from '@cairn/actor-core';
import { listIds, type OpenedStores, storesAsSource, UsageError } from '@cairn/cli';

// The CLI finds ids that have snapshots only through the listIds capability (canListSnapshotIds), never
// through a backend's layout: a store that declares it is listed, one that does not is said to be unlisted.
describe('snapshot ids through the listIds capability', () => {
  let memory: MemorySnapshotStore;
  beforeEach(async () => {
    memory = await MemorySnapshotStore.open();
    await memory.save('only-snapshots', 1, 'one');
    await memory.save('only-snapshots', 4, 'four');
  });
  afterEach(() => memory.close());

  /** The same store behind an object that declares no listIds, as a third-party store may. */
  const unlisted = (): SnapshotStore => ({
    capabilities: { persistent: false },
    save: (id, seq, state) => memory.save(id, seq, state),
    loadLatest: (id, criteria) => memory.loadLatest(id, criteria),
    delete: (id, criteria) => memory.delete(id, criteria),
    prune: (id, keep) => memory.prune(id, keep),
    close: () => memory.close(),
  });
  const opened = (snapshots: SnapshotStore): OpenedStores => ({
    journal: undefined,
    snapshots,
    offsets: undefined,
    journalConfig: undefined,
    snapshotsConfig: { provider: 'third-party' },
    journalDescription: 'none',
    snapshotsDescription: 'third-party',
    reports: [],
    close: async () => {},
  });

  it('cairn ls lists the ids of a store that declares listIds, with their snapshot counts', async () => {
    expect(await listIds(opened(memory))).toEqual([
      {
        persistenceId: 'only-snapshots',
        highestSequenceNr: 0,
        firstSequenceNr: undefined,
        events: 0,
        snapshots: 2,
      },
    ]);
  });

  it('refuses, as a usage error, to list a store without the capability and no journal', async () => {
    const error = await listIds(opened(unlisted())).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(
      /third-party snapshot store cannot list its persistenceIds \(it does not declare the listIds capability\)/,
    );
  });

  it('cairn copy reads the snapshot-only ids of a listable store, and none of an unlisted one', async () => {
    const ids = async (snapshots: SnapshotStore) => {
      const out: string[] = [];
      for await (const id of storesAsSource(opened(snapshots), 'test').snapshotIds()) out.push(id);
      return out;
    };
    expect(await ids(memory)).toEqual(['only-snapshots']);
    expect(await ids(unlisted())).toEqual([]);
  });
});
