import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

/**
 * the public contract promises that every package imports by name from plain Node after `npm install`, with no
 * TypeScript loader. This runs a child `node` (not jest's module system) against the built dist/ files.
 */
const root = path.join(__dirname, '..');

const expected: Record<string, string[]> = {
  '@cairn/actor-core': [
    'PersistenceError',
    'isPersistenceError',
    'JournalClosedError',
    'SequenceConflictError',
    'JournalLockedError',
    'JournalCorruptedError',
    'SnapshotCorruptedError',
    'RecoveryFailedError',
    'ConfigError',
    'createPersistence',
    'loadPersistenceConfig',
    'ActorSystem',
    'EventSourcedBehavior',
    'Effect',
    'MemoryMessageJournal',
    'MemorySnapshotStore',
    'AbstractMessageJournal',
    'AbstractSnapshotStore',
    'crc32',
    'msgpackSerializer',
    'jsonSerializer',
  ],
  '@cairn/journal-file': ['FileMessageJournal', 'provider'],
  '@cairn/snapshot': ['FileSnapshotStore', 'encodeSnapshotEnvelope', 'decodeSnapshotEnvelope'],
  '@cairn/journal-lmdb': ['LmdbMessageJournal', 'LmdbSnapshotStore', 'provider'],
  '@cairn/postgres': ['PostgresMessageJournal', 'PostgresSnapshotStore', 'provider'],
  '@cairn/testkit': [
    'journalConformance',
    'snapshotConformance',
    'captureResources',
    'expectNoLeakedResources',
  ],
};

it.each(Object.entries(expected))('%s exports its contract names to plain Node', (pkg, names) => {
  const script = `
    import(${JSON.stringify(pkg)}).then((m) => {
      const missing = ${JSON.stringify(names)}.filter((n) => m[n] === undefined);
      process.stdout.write(JSON.stringify({ missing, provider: m.provider && m.provider.name }));
    });`;
  // testkit needs jest's globals only when its suites run, not to be imported.
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }));
  expect(out.missing).toEqual([]);
  if (pkg === '@cairn/journal-file') expect(out.provider).toBe('file');
  if (pkg === '@cairn/journal-lmdb') expect(out.provider).toBe('lmdb');
  if (pkg === '@cairn/postgres') expect(out.provider).toBe('postgres');
});

it('a plain Node script can open the memory provider by config and round-trip an event', () => {
  const script = `
    const { createPersistence } = require('@cairn/actor-core');
    (async () => {
      const p = await createPersistence({ journal: { provider: 'memory' }, snapshots: { provider: 'memory' } });
      const seq = await p.journal.append('acct-1', { type: 'Deposited', amount: 5 });
      const read = [];
      for await (const e of p.journal.readFrom('acct-1', 1)) read.push(e.message);
      await p.close();
      process.stdout.write(JSON.stringify({ seq, read }));
    })();`;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }));
  expect(out).toEqual({ seq: 1, read: [{ type: 'Deposited', amount: 5 }] });
});
