import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  ConfigError,
  createPersistence,
  loadPersistenceConfig,
  MemoryMessageJournal,
} from '@cairn/actor-core';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cairn-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configError(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

const fixture = (name: string) => path.join(__dirname, 'fixtures', name);

describe('loadPersistenceConfig', () => {
  it('reads cairn.config.json from the working folder, resolving paths against it', async () => {
    await writeFile(
      path.join(dir, 'cairn.config.json'),
      JSON.stringify({
        journal: { provider: 'file', path: './j', fsync: true },
        snapshots: { provider: 'memory' },
      }),
    );
    const config = await loadPersistenceConfig({ cwd: dir, env: {} });
    expect(config).toEqual({
      journal: { provider: 'file', path: path.join(dir, 'j'), fsync: true },
      snapshots: { provider: 'memory' },
    });
  });

  it('lets CAIRN_* environment variables override the file', async () => {
    await writeFile(
      path.join(dir, 'cairn.config.json'),
      JSON.stringify({
        journal: { provider: 'file', path: './j' },
        snapshots: { provider: 'file', path: './s' },
      }),
    );
    const config = await loadPersistenceConfig({
      cwd: dir,
      env: {
        CAIRN_JOURNAL_PROVIDER: 'lmdb',
        CAIRN_JOURNAL_PATH: 'data/lmdb',
        CAIRN_SNAPSHOTS_PROVIDER: 'memory',
      },
    });
    expect(config.journal).toEqual({ provider: 'lmdb', path: path.join(dir, 'data/lmdb') });
    expect(config.snapshots.provider).toBe('memory');
  });

  it('works from the environment alone', async () => {
    const config = await loadPersistenceConfig({
      cwd: dir,
      env: { CAIRN_JOURNAL_PROVIDER: 'memory', CAIRN_SNAPSHOTS_PROVIDER: 'memory' },
    });
    expect(config).toEqual({ journal: { provider: 'memory' }, snapshots: { provider: 'memory' } });
  });

  it('reads the file CAIRN_CONFIG names, and says so when it is missing', async () => {
    await writeFile(
      path.join(dir, 'other.json'),
      JSON.stringify({ journal: { provider: 'memory' }, snapshots: { provider: 'memory' } }),
    );
    expect(
      (await loadPersistenceConfig({ cwd: dir, env: { CAIRN_CONFIG: 'other.json' } })).journal.provider,
    ).toBe('memory');
    const error = await configError(
      loadPersistenceConfig({ cwd: dir, env: { CAIRN_CONFIG: 'missing.json' } }),
    );
    expect(error.message).toContain('missing.json');
  });

  it('gathers every problem into one ConfigError', async () => {
    await writeFile(
      path.join(dir, 'cairn.config.json'),
      JSON.stringify({ journal: { provider: 7, path: '' }, snapshot: {}, extra: true }),
    );
    const error = await configError(loadPersistenceConfig({ cwd: dir, env: { CAIRN_JOURNAL_PAHT: 'x' } }));
    expect(error.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('journal.provider: must be a non-empty string'),
        expect.stringContaining('journal.path: must be a non-empty string'),
        expect.stringContaining('unknown key "snapshot"'),
        expect.stringContaining('unknown key "extra"'),
        expect.stringContaining('snapshots: missing'),
        expect.stringContaining('CAIRN_JOURNAL_PAHT'),
      ]),
    );
    expect(error.problems.length).toBeGreaterThanOrEqual(6);
  });

  it('names a misspelt key and suggests the known one', async () => {
    await writeFile(
      path.join(dir, 'cairn.config.json'),
      JSON.stringify({
        journl: { provider: 'memory' },
        journal: { provder: 'memory' },
        snapshots: { provider: 'memory' },
      }),
    );
    const error = await configError(loadPersistenceConfig({ cwd: dir, env: {} }));
    expect(error.problems).toEqual([
      'unknown key "journl" (did you mean "journal"?) (known: journal, snapshots)',
      'journal.provder: unknown key (did you mean "provider"?); journal.provider is missing',
    ]);
  });

  it('reports every problem of every level in one ConfigError: shape, provider, provider options', async () => {
    await writeFile(
      path.join(dir, 'cairn.config.json'),
      JSON.stringify({
        journal: { provider: 'memory', maxBatchSize: 'big' },
        snapshots: { provider: 'lmbd', path: './data' },
        extra: 1,
      }),
    );
    const error = await configError(loadPersistenceConfig({ cwd: dir, env: {} }));
    expect(error.problems).toEqual([
      'unknown key "extra" (known: journal, snapshots)',
      'journal.maxBatchSize: must be an integer >= 1, got "big"',
      expect.stringMatching(/^snapshots\.provider: unknown provider "lmbd": .* \(did you mean "lmdb"\?\)$/),
    ]);
  });

  it("resolves a relative provider module against the config file's folder, like path", async () => {
    const folder = path.join(dir, 'app', 'config');
    await import('node:fs/promises').then((fs) => fs.mkdir(folder, { recursive: true }));
    await writeFile(
      path.join(folder, 'my-provider.js'),
      "exports.provider = { name: 'mine', createJournal: async () => { throw new Error('unused'); }, " +
        "createSnapshotStore: async () => { throw new Error('unused'); } };\n",
    );
    await writeFile(
      path.join(folder, 'cairn.config.json'),
      JSON.stringify({ journal: { provider: './my-provider.js' }, snapshots: { provider: 'memory' } }),
    );
    // The working folder is elsewhere: only the file's folder finds the module.
    const config = await loadPersistenceConfig({
      cwd: dir,
      env: { CAIRN_CONFIG: path.join(folder, 'cairn.config.json') },
    });
    expect(config.journal.provider).toBe(path.join(folder, 'my-provider.js'));
  });

  it('reports a file that is not valid JSON', async () => {
    await writeFile(path.join(dir, 'cairn.config.json'), '{ "journal": ');
    const error = await configError(loadPersistenceConfig({ cwd: dir, env: {} }));
    expect(error.message).toContain('cairn.config.json');
  });
});

