import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { PersistenceReport } from '@cairn/actor-core';
import { FileMessageJournal } from '@cairn/journal-file';
import { cli, damageMarker, layout, makeData, tempDir } from './cli-fixtures';

describe('cairn repair --truncate-after-corruption (file journal)', () => {
  test('cuts a corrupted id back to its last good record, prints what was lost, and the id goes on', async () => {
    const work = await tempDir();
    try {
      const l = await layout(work.dir, 'file');
      await makeData(l);
      const segment = path.join(l.journal, '0000000000000001.log');
      await damageMarker(segment, 'MARK-acct-b-7-END');

      // Without the flag: refused, nothing changed.
      const refused = await cli('repair', '--config', l.config);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('needs an explicit --truncate-after-corruption <id>');
      expect((await cli('events', 'acct-b', '--config', l.config)).code).toBe(1);

      const run = await cli('repair', '--truncate-after-corruption', 'acct-b', '--config', l.config);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(
        /"acct-b": journal-corrupted \[file .*0000000000000001\.log, offset \d+, id "acct-b", sequenceNr 7\]/,
      );
      expect(run.stdout).toContain('a repair keeps sequenceNr 1..6 and cuts 7..12 (6 event(s))');
      const cut = /cut: 7\.\.12 \((\d+) bytes\); kept through 6; the cut records are in (\S+)/.exec(
        run.stdout,
      );
      expect(cut).not.toBeNull();
      const [, bytes, quarantine] = cut!;
      expect(path.dirname(quarantine!)).toBe(path.join(l.journal, 'quarantine'));
      expect(run.stdout).toContain(
        'warning: "acct-b" has a snapshot at sequenceNr 12, after the cut: delete snapshots above 6',
      );
      // The quarantine file: a header line, then the cut records byte for byte (events 7..12, the
      // flipped one as it is on disk).
      const file = readFileSync(quarantine!);
      const newline = file.indexOf(0x0a);
      const header = JSON.parse(file.toString('utf8', 0, newline));
      expect(header).toMatchObject({
        persistenceId: 'acct-b',
        keptThrough: 6,
        removed: { first: 7, last: 12 },
      });
      expect(file.length - newline - 1).toBe(Number(bytes));
      for (let seq = 8; seq <= 12; seq++) expect(file.includes(`MARK-acct-b-${seq}-END`)).toBe(true);

      // The id reads clean through 6 now, other ids are untouched, and a second repair finds nothing.
      const events = await cli('events', 'acct-b', '--config', l.config);
      expect(events.code).toBe(0);
      expect(events.stdout.trim().split('\n')).toHaveLength(6);
      expect((await cli('events', 'acct-a', '--config', l.config)).stdout.trim().split('\n')).toHaveLength(
        30,
      );
      const again = await cli(
        'repair',
        '--truncate-after-corruption',
        'acct-b',
        '--config',
        l.config,
        '--json',
      );
      expect(again.code).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ repaired: false });
      expect(readdirSync(path.join(l.journal, 'quarantine'))).toHaveLength(1);

      // Appends continue from the kept highest. Until the cut is acknowledged, every open reports the
      // dead records it cut, and verify counts them.
      const reports: PersistenceReport[] = [];
      const reporter = (r: PersistenceReport) => reports.push(r);
      const journal = await FileMessageJournal.open({
        path: l.journal,
        ioThreads: 1,
        fsync: false,
        reporter,
      });
      expect(reports.map((r) => r.kind)).toEqual(['corruption-found']);
      expect(reports[0]!.message).toContain('cairn repair --acknowledge acct-b');
      expect(await journal.append('acct-b', 'after the repair')).toBe(7);
      await journal.close();
      const before = await cli('verify', '--config', l.config);
      expect(before.code).toBe(1);
      expect(before.stdout).toContain('history: repair of "acct-b"');
      expect(before.stdout).toContain('not acknowledged yet (cairn repair --acknowledge acct-b)');

      // The snapshot past the cut goes with the command the warning names.
      const deleted = await cli('snapshots', 'delete', 'acct-b', '--above', '6', '--config', l.config);
      expect(deleted.code).toBe(0);
      expect(deleted.stdout).toContain('deleted the snapshot(s) of "acct-b" above 6: 12');
      expect(deleted.stdout).toContain('newest snapshot now: none');
      expect((await cli('snapshots', 'delete', 'acct-b', '--config', l.config)).code).toBe(2);

      // Acknowledged: the repair is history; verify is clean and opening reports nothing.
      const ack = await cli('repair', '--acknowledge', 'acct-b', '--config', l.config);
      expect(ack.stderr).toBe('');
      expect(ack.code).toBe(0);
      expect(ack.stdout).toContain('acknowledged: repair of "acct-b"');
      const after = await cli('verify', '--config', l.config);
      expect(after.stdout).toContain('OK: no problems found');
      expect(after.stdout).toMatch(
        /history: repair of "acct-b" at \S+: sequenceNr 7\.\.12 cut, .*; acknowledged /,
      );
      expect(after.code).toBe(0);
      reports.length = 0;
      const reopened = await FileMessageJournal.open({
        path: l.journal,
        ioThreads: 1,
        fsync: false,
        reporter,
      });
      expect(reports).toEqual([]);
      expect(await reopened.highestSequenceNr('acct-b')).toBe(7);
      await reopened.close();
      const twice = await cli('repair', '--acknowledge', 'acct-b', '--config', l.config);
      expect(twice.stdout).toContain('no repair waiting for acknowledgement');
    } finally {
      await work.remove();
    }
  });

  test('--json reports the plan and the result', async () => {
    const work = await tempDir();
    try {
      const l = await layout(work.dir, 'file');
      await makeData(l);
      const segment = path.join(l.journal, '0000000000000001.log');
      await damageMarker(segment, 'MARK-acct-a-17-END');
      const run = await cli(
        'repair',
        '--truncate-after-corruption',
        'acct-a',
        '--config',
        l.config,
        '--json',
      );
      expect(run.code).toBe(0);
      const json = JSON.parse(run.stdout);
      expect(json).toMatchObject({
        repaired: true,
        plan: { persistenceId: 'acct-a', lastGood: 16, lost: { first: 17, last: 30 } },
        result: { keptThrough: 16, removed: { first: 17, last: 30 }, bytes: expect.any(Number) },
        snapshotAhead: 20,
      });
    } finally {
      await work.remove();
    }
  });
});
