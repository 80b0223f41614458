import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { canDelete } from '@cairn/actor-core';
import {
  BACKENDS,
  cli,
  type DataLayout,
  damageMarker,
  layout,
  makeData,
  openData,
  tempDir,
} from './cli-fixtures';

describe.each(BACKENDS)('cairn commands on the %s backend', (backend) => {
  let root: { dir: string; remove: () => Promise<void> };
  let l: DataLayout;

  beforeAll(async () => {
    root = await tempDir();
    l = await layout(root.dir, backend);
    await makeData(l);
  });
  afterAll(() => root.remove());

  test('ls: highest, first surviving sequenceNr and event count per id', async () => {
    const run = await cli('ls', '--config', l.config, '--json');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout);
    expect(
      rows.map(
        (r: {
          persistenceId: string;
          highestSequenceNr: number;
          firstSequenceNr: number;
          events: number;
          snapshots: number;
        }) => [r.persistenceId, r.highestSequenceNr, r.firstSequenceNr, r.events, r.snapshots],
      ),
    ).toEqual([
      ['acct-a', 30, 1, 30, 2],
      ['acct-b', 12, 1, 12, 1],
      ['acct-c', 20, 6, 15, 1],
    ]);
    const text = await cli('ls', '--config', l.config);
    expect(text.stdout.split('\n')[0]).toMatch(/^ID\s+HIGHEST\s+FIRST\s+EVENTS\s+SNAPSHOTS$/);
    expect(text.stdout).toMatch(/acct-c\s+20\s+6\s+15\s+1/);
  });

  test('ls with only the snapshot store: its ids, listed through the listIds capability', async () => {
    const run = await cli('ls', '--snapshots', l.snapshots, '--json');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as Array<{
      persistenceId: string;
      events: number;
      snapshots: number;
    }>;
    expect(rows.map((r) => [r.persistenceId, r.events, r.snapshots])).toEqual([
      ['acct-a', 0, 2],
      ['acct-b', 0, 1],
      ['acct-c', 0, 1],
    ]);
  });

  test('ls: a deleted id is listed as deleted, and again as live once written after', async () => {
    const own = await layout(root.dir, backend, `${backend}-deleted`);
    const { journal, close } = await openData(own);
    try {
      if (!canDelete(journal)) throw new Error('the journal does not declare deletion');
      await journal.appendBatch('gone', ['a', 'b']);
      await journal.deletePersistenceId('gone');
      await journal.appendBatch('back', ['a']);
      await journal.deletePersistenceId('back');
      await journal.append('back', 'c');
      await journal.append('kept', 'x');
    } finally {
      await close();
    }
    const run = await cli('ls', '--config', own.config, '--json');
    expect(run.code).toBe(0);
    const rows = JSON.parse(run.stdout) as { persistenceId: string; events: number; deleted?: boolean }[];
    expect(rows.map((r) => [r.persistenceId, r.events, r.deleted === true])).toEqual([
      ['back', 1, false],
      ['gone', 0, true],
      ['kept', 1, false],
    ]);
    const text = await cli('ls', '--config', own.config);
    expect(text.stdout).toMatch(/gone\s+3\s+-\s+deleted/);
    // A deletion is not damage: the marker stands for the events below it, recovery starts after it.
    const verified = await cli('verify', '--config', own.config);
    expect([verified.code, verified.stdout]).toEqual([0, expect.stringContaining('OK: no problems found')]);
  });

  test("compact: the file journal gives a deleted id's space back; LMDB says what to do instead", async () => {
    const own = await layout(root.dir, backend, `${backend}-compact`);
    const { journal, close } = await openData(own);
    try {
      if (!canDelete(journal)) throw new Error('the journal does not declare deletion');
      for (let i = 0; i < 50; i++) await journal.append('gone', { pad: 'x'.repeat(500), i });
      await journal.append('kept', 'x');
      await journal.deletePersistenceId('gone');
    } finally {
      await close();
    }
    const run = await cli('compact', '--config', own.config, '--json');
    if (backend === 'file') {
      expect(run.code).toBe(0);
      const result = JSON.parse(run.stdout) as { bytesBefore: number; bytesAfter: number };
      expect(result.bytesBefore - result.bytesAfter).toBeGreaterThan(50 * 500);
      const text = await cli('compact', '--config', own.config);
      expect(text.stdout).toMatch(/^compacted: .* on disk \(.* freed\)/);
      const verified = await cli('verify', '--config', own.config);
      expect([verified.code, verified.stdout]).toEqual([0, expect.stringContaining('OK')]);
    } else {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/cannot compact on demand: LMDB .*compacting copy/);
    }
  });

  test('events: decoded, with --from/--to/--max, Dates and Maps kept in --json', async () => {
    const run = await cli(
      'events',
      'acct-a',
      '--from',
      '4',
      '--to',
      '9',
      '--max',
      '3',
      '--journal',
      l.journal,
      '--json',
    );
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((s) => JSON.parse(s));
    expect(lines.map((e) => e.sequenceNr)).toEqual([4, 5, 6]);
    expect(lines[0]).toMatchObject({
      persistenceId: 'acct-a',
      message: {
        type: 'deposited',
        amount: 4,
        at: { $date: new Date(1_700_000_000_004).toISOString() },
        tags: { $map: [['seq', 4]] },
      },
    });
    const text = await cli('events', 'acct-a', '--to', '2', '--journal', l.journal);
    expect(text.stdout.trim().split('\n')).toHaveLength(2);
    // sequenceNr, time, tags ("-": none), message
    expect(text.stdout).toMatch(
      /^1\t\d{4}-\d\d-\d\dT.*Z\t-\t\{ type: 'deposited', .*Map\(1\) \{ 'seq' => 1 \}/,
    );
    // An id that is not there is the caller's mistake (exit 2), never a clean listing.
    const unknown = await cli('events', 'nobody', '--journal', l.journal);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain('not found: no id "nobody"');
    expect((await cli('events', 'nobody', '--journal', l.journal, '--json')).code).toBe(2);
    const emptyRange = await cli('events', 'acct-a', '--from', '100', '--journal', l.journal);
    expect(emptyRange.code).toBe(0);
    expect(emptyRange.stderr).toContain('no events in that range');
  });

  test('snapshots: newest first, as loadLatest walking down finds them', async () => {
    const run = await cli('snapshots', 'acct-a', '--snapshots', l.snapshots, '--json', '--state');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.snapshots.map((s: { sequenceNr: number }) => s.sequenceNr)).toEqual([20, 10]);
    expect(out.snapshots[0].state).toMatchObject({ balance: 210, asOf: { $date: expect.any(String) } });
    expect(out.problems).toEqual([]);
    const none = await cli('snapshots', 'nobody', '--snapshots', l.snapshots);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('not found: no id "nobody"');
  });

  test('stats: ids, events, oldest and newest timestamps, directory sizes', async () => {
    const run = await cli('stats', '--config', l.config, '--json');
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout);
    expect(stats).toMatchObject({ ids: 3, events: 57, problems: [] });
    expect(stats.oldestTimestamp).toBeLessThanOrEqual(stats.newestTimestamp);
    expect(stats.newestTimestamp).toBeLessThanOrEqual(Date.now());
    expect(stats.journal.bytes).toBeGreaterThan(0);
    // The kinds of file come from the provider's describeFiles hook, not from the CLI.
    const labels = (d: { kinds: Array<{ label: string; count: number; bytes: number }> }) =>
      Object.fromEntries(d.kinds.map((k) => [k.label, k.count]));
    if (backend === 'file') {
      expect(labels(stats.journal)).toEqual({ segments: 1, 'segment indexes': 0 });
      expect(labels(stats.snapshots)).toEqual({ 'snapshot files': 4 });
    } else {
      expect(labels(stats.journal)).toEqual({ 'data.mdb': 1 });
      expect(stats.journal.kinds[0].bytes).toBeGreaterThan(0);
    }
    const text = await cli('stats', '--config', l.config);
    expect(text.stdout).toMatch(/^ids: 3\nevents: 57\noldest event: \d{4}-.*Z\nnewest event: /);
  });

  test('verify of chosen ids only; an id that does not exist is not an OK (exit 2)', async () => {
    const run = await cli('verify', 'acct-b', 'nobody', '--config', l.config, '--json');
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout)).toMatchObject({
      ids: 2,
      events: 12,
      snapshotsVerified: 1,
      problems: [],
      missingIds: ['nobody'],
      ok: false,
    });
    const text = await cli('verify', 'nobody', '--config', l.config);
    expect(text.code).toBe(2);
    // Not the verdict line (the temp directory's random name in the header may hold "OK").
    expect(text.stdout).not.toMatch(/^OK/m);
    expect(text.stderr).toContain('not found: no id "nobody"');
    expect((await cli('verify', 'acct-b', '--config', l.config)).code).toBe(0);
  });

  test('verify reports a snapshot that fails its checksum, names it, and exits 1', async () => {
    const work = await tempDir();
    try {
      const c = await layout(work.dir, backend);
      await makeData(c);
      const file =
        backend === 'file'
          ? await snapshotFile(c.snapshots, 'acct-a', 20)
          : path.join(c.snapshots, 'data.mdb');
      await damageMarker(file, 'SNAP-acct-a-20-END');
      const run = await cli('verify', '--config', c.config, '--json');
      expect(run.code).toBe(1);
      const result = JSON.parse(run.stdout);
      expect(result.problems).toEqual([
        expect.objectContaining({
          kind: 'snapshot-corrupted',
          persistenceId: 'acct-a',
          sequenceNr: 20,
          ...(backend === 'file' ? { file } : { key: expect.stringContaining('acct-a') }),
        }),
      ]);
      // The older snapshot still verifies; the corrupt one was left in place.
      expect(result.snapshotsVerified).toBe(3);
      const listing = await cli('snapshots', 'acct-a', '--config', c.config);
      expect(listing.code).toBe(1);
      expect(listing.stdout).toMatch(/^10\t/m);
      expect(listing.stdout).toContain('1 corrupt snapshot(s)');
    } finally {
      await work.remove();
    }
  });

  test('verify finds an id that cannot recover: events truncated past its newest good snapshot', async () => {
    const work = await tempDir();
    try {
      const c = await layout(work.dir, backend);
      await makeData(c);
      // acct-c's only snapshot (5) covers its truncated events 1..5; damage it.
      const file =
        backend === 'file'
          ? await snapshotFile(c.snapshots, 'acct-c', 5)
          : path.join(c.snapshots, 'data.mdb');
      await damageMarker(file, 'SNAP-acct-c-5-END');
      const result = JSON.parse((await cli('verify', '--config', c.config, '--json')).stdout);
      expect(result.problems).toContainEqual(
        expect.objectContaining({ kind: 'unrecoverable', persistenceId: 'acct-c', sequenceNr: 1 }),
      );
    } finally {
      await work.remove();
    }
  });
});

async function snapshotFile(root: string, id: string, seq: number): Promise<string> {
  const dir = path.join(root, id);
  const name = (await readdir(dir)).find((f) => f.startsWith(String(seq).padStart(16, '0')));
  if (!name) throw new Error(`no snapshot ${seq} of ${id} in ${dir}`);
  return path.join(dir, name);
}
