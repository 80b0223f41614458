import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  createPersistence,
  isPersistenceError,
  MemoryMessageJournal,
  MemorySnapshotStore,
  type PersistenceProvider,
} from '@cairn/actor-core';
import { FileMessageJournal, provider as fileProvider } from '@cairn/journal-file';
import { LmdbMessageJournal, LmdbSnapshotStore, provider as lmdbProvider } from '@cairn/journal-lmdb';
import { FileSnapshotStore } from '@cairn/snapshot';

/**
 * One option schema per backend, checked by open() and by the config path alike: a misspelt option is
 * refused by both, naming it, and nothing is opened or created. A path that is a file is refused by every
 * backend with a typed error saying it "is not a directory".
 */
type Open = (options: Record<string, unknown>) => Promise<{ close(): Promise<void> }>;
const backends: Array<[string, Open, PersistenceProvider | undefined, 'journal' | 'snapshots']> = [
  ['FileMessageJournal', (o) => FileMessageJournal.open(o as never), fileProvider, 'journal'],
  ['FileSnapshotStore', (o) => FileSnapshotStore.open(o as never), fileProvider, 'snapshots'],
  ['LmdbMessageJournal', (o) => LmdbMessageJournal.open(o as never), lmdbProvider, 'journal'],
  ['LmdbSnapshotStore', (o) => LmdbSnapshotStore.open(o as never), lmdbProvider, 'snapshots'],
  ['MemoryMessageJournal', (o) => MemoryMessageJournal.open(o as never), undefined, 'journal'],
  ['MemorySnapshotStore', (o) => MemorySnapshotStore.open(o as never), undefined, 'snapshots'],
];

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'cairn-open-options-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(backends)('%s.open', (name, open, provider, kind) => {
  it('rejects a misspelt option with a TypeError naming it, creating nothing', async () => {
    const dir = path.join(root, 'store');
    const error = await open({ path: dir, readonly: true, fsynk: false }).then(
      async (opened) => {
        await opened.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toContain(`${name}.open`);
    expect((error as Error).message).toMatch(/readonly: unknown option/);
    expect((error as Error).message).toMatch(/fsynk: unknown option/);
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses the same option through the config path, from the same schema', async () => {
    const problems = (provider?.validateOptions ?? (() => ['(memory: checked by createPersistence)']))(kind, {
      path: path.join(root, 'x'),
      readonly: true,
    });
    if (provider) expect(problems).toEqual([expect.stringMatching(/^readonly: unknown option/)]);
    const config = {
      journal: { provider: provider?.name ?? 'memory' },
      snapshots: { provider: provider?.name ?? 'memory' },
    } as Record<'journal' | 'snapshots', Record<string, unknown>>;
    config.journal.path = path.join(root, 'j');
    config.snapshots.path = path.join(root, 's');
    config[kind].readonly = true;
    if (!provider) {
      delete config.journal.path;
      delete config.snapshots.path;
    }
    await expect(createPersistence(config as never)).rejects.toMatchObject({
      code: 'ERR_CONFIG',
      message: expect.stringMatching(new RegExp(`${kind}\\.readonly: unknown option`)),
    });
    expect(await readdir(root)).toEqual([]);
  });

  if (name.startsWith('Memory')) return;

  it('says "is not a directory" in a ConfigError when path is a file, changing nothing', async () => {
    const file = path.join(root, 'a-file');
    await writeFile(file, 'not a store');
    const error = await open({ path: file }).catch((e: unknown) => e);
    expect(isPersistenceError(error, 'ERR_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(`${file} is not a directory`);
    expect(await readdir(root)).toEqual(['a-file']);
  });
});
