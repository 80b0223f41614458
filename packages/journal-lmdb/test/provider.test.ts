import {
  type BatchedMessageJournal,
  ConfigError,
  createPersistence,
  type MessageJournal,
  type SnapshotStore,
} from '@cairn/actor-core';
import { LmdbMessageJournal, LmdbSnapshotStore, provider } from '@cairn/journal-lmdb';
import { useTempDirs } from './temp-dir';

const tempDir = useTempDirs();

describe('the lmdb provider', () => {
  it('is named "lmdb" and opens both stores from config, sharing one environment', async () => {
    expect(provider.name).toBe('lmdb');
    const path = tempDir();
    const persistence = await createPersistence<number, number>({
      journal: { provider: 'lmdb', path, maxBatchDelayMs: 10 },
      snapshots: { provider: 'lmdb', path },
    });
    expect(persistence.journal).toBeInstanceOf(LmdbMessageJournal);
    expect(persistence.snapshots).toBeInstanceOf(LmdbSnapshotStore);
    expect((persistence.journal as LmdbMessageJournal).maxBatchDelayMs).toBe(10);
    await persistence.journal.append('p', 1);
    await persistence.snapshots.save('p', 1, 1);
    await persistence.close();

    const journal: MessageJournal<number> = await provider.createJournal<number>({ path });
    expect(await journal.highestSequenceNr('p')).toBe(1);
    await journal.close();
  });

  it('lists every bad option in one ConfigError before opening anything', async () => {
    const path = `${tempDir()}/never-created`;
    const error = await createPersistence({
      journal: { provider: 'lmdb', path, noSync: 'no', mapSize: 0, bogus: 1 },
      snapshots: { provider: 'lmdb', path, maxBatchSize: 5 },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/journal\.noSync/);
    expect(problems).toMatch(/journal\.mapSize/);
    expect(problems).toMatch(/journal\.bogus: unknown option/);
    expect(problems).toMatch(/snapshots\.maxBatchSize: unknown option/);
    const { existsSync } = await import('node:fs');
    expect(existsSync(path)).toBe(false);
  });

  it('validateOptions accepts the documented options', () => {
    expect(
      provider.validateOptions!('journal', {
        path: '/x',
        maxBatchSize: 10,
        maxBatchDelayMs: 0,
        noSync: true,
        mapSize: 1 << 20,
        serializer: 'json',
        reporter: () => undefined,
      }),
    ).toEqual([]);
    expect(
      provider.validateOptions!('snapshots', { path: '/x', noSync: false, serializer: 'msgpack' }),
    ).toEqual([]);
  });
});

// Type-level: the backends satisfy the SPI; if they stop doing so, this stops compiling.
type Satisfies<T, _U extends T> = true;
export type LmdbSatisfiesSpi = [
  Satisfies<BatchedMessageJournal<number>, LmdbMessageJournal<number>>,
  Satisfies<SnapshotStore<number>, LmdbSnapshotStore<number>>,
];