describe('createPersistence', () => {
  it('opens the memory provider for both halves and closes both', async () => {
    const persistence = await createPersistence({
      journal: { provider: 'memory' },
      snapshots: { provider: 'memory' },
    });
    expect(persistence.journal).toBeInstanceOf(MemoryMessageJournal);
    expect(await persistence.journal.append('a', 1)).toBe(1);
    await persistence.snapshots.save('a', 1, { s: 1 });
    await persistence.close();
    await persistence.close();
    await expect(persistence.journal.append('a', 2)).rejects.toMatchObject({ code: 'ERR_JOURNAL_CLOSED' });
    await expect(persistence.snapshots.loadLatest('a')).rejects.toMatchObject({
      code: 'ERR_SNAPSHOT_STORE_CLOSED',
    });
  });

  it('loads a third-party provider from a file path and passes its options', async () => {
    const persistence = await createPersistence({
      journal: { provider: fixture('custom-provider.js'), maxBatchSize: 7 },
      snapshots: { provider: fixture('custom-provider.js') },
    });
    expect((persistence.journal as MemoryMessageJournal).maxBatchSize).toBe(7);
    await persistence.close();
  });

  it("gathers the provider's own option problems with everything else", async () => {
    const error = await configError(
      createPersistence({
        journal: { provider: fixture('custom-provider.js'), colour: 'blue' },
        snapshots: { provider: 'memory', maxBatchSize: 'big' },
      }),
    );
    expect(error.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('journal.colour: not supported'),
        expect.stringContaining('snapshots.maxBatchSize'),
      ]),
    );
  });

  it('suggests the nearest built-in for a misspelt provider, and the nearest option for a misspelt one', async () => {
    const error = await configError(
      createPersistence({
        journal: { provider: 'memroy' },
        snapshots: { provider: 'memory', serialiser: 'json' },
      }),
    );
    expect(error.problems).toEqual([
      expect.stringMatching(/^journal\.provider: unknown provider "memroy": .* \(did you mean "memory"\?\)$/),
      expect.stringMatching(/^snapshots\.serialiser: unknown option \(did you mean "serializer"\?\)/),
    ]);
  });

  it('reports shape and provider problems together, not in rounds', async () => {
    const error = await configError(
      createPersistence({
        journal: { provider: 'memory', maxBatchSize: 0 },
        snapshots: { provider: 'memory', path: '' },
        extra: true,
      } as never),
    );
    expect(error.problems).toEqual([
      expect.stringContaining('unknown key "extra"'),
      'snapshots.path: must be a non-empty string',
      expect.stringContaining('journal.maxBatchSize'),
    ]);
  });

  it('names unknown providers and modules without a provider export', async () => {
    const error = await configError(
      createPersistence({
        journal: { provider: 'no-such-cairn-provider-xyz' },
        snapshots: { provider: fixture('not-a-provider.js') },
      }),
    );
    expect(error.problems).toEqual([
      expect.stringContaining('unknown provider "no-such-cairn-provider-xyz"'),
      expect.stringContaining('does not export a `provider`'),
    ]);
  });

  it('requires a path for the file and lmdb providers', async () => {
    const error = await configError(
      createPersistence({ journal: { provider: 'file' }, snapshots: { provider: 'lmdb' } }),
    );
    const text = error.problems.join('\n');
    // Either the package is installed and the path is missing, or the package itself is missing: both are named.
    expect(text).toMatch(/journal\.(path: required|provider: "file" needs the package @cairn\/journal-file)/);
    expect(text).toMatch(
      /snapshots\.(path: required|provider: "lmdb" needs the package @cairn\/journal-lmdb)/,
    );
  });

  it('rejects a configuration that is not an object, or lacks a half', async () => {
    expect((await configError(createPersistence(null as never))).problems).toHaveLength(1);
    const error = await configError(createPersistence({ journal: { provider: 'memory' } } as never));
    expect(error.problems).toEqual([expect.stringContaining('snapshots: missing')]);
  });
});
