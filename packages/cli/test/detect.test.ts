import { mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { storeBackendOf } from '@cairn/actor-core';
import { detectJournalBackend, detectSnapshotBackend } from '@cairn/cli';
import { provider as fileProvider } from '@cairn/journal-file';
import { provider as lmdbProvider } from '@cairn/journal-lmdb';
import { dataOnEveryBackend } from './cli-fixtures';

// `cairn --journal <dir>` asks each provider's detect hook instead of knowing their file layouts.
describe('providers recognise their own directories (detect)', () => {
  const { root, data } = dataOnEveryBackend();

  it('each provider says yes to its own journal and snapshot directories and no to the other one', async () => {
    const file = data.get('file')!;
    const lmdb = data.get('lmdb')!;
    expect(await fileProvider.detect!(file.journal, 'journal')).toBe(true);
    expect(await fileProvider.detect!(file.snapshots, 'snapshots')).toBe(true);
    // A file journal's directory holds no snapshot store, and the reverse.
    expect(await fileProvider.detect!(file.journal, 'snapshots')).toBe(false);
    expect(await fileProvider.detect!(file.snapshots, 'journal')).toBe(false);
    expect(await fileProvider.detect!(lmdb.journal, 'journal')).toBe(false);
    expect(await fileProvider.detect!(lmdb.journal, 'snapshots')).toBe(false);

    expect(await lmdbProvider.detect!(lmdb.journal, 'journal')).toBe(true);
    expect(await lmdbProvider.detect!(lmdb.journal, 'snapshots')).toBe(true);
    expect(await lmdbProvider.detect!(file.journal, 'journal')).toBe(false);
    expect(await lmdbProvider.detect!(file.snapshots, 'snapshots')).toBe(false);

    expect(await storeBackendOf(file.journal)).toBe('file');
    expect(await storeBackendOf(lmdb.journal)).toBe('lmdb');
  });

  it('each provider names and sizes the files of its own directories (describeFiles)', async () => {
    const file = data.get('file')!;
    const lmdb = data.get('lmdb')!;
    const counts = (kinds: Array<{ label: string; count: number; bytes: number }>) =>
      Object.fromEntries(kinds.map((k) => [k.label, k.count]));
    const journalFiles = await fileProvider.describeFiles!(file.journal, 'journal');
    expect(counts(journalFiles)).toEqual({ segments: 1, 'segment indexes': 0 });
    expect(journalFiles[0]!.bytes).toBeGreaterThan(0);
    expect(counts(await fileProvider.describeFiles!(file.snapshots, 'snapshots'))).toEqual({
      'snapshot files': 4,
    });
    const environment = await lmdbProvider.describeFiles!(lmdb.journal, 'journal');
    expect(counts(environment)).toEqual({ 'data.mdb': 1 });
    expect(environment[0]!.bytes).toBeGreaterThan(0);
  });

  it('the CLI names the provider that recognised the directory', async () => {
    expect(await detectJournalBackend(data.get('file')!.journal)).toBe('file');
    expect(await detectSnapshotBackend(data.get('file')!.snapshots)).toBe('file');
    expect(await detectJournalBackend(data.get('lmdb')!.journal)).toBe('lmdb');
  });

  it('an empty directory, or one another backend marked, is recognised by none, and nothing is written there', async () => {
    const empty = path.join(root.dir, 'empty');
    await mkdir(empty);
    await expect(detectJournalBackend(empty)).rejects.toThrow(
      /not a Cairn journal \(none of the providers file, lmdb recognises it/,
    );
    await expect(detectSnapshotBackend(empty)).rejects.toThrow(/not a Cairn snapshot store/);
    expect(await readdir(empty)).toEqual([]);

    // A marker naming a backend no built-in provider is: a file journal's segment beside it does not
    // make it a file journal.
    const foreign = path.join(root.dir, 'foreign');
    await mkdir(foreign);
    await writeFile(
      path.join(foreign, 'cairn-store.json'),
      JSON.stringify({ cairn: 'store', backend: 'acme', version: 1 }),
    );
    await writeFile(path.join(foreign, '0000000000000001.log'), '');
    expect(await storeBackendOf(foreign)).toBe('acme');
    await expect(detectJournalBackend(foreign)).rejects.toThrow(/not a Cairn journal/);
  });
});
