import * as path from 'node:path';
import type { JournalEntry } from '@cairn/actor-core';
import { DumpReader } from '@cairn/cli';
import { BACKENDS, cli, damageMarker, eventOf, layout, makeData, openData, tempDir } from './cli-fixtures';

interface SalvageJson {
  ids: Array<{
    persistenceId: string;
    eventsCopied: number;
    snapshotsCopied: number;
    notCopied?: string;
    salvaged?: {
      keptThrough: number;
      unreadable: number[];
      quarantined: number;
      quarantinedRange?: { first: number; last: number };
      lost: number;
    };
  }>;
  problems: Array<{ kind: string; persistenceId: string; sequenceNr?: number }>;
  verified: { events: number; snapshots: number };
  ok: boolean;
}

// The way out for a damaged store whose journal cannot cut an id back in place (LMDB): copy what
// verifies into a fresh store, the readable rest into a quarantine dump.
describe.each(BACKENDS)('cairn copy --salvage (%s source)', (backend) => {
  let root: { dir: string; remove: () => Promise<void> };
  beforeEach(async () => {
    root = await tempDir();
  });
  afterEach(() => root.remove());

  async function damagedStore() {
    const l = await layout(root.dir, backend, 'damaged');
    await makeData(l);
    const file =
      backend === 'lmdb' ? path.join(l.journal, 'data.mdb') : path.join(l.journal, '0000000000000001.log');
    await damageMarker(file, 'MARK-acct-b-7-END');
    return l;
  }

  test('copies every id up to its last good event, quarantines the readable rest, and the new store verifies clean', async () => {
    const source = await damagedStore();
    const fresh = await layout(root.dir, backend === 'lmdb' ? 'file' : 'lmdb', 'fresh');
    const quarantine = path.join(root.dir, 'quarantine.jsonl');

    // Without --salvage the damaged id is left out.
    const plain = await cli(
      'copy',
      '--from',
      source.config,
      '--to-dump',
      path.join(root.dir, 'plain.jsonl'),
      '--json',
    );
    const plainResult = JSON.parse(plain.stdout) as SalvageJson;
    expect(plainResult.ids.find((i) => i.persistenceId === 'acct-b')?.notCopied).toMatch(
      /copying stopped after sequenceNr 6/,
    );

    const run = await cli(
      'copy',
      '--salvage',
      '--from',
      source.config,
      '--to',
      fresh.config,
      '--quarantine',
      quarantine,
      '--json',
    );
    // Data was lost, so the exit says problems were found; the salvage itself completed.
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as SalvageJson;
    const byId = Object.fromEntries(result.ids.map((i) => [i.persistenceId, i]));
    expect(byId['acct-b']).toMatchObject({
      eventsCopied: 6,
      // The snapshot at 12 is past the cut: a state the kept events do not reach.
      snapshotsCopied: 0,
      // LMDB reads on past a damaged value; the file journal cannot read past a damaged record of the id
      // (its `cairn repair` keeps those bytes instead).
      salvaged:
        backend === 'lmdb'
          ? {
              keptThrough: 6,
              unreadable: [7],
              quarantined: 5,
              quarantinedRange: { first: 8, last: 12 },
              lost: 0,
            }
          : { keptThrough: 6, unreadable: [7], quarantined: 0, lost: 5 },
    });
    expect(byId['acct-b']!.notCopied).toBeUndefined();
    expect(byId['acct-a']).toMatchObject({ eventsCopied: 30, snapshotsCopied: 2 });
    expect(byId['acct-a']!.salvaged).toBeUndefined();
    expect(byId['acct-c']).toMatchObject({ eventsCopied: 15 });
    // The damage, named (the file journal also reports it when it opens); nothing about the other ids.
    expect(result.problems).toContainEqual(
      expect.objectContaining({ kind: 'journal-corrupted', persistenceId: 'acct-b', sequenceNr: 7 }),
    );
    expect(result.problems.every((p) => p.persistenceId === 'acct-b')).toBe(true);
    // The copy was read back and compared up to the cut: 30 + 6 + 15 events.
    expect(result.verified.events).toBe(51);

    const text = await cli(
      'copy',
      '--salvage',
      '--from',
      source.config,
      '--to',
      fresh.config,
      '--quarantine',
      path.join(root.dir, 'again.jsonl'),
    );
    expect(text.stdout).toContain(
      backend === 'lmdb'
        ? 'salvaged: "acct-b": kept events up to 6 (its highestSequenceNr in the target), unreadable 7, events 8..12 quarantined'
        : 'salvaged: "acct-b": kept events up to 6 (its highestSequenceNr in the target), unreadable 7, nothing after it to quarantine, 5 later event(s) not readable past the damage',
    );

    // The new store verifies clean and the application goes on from 6.
    const verify = await cli('verify', '--config', fresh.config);
    expect(verify.stdout).toContain('OK: no problems found');
    expect(verify.code).toBe(0);
    const target = await openData(fresh);
    try {
      expect(await target.journal.highestSequenceNr('acct-b')).toBe(6);
      expect(await target.journal.append('acct-b', 'after the salvage')).toBe(7);
      expect(await target.snapshots.loadLatest('acct-b')).toBeUndefined();
    } finally {
      await target.close();
    }

    // The quarantine is a dump holding the readable events after the damage, as they were.
    const dump = await DumpReader.open(quarantine);
    const quarantined: JournalEntry[] = [];
    for await (const e of dump.readFrom('acct-b', 1)) quarantined.push(e);
    await dump.close();
    const expected = backend === 'lmdb' ? [8, 9, 10, 11, 12] : [];
    expect(quarantined.map((e) => e.sequenceNr)).toEqual(expected);
    expect(quarantined.map((e) => e.message)).toEqual(expected.map((s) => eventOf('acct-b', s)));
  });

  test('an id whose very first event is damaged keeps nothing, its readable rest goes to the quarantine', async () => {
    const source = await layout(root.dir, backend, 'damaged-first');
    await makeData(source);
    const file =
      backend === 'lmdb'
        ? path.join(source.journal, 'data.mdb')
        : path.join(source.journal, '0000000000000001.log');
    await damageMarker(file, 'MARK-acct-b-1-END');
    const quarantine = path.join(root.dir, 'quarantine-first.jsonl');
    const run = await cli(
      'copy',
      '--salvage',
      '--from',
      source.config,
      '--to-dump',
      path.join(root.dir, 'copy-first.jsonl'),
      '--quarantine',
      quarantine,
      '--json',
    );
    expect(run.code).toBe(1);
    const result = JSON.parse(run.stdout) as SalvageJson;
    const acctB = result.ids.find((i) => i.persistenceId === 'acct-b')!;
    expect(acctB.notCopied).toBeUndefined();
    expect(acctB).toMatchObject({
      eventsCopied: 0,
      snapshotsCopied: 0,
      salvaged:
        backend === 'lmdb'
          ? {
              keptThrough: 0,
              unreadable: [1],
              quarantined: 11,
              quarantinedRange: { first: 2, last: 12 },
              lost: 0,
            }
          : { keptThrough: 0, unreadable: [1], quarantined: 0, lost: 11 },
    });
    // The damage is named once, though the plan met it before the copy read it again.
    const named = result.problems.filter(
      (p) => p.kind === 'journal-corrupted' && p.persistenceId === 'acct-b' && p.sequenceNr === 1,
    );
    expect(named).toHaveLength(1);
    expect(result.verified.events).toBe(30 + 15);
  });

  test('--salvage needs a store as source and a new quarantine file', async () => {
    const source = await damagedStore();
    const fresh = await layout(root.dir, 'file', 'fresh');
    const fromDump = await cli(
      'copy',
      '--salvage',
      '--from-dump',
      path.join(root.dir, 'x.jsonl'),
      '--to',
      fresh.config,
    );
    expect(fromDump.stderr).toMatch(/--salvage copies from a damaged store: it needs --from/);
    expect(fromDump.code).toBe(2);
    const existing = path.join(root.dir, 'damaged.config.json');
    const taken = await cli(
      'copy',
      '--salvage',
      '--from',
      source.config,
      '--to',
      fresh.config,
      '--quarantine',
      existing,
    );
    expect(taken.stderr).toMatch(/already exists; name a new file/);
    expect(taken.code).toBe(2);
    const alone = await cli(
      'copy',
      '--quarantine',
      path.join(root.dir, 'q.jsonl'),
      '--from',
      source.config,
      '--to',
      fresh.config,
    );
    expect(alone.stderr).toMatch(/--quarantine goes with --salvage/);
    expect(alone.code).toBe(2);
  });
});

test('cairn repair on LMDB points the operator at the salvage', async () => {
  const root = await tempDir();
  try {
    const l = await layout(root.dir, 'lmdb');
    await makeData(l);
    await damageMarker(path.join(l.journal, 'data.mdb'), 'MARK-acct-b-7-END');
    const run = await cli('repair', '--truncate-after-corruption', 'acct-b', '--config', l.config);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('cairn copy --salvage --from <this config> --to <a new config>');
  } finally {
    await root.remove();
  }
});
