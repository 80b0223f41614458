import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  isPersistenceError,
  type PersistenceReport,
  type SnapshotCorruptedError,
  type SnapshotStore,
  STORE_MARKER_FILE,
} from '@cairn/actor-core';
import {
  endIdleIoThreads,
  FileSnapshotStore,
  type FileSnapshotStoreOptions,
  isHashedDirectoryName,
  lockFileName,
  ownerFileName,
  PERSISTENCE_ID_FILE,
  persistenceIdDirectoryName,
  persistenceIdFromDirectoryName,
  snapshotFileName,
  TEMP_DIRECTORY,
} from '@cairn/snapshot';
import { captureResources, collect, expectNoLeakedResources } from '@cairn/testkit';
import fc from 'fast-check';

type State = { balance: number; history?: number[] };

let root: string;
const open: FileSnapshotStore<State>[] = [];
let reports: PersistenceReport[];

async function openStore(options: Partial<FileSnapshotStoreOptions> = {}): Promise<FileSnapshotStore<State>> {
  const store = await FileSnapshotStore.open<State>({
    path: root,
    ioThreads: 1,
    reporter: (r) => reports.push(r),
    ...options,
  });
  open.push(store);
  return store;
}

function snapshotFiles(persistenceId: string): string[] {
  const dir = path.join(root, persistenceIdDirectoryName(persistenceId).name);
  return fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.snapshot'))
        .sort()
    : [];
}

function fileOf(persistenceId: string, index: number): string {
  const name = snapshotFiles(persistenceId)[index];
  if (name === undefined) throw new Error(`no snapshot file #${index} for ${persistenceId}`);
  return path.join(root, persistenceIdDirectoryName(persistenceId).name, name);
}

async function rejection(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-file-snapshots-'));
  reports = [];
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  fs.rmSync(root, { recursive: true, force: true });
});

