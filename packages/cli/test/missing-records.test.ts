import * as path from 'node:path';
import { open } from 'lmdb';
import { cli, layout, makeData, tempDir } from './cli-fixtures';

/** The LMDB journal's key of an event: [u16 id length, id (UTF-8), u64 sequenceNr], big-endian. */
function eventKey(persistenceId: string, sequenceNr: number): Buffer {
  const id = Buffer.from(persistenceId, 'utf8');
  const key = Buffer.alloc(2 + id.length + 8);
  key.writeUInt16BE(id.length, 0);
  id.copy(key, 2);
  key.writeUInt32BE(Math.floor(sequenceNr / 2 ** 32), 2 + id.length);
  key.writeUInt32BE(sequenceNr >>> 0, 2 + id.length + 4);
  return key;
}

// A record that is simply gone (deleted by hand, a bad restore) passes every checksum: only the
// numbering shows it. The LMDB journal serves around such a hole, so verify's continuity check is
// what finds it.
test('verify finds events deleted from an LMDB journal: a gap in the middle, a missing tail', async () => {
  const root = await tempDir();
  try {
    const l = await layout(root.dir, 'lmdb');
    await makeData(l);
    const env = open({ path: l.journal, maxDbs: 4 });
    const journal = env.openDB({ name: 'journal', encoding: 'binary', keyEncoding: 'binary' });
    await journal.remove(eventKey('acct-b', 5));
    await journal.remove(eventKey('acct-b', 6));
    await journal.remove(eventKey('acct-a', 30));
    await env.close();

    const run = await cli('verify', '--journal', l.journal, '--json');
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout);
    // The journal itself refuses to skip missing numbers: each is reported as corruption with its key.
    expect(result.problems).toEqual([
      expect.objectContaining({
        kind: 'journal-corrupted',
        persistenceId: 'acct-a',
        sequenceNr: 30,
        key: 'journal:acct-a#30',
        message: expect.stringContaining('sequenceNr 30 is missing'),
      }),
      expect.objectContaining({
        kind: 'journal-corrupted',
        persistenceId: 'acct-b',
        sequenceNr: 5,
        key: 'journal:acct-b#5',
        message: expect.stringContaining('sequenceNr 5 to 6 missing'),
      }),
    ]);
    const text = await cli('verify', '--config', path.join(root.dir, 'lmdb.config.json'));
    expect(text.stdout).toContain('acct-b');
    expect(text.stdout).toContain('sequenceNr 5 to 6 missing');
  } finally {
    await root.remove();
  }
});