describe('FileSnapshotStore', () => {
  it('is a persistent SnapshotStore', async () => {
    const store: SnapshotStore<State> = await openStore();
    expect((store as FileSnapshotStore<State>).capabilities).toEqual({
      persistent: true,
      health: true,
      readOnly: true,
      import: true,
      metrics: true,
      listIds: true,
    });
  });

  it('saves and loads the newest snapshot, also after reopening', async () => {
    let store = await openStore();
    await store.save('acct-1', 10, { balance: 100, history: [1, 2] });
    await store.save('acct-1', 20, { balance: 200 });
    expect(await store.loadLatest('acct-1')).toMatchObject({
      persistenceId: 'acct-1',
      sequenceNr: 20,
      state: { balance: 200 },
    });
    await store.close();
    store = await openStore();
    const latest = await store.loadLatest('acct-1');
    expect(latest).toMatchObject({ sequenceNr: 20, state: { balance: 200 } });
    expect(latest?.timestamp).toBeGreaterThan(0);
    expect(snapshotFiles('acct-1')).toHaveLength(2);
  });

  it('creates its directory with missing parents', async () => {
    const nested = path.join(root, 'a', 'b', 'snapshots');
    const store = await openStore({ path: nested });
    await store.save('x', 1, { balance: 1 });
    expect(fs.existsSync(path.join(nested, 'x'))).toBe(true);
  });

  it('applies criteria inclusively; {} equals no criteria', async () => {
    const store = await openStore();
    await store.save('p', 5, { balance: 5 });
    await new Promise((r) => setTimeout(r, 5));
    await store.save('p', 10, { balance: 10 });
    await new Promise((r) => setTimeout(r, 5));
    await store.save('p', 15, { balance: 15 });
    const all = await Promise.all([5, 10, 15].map((n) => store.loadLatest('p', { maxSequenceNr: n })));
    expect(all.map((s) => s?.sequenceNr)).toEqual([5, 10, 15]);
    expect((await store.loadLatest('p', { maxSequenceNr: 9 }))?.sequenceNr).toBe(5);
    expect(await store.loadLatest('p', { maxSequenceNr: 4 })).toBeUndefined();
    expect((await store.loadLatest('p', {}))?.sequenceNr).toBe(15);
    const ten = all[1];
    expect((await store.loadLatest('p', { maxTimestamp: ten?.timestamp }))?.sequenceNr).toBe(10);
    expect((await store.loadLatest('p', { maxTimestamp: (ten?.timestamp ?? 0) - 1 }))?.sequenceNr).toBe(5);
    expect(
      (await store.loadLatest('p', { maxSequenceNr: 15, maxTimestamp: ten?.timestamp }))?.sequenceNr,
    ).toBe(10);
  });

  it('replaces a snapshot saved twice at one sequenceNr, keeping one file', async () => {
    const store = await openStore();
    await store.save('r', 7, { balance: 1 });
    await new Promise((r) => setTimeout(r, 3)); // a different timestamp, so a different file name
    await store.save('r', 7, { balance: 2 });
    await store.save('r', 7, { balance: 3 }); // possibly the same millisecond: renamed over in place
    expect((await store.loadLatest('r'))?.state).toEqual({ balance: 3 });
    expect(snapshotFiles('r')).toHaveLength(1);
  });

  it('serves the newer of two files of one sequenceNr left by an interrupted replacement', async () => {
    const store = await openStore();
    await store.save('d', 3, { balance: 1 });
    const older = fileOf('d', 0);
    const kept = fs.readFileSync(older);
    await new Promise((r) => setTimeout(r, 3));
    await store.save('d', 3, { balance: 2 });
    fs.writeFileSync(older, kept); // as if the crash came between the rename and the unlink
    expect(snapshotFiles('d')).toHaveLength(2);
    expect((await store.loadLatest('d'))?.state).toEqual({ balance: 2 });
    expect(await store.prune('d', 0)).toBe(1);
    expect(snapshotFiles('d')).toEqual([]);
  });

  it('prunes: keeps the newest `keep`, prune(id, 0) deletes all, an unknown id resolves 0', async () => {
    const store = await openStore();
    for (const n of [1, 2, 3, 4, 5]) await store.save('q', n, { balance: n });
    expect(await store.prune('q', 2)).toBe(3);
    expect(snapshotFiles('q')).toEqual([snapshotFiles('q')[0], snapshotFiles('q')[1]]);
    expect((await store.loadLatest('q', { maxSequenceNr: 3 })) === undefined).toBe(true);
    expect((await store.loadLatest('q'))?.sequenceNr).toBe(5);
    expect(await store.prune('q', 2)).toBe(0);
    expect(await store.prune('q', 0)).toBe(2);
    expect(await store.loadLatest('q')).toBeUndefined();
    expect(await store.prune('never-saved', 0)).toBe(0);
    expect(fs.existsSync(path.join(root, 'never-saved'))).toBe(false);
  });

  it('deletes by criteria, or all without them; an unknown id is a no-op', async () => {
    const store = await openStore();
    for (const n of [10, 20, 30]) await store.save('e', n, { balance: n });
    await store.delete('e', { maxSequenceNr: 20 });
    expect((await store.loadLatest('e'))?.sequenceNr).toBe(30);
    expect(await store.loadLatest('e', { maxSequenceNr: 29 })).toBeUndefined();
    await store.delete('e');
    expect(await store.loadLatest('e')).toBeUndefined();
    await store.delete('unknown');
    expect(await store.loadLatest('unknown')).toBeUndefined();
  });

  it('rejects bad arguments with TypeError or RangeError and changes nothing', async () => {
    const store = await openStore();
    await store.save('ok', 1, { balance: 1 });
    const before = fs.readdirSync(root).sort();
    await expect(rejection(() => store.save('', 1, { balance: 1 }))).resolves.toBeInstanceOf(TypeError);
    await expect(rejection(() => store.save('ok', 0, { balance: 1 }))).resolves.toBeInstanceOf(RangeError);
    await expect(rejection(() => store.save('ok', 1.5, { balance: 1 }))).resolves.toBeInstanceOf(RangeError);
    await expect(rejection(() => store.save('x'.repeat(1025), 1, { balance: 1 }))).resolves.toBeInstanceOf(
      RangeError,
    );
    await expect(
      rejection(() => store.save('ok', 2, { balance: 1, f: () => 1 } as unknown as State)),
    ).resolves.toMatchObject({ name: 'WriteRejectedError', code: 'ERR_WRITE_REJECTED' });
    await expect(rejection(() => store.prune('ok', -1))).resolves.toBeInstanceOf(RangeError);
    await expect(rejection(() => store.loadLatest('ok', { maxSequenceNr: -1 }))).resolves.toBeInstanceOf(
      RangeError,
    );
    await expect(rejection(() => store.delete('ok', { maxTimestamp: 1.5 }))).resolves.toBeInstanceOf(
      RangeError,
    );
    expect(fs.readdirSync(root).sort()).toEqual(before);
    expect(snapshotFiles('ok')).toHaveLength(1);
  });

  it('rejects bad options with a TypeError naming them, leaking nothing', async () => {
    const before = captureResources();
    await expect(FileSnapshotStore.open({ path: '' })).rejects.toThrow(TypeError);
    await expect(FileSnapshotStore.open({ path: root, fsync: 'yes' as unknown as boolean })).rejects.toThrow(
      /fsync: must be a boolean/,
    );
    await expect(FileSnapshotStore.open({ path: root, ioThreads: 0 })).rejects.toThrow(/ioThreads/);
    await expect(
      FileSnapshotStore.open({ path: root, fsynch: false } as unknown as FileSnapshotStoreOptions),
    ).rejects.toThrow(/fsynch: unknown option/);
    await expect(FileSnapshotStore.open({ path: root, serializer: 'bogus' })).rejects.toThrow(RangeError);
    await expectNoLeakedResources(before);
  });

  it('fails to open on a path that is a file with a ConfigError saying so, leaking nothing', async () => {
    const before = captureResources();
    const file = path.join(root, 'plain-file');
    fs.writeFileSync(file, '');
    const error = await rejection(() => FileSnapshotStore.open({ path: file }));
    expect(isPersistenceError(error, 'ERR_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(`${file} is not a directory`);
    await expectNoLeakedResources(before);
  });

  it('rejects every call after close with SnapshotStoreClosedError; close is idempotent', async () => {
    const store = await openStore();
    await store.save('c', 1, { balance: 1 });
    await store.close();
    await store.close();
    for (const call of [
      () => store.save('c', 2, { balance: 2 }),
      () => store.loadLatest('c'),
      () => store.delete('c'),
      () => store.prune('c', 0),
    ]) {
      expect(isPersistenceError(await rejection(call), 'ERR_SNAPSHOT_STORE_CLOSED')).toBe(true);
    }
  });

  it('works without fsync', async () => {
    let store = await openStore({ fsync: false });
    expect(store.fsync).toBe(false);
    await store.save('nf', 1, { balance: 1 });
    await store.close();
    store = await openStore({ fsync: false });
    expect((await store.loadLatest('nf'))?.state).toEqual({ balance: 1 });
  });
});

describe('FileSnapshotStore corruption', () => {
  it('skips a snapshot with a flipped byte, reports it naming the file, loads the older one, deletes nothing', async () => {
    const store = await openStore();
    await store.save('acct', 1, { balance: 1 });
    await store.save('acct', 2, { balance: 2 });
    const newest = fileOf('acct', 1);
    const bytes = fs.readFileSync(newest);
    bytes[bytes.length - 6] = (bytes[bytes.length - 6] as number) ^ 0x40; // inside the payload
    fs.writeFileSync(newest, bytes);

    const latest = await store.loadLatest('acct');
    expect(latest).toMatchObject({ sequenceNr: 1, state: { balance: 1 } });
    expect(reports).toHaveLength(1);
    const report = reports[0] as PersistenceReport;
    expect(report.kind).toBe('snapshot-skipped');
    expect(report.persistenceId).toBe('acct');
    expect(report.message).toContain(newest);
    const error = report.error as SnapshotCorruptedError;
    expect(error.code).toBe('ERR_SNAPSHOT_CORRUPTED');
    expect(error.file).toBe(newest);
    expect(error.persistenceId).toBe('acct');
    expect(error.sequenceNr).toBe(2);
    expect(error.offset).toBeGreaterThan(0);
    expect(error.reason).toMatch(/payload CRC mismatch/);
    expect(snapshotFiles('acct')).toHaveLength(2);
    expect(fs.readFileSync(newest)).toEqual(bytes);
  });

  it('never serves a damaged snapshot: any flips or truncation of the newest fall back to the older (property)', async () => {
    const store = await openStore();
    await store.save('prop', 1, { balance: 1, history: [1] });
    await store.save('prop', 2, { balance: 2, history: [1, 2] });
    const newest = fileOf('prop', 1);
    const intact = fs.readFileSync(newest);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat(intact.length - 1), mask: fc.integer({ min: 1, max: 255 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.option(fc.nat(intact.length - 1), { nil: undefined }),
        async (flips, cut) => {
          const damaged = Buffer.from(intact);
          for (const { at, mask } of flips) damaged[at] = (damaged[at] as number) ^ mask;
          const bytes = cut === undefined ? damaged : damaged.subarray(0, cut);
          if (bytes.equals(intact)) return; // flips that cancel out: nothing is damaged
          fs.writeFileSync(newest, bytes);
          reports = [];
          const latest = await store.loadLatest('prop');
          expect(latest).toMatchObject({ sequenceNr: 1, state: { balance: 1, history: [1] } });
          expect(reports.map((r) => r.kind)).toEqual(['snapshot-skipped']);
          expect(reports[0]?.error).toMatchObject({ file: newest, persistenceId: 'prop', sequenceNr: 2 });
        },
      ),
      { numRuns: 60 },
    );
    fs.writeFileSync(newest, intact);
    expect((await store.loadLatest('prop'))?.sequenceNr).toBe(2);
  });

  it('refuses a file without an envelope (an older, checksum-less snapshot) with a clear reason', async () => {
    const store = await openStore();
    await store.save('legacy', 1, { balance: 1 });
    const dir = path.join(root, persistenceIdDirectoryName('legacy').name);
    const legacy = path.join(dir, snapshotFileName(2, Date.now()));
    fs.writeFileSync(legacy, JSON.stringify({ balance: 99 }));
    expect((await store.loadLatest('legacy'))?.sequenceNr).toBe(1);
    const error = reports[0]?.error as SnapshotCorruptedError;
    expect(error.file).toBe(legacy);
    expect(error.offset).toBe(0);
    expect(error.reason).toMatch(/not a Cairn v1 snapshot envelope/);
    expect(fs.existsSync(legacy)).toBe(true);
  });

  it('refuses a snapshot copied from another persistenceId, and an empty file', async () => {
    const store = await openStore();
    await store.save('one', 1, { balance: 1 });
    await store.save('two', 5, { balance: 5 });
    const dirOne = path.join(root, persistenceIdDirectoryName('one').name);
    const two = fileOf('two', 0);
    fs.copyFileSync(two, path.join(dirOne, path.basename(two)));
    fs.writeFileSync(path.join(dirOne, snapshotFileName(9, 1)), '');
    expect((await store.loadLatest('one'))?.state).toEqual({ balance: 1 });
    expect(reports.map((r) => (r.error as SnapshotCorruptedError).sequenceNr)).toEqual([9, 5]);
    expect(reports[1]?.message).toMatch(/envelope names "two"/);
  });

  it('resolves undefined when every snapshot is corrupt, reporting each', async () => {
    const store = await openStore();
    await store.save('bad', 1, { balance: 1 });
    await store.save('bad', 2, { balance: 2 });
    for (const i of [0, 1]) fs.truncateSync(fileOf('bad', i), 20);
    expect(await store.loadLatest('bad')).toBeUndefined();
    expect(reports.map((r) => r.kind)).toEqual(['snapshot-skipped', 'snapshot-skipped']);
    expect(snapshotFiles('bad')).toHaveLength(2);
  });
});

describe('FileSnapshotStore temp files', () => {
  it('removes temp files of crashed saves on open and reports it', async () => {
    let store = await openStore();
    await store.save('t', 1, { balance: 1 });
    await store.close();
    const temps = path.join(root, TEMP_DIRECTORY);
    fs.writeFileSync(path.join(temps, '.999999999.00112233aabbccdd.tmp'), 'half a snapshot');
    fs.writeFileSync(path.join(temps, `.${process.pid}.00112233aabbccdd.tmp`), 'ours, from before');
    store = await openStore();
    expect(fs.readdirSync(temps)).toEqual([]);
    expect(reports.map((r) => r.kind)).toEqual(['snapshot-temp-removed']);
    expect((await store.loadLatest('t'))?.state).toEqual({ balance: 1 });
    await store.save('t', 2, { balance: 2 });
    expect(fs.readdirSync(temps)).toEqual([]);
  });
});

describe('FileSnapshotStore temp files of a second store', () => {
  it("keeps this process's temp files when another store of it has the directory open", async () => {
    const first = await openStore();
    const ours = path.join(root, TEMP_DIRECTORY, `.${process.pid}.00112233aabbccdd.tmp`);
    fs.writeFileSync(ours, 'a save of the first store in flight');
    const second = await openStore();
    expect(fs.existsSync(ours)).toBe(true);
    await second.close();
    await first.close();
    await openStore(); // the only store now: the leftover is removed
    expect(fs.existsSync(ours)).toBe(false);
  });
});

describe('FileSnapshotStore read-only', () => {
  it('reads what a writer open at the same time saves, writes nothing, and refuses writes', async () => {
    const writer = await openStore();
    await writer.save('r', 1, { balance: 1 });
    const temps = path.join(root, TEMP_DIRECTORY);
    const leftover = path.join(temps, '.999999999.00112233aabbccdd.tmp');
    fs.writeFileSync(leftover, 'half a snapshot of a dead process');
    const before = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();
    const reader = await openStore({ readOnly: true });
    expect(reader.readOnly).toBe(true);
    expect((await reader.loadLatest('r'))?.state).toEqual({ balance: 1 });
    await writer.save('r', 2, { balance: 2 });
    expect((await reader.loadLatest('r'))?.sequenceNr).toBe(2);
    for (const write of [
      () => reader.save('r', 3, { balance: 3 }),
      () => reader.delete('r'),
      () => reader.prune('r', 0),
    ]) {
      const e = await rejection(write);
      expect(isPersistenceError(e, 'ERR_READ_ONLY')).toBe(true);
      expect((e as Error).message).toContain(root);
    }
    expect(reports.map((r) => r.kind)).not.toContain('snapshot-temp-removed');
    await reader.close();
    // The reader created, removed and changed nothing: only the writer's second save is new.
    const after = fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();
    expect(after.filter((f) => !before.includes(f))).toEqual([
      path.join(
        persistenceIdDirectoryName('r').name,
        snapshotFileName(2, (await writer.loadLatest('r'))!.timestamp),
      ),
    ]);
    expect(fs.existsSync(leftover)).toBe(true);
  });

  it('refuses to open where no store exists, creating nothing', async () => {
    const missing = path.join(root, 'not-there');
    const e = await rejection(() => openStore({ path: missing, readOnly: true }));
    expect(isPersistenceError(e, 'ERR_STORAGE')).toBe(true);
    expect((e as Error).message).toContain(`no snapshot store at ${missing}`);
    expect(fs.existsSync(missing)).toBe(false);
  });
});

describe('FileSnapshotStore persistence ids', () => {
  const tricky = [
    'a:b',
    'a_b',
    'a/b',
    'a\\b',
    'A',
    'a',
    '.',
    '..',
    '.tmp',
    'con',
    'x'.repeat(100),
    'ü',
    'u\u0308', // the decomposed spelling of "ü": a different id
    '\u{1F600} emoji',
    '日本語のID',
    ' leading space',
    'trailing dot.',
    '\u0000nul',
    `${'same-prefix/'.repeat(60)}1`,
    `${'same-prefix/'.repeat(60)}2`,
    '\u{1F600}'.repeat(256), // 1 KB of UTF-8
  ];

  it('keeps every id apart, in names that fit 255 bytes, and reads each back', async () => {
    const names = tricky.map((id) => persistenceIdDirectoryName(id).name);
    expect(new Set(names).size).toBe(tricky.length);
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(tricky.length);
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
      expect(name.startsWith('.')).toBe(false);
    }
    expect(persistenceIdDirectoryName('a:b').name).toBe('a_3Ab');
    expect(persistenceIdDirectoryName('a_b').name).toBe('a_5Fb');

    const store = await openStore();
    for (const [i, id] of tricky.entries()) await store.save(id, i + 1, { balance: i });
    for (const [i, id] of tricky.entries()) {
      const latest = await store.loadLatest(id);
      expect(latest).toMatchObject({ persistenceId: id, sequenceNr: i + 1, state: { balance: i } });
    }
    expect(reports).toEqual([]);
    const notIds = new Set([
      TEMP_DIRECTORY,
      lockFileName('snapshots'),
      ownerFileName('snapshots'),
      STORE_MARKER_FILE,
    ]);
    const dirs = fs.readdirSync(root).filter((n) => !notIds.has(n));
    expect(dirs).toHaveLength(tricky.length);
    for (const dir of dirs) {
      const id = isHashedDirectoryName(dir)
        ? fs.readFileSync(path.join(root, dir, PERSISTENCE_ID_FILE), 'utf8')
        : persistenceIdFromDirectoryName(dir);
      expect(tricky).toContain(id);
    }
    expect((await collect(store.persistenceIds())).sort()).toEqual([...tricky].sort());
  });

  it('lists ids from their directories only: not the temp dir, lock, marker or stray entries', async () => {
    const store = await openStore();
    await store.save('kept', 1, { balance: 1 });
    await store.save('emptied', 1, { balance: 1 });
    await store.delete('emptied');
    fs.writeFileSync(path.join(root, 'stray-file'), 'not a directory'); // a name that decodes to an id
    fs.mkdirSync(path.join(root, 'not an id'));
    fs.mkdirSync(path.join(root, 'no-snapshots-here'));
    fs.writeFileSync(path.join(root, TEMP_DIRECTORY, 'leftover'), 'x');
    expect(await collect(store.persistenceIds())).toEqual(['kept']);
    const reader = await openStore({ readOnly: true });
    expect(await collect(reader.persistenceIds())).toEqual(['kept']);
    expect(await reader.listSnapshots('kept')).toEqual([{ sequenceNr: 1, timestamp: expect.any(Number) }]);
    expect(reports).toEqual([]);
  });

  it("finds a hashed directory's id in its snapshots when the id file is gone, and reports one that names none", async () => {
    const long = 'long/'.repeat(60);
    const other = 'other/'.repeat(60);
    const store = await openStore();
    await store.save(long, 1, { balance: 1 });
    await store.save(other, 1, { balance: 2 });
    const longDir = path.join(root, persistenceIdDirectoryName(long).name);
    const otherDir = path.join(root, persistenceIdDirectoryName(other).name);
    // Another id's snapshot and id file copied over: nothing in the directory names an id that hashes to it.
    for (const name of fs.readdirSync(otherDir)) fs.rmSync(path.join(otherDir, name));
    for (const name of fs.readdirSync(longDir))
      fs.copyFileSync(path.join(longDir, name), path.join(otherDir, name));
    fs.rmSync(path.join(longDir, PERSISTENCE_ID_FILE));
    expect(await collect(store.persistenceIds())).toEqual([long]);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ kind: 'snapshot-skipped' });
    expect(isPersistenceError(reports[0]!.error, 'ERR_SNAPSHOT_CORRUPTED')).toBe(true);
    expect(reports[0]!.message).toContain(otherDir);
  });

  it('maps ids to names reversibly and injectively (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }), (id) => {
        const { name, hashed } = persistenceIdDirectoryName(id);
        expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
        if (!hashed) expect(persistenceIdFromDirectoryName(name)).toBe(id);
        else expect(isHashedDirectoryName(name)).toBe(true);
      }),
      { numRuns: 500 },
    );
    expect(persistenceIdFromDirectoryName('_61')).toBeUndefined(); // not the canonical spelling of "a"
    expect(persistenceIdFromDirectoryName('.tmp')).toBeUndefined();
    expect(persistenceIdFromDirectoryName('_FF')).toBeUndefined(); // not UTF-8
  });
});

/** Threads of this process (Linux), or undefined where /proc is not there. */
function threadCount(): number | undefined {
  try {
    return fs.readdirSync('/proc/self/task').length;
  } catch {
    return undefined;
  }
}

describe('FileSnapshotStore resources', () => {
  it('leaves no fd, thread, timer or handle after open/save/load/close cycles', async () => {
    const before = captureResources();
    let threads: number | undefined;
    for (let round = 0; round < 10; round++) {
      const store = await FileSnapshotStore.open<State>({ path: root, ioThreads: 2, reporter: () => {} });
      await Promise.all([1, 2, 3].map((n) => store.save(`leak-${n}`, round + 1, { balance: n })));
      expect((await store.loadLatest('leak-1'))?.sequenceNr).toBe(round + 1);
      expect(await store.prune('leak-2', 1)).toBe(round === 0 ? 0 : 1);
      await store.close();
      // The shared pool's threads are kept between stores (ioIdleMs), not started again per store.
      const now = threadCount();
      if (round === 0) threads = now;
      else if (threads !== undefined && now !== undefined) expect(now).toBeLessThanOrEqual(threads);
    }
    // What the idle threads hold ends with them: at once by endIdleIoThreads().
    await endIdleIoThreads();
    await expectNoLeakedResources(before);
  });

  it('with ioIdleMs 0 close() leaves nothing behind by itself', async () => {
    const before = captureResources();
    for (let round = 0; round < 3; round++) {
      const store = await FileSnapshotStore.open<State>({ path: root, ioIdleMs: 0, reporter: () => {} });
      await store.save('idle-0', round + 1, { balance: round });
      await store.close();
    }
    await expectNoLeakedResources(before);
    await expect(FileSnapshotStore.open({ path: root, ioIdleMs: -1 })).rejects.toThrow(/ioIdleMs/);
  });
});
