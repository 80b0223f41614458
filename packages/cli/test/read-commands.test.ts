import { type ChildProcess, spawn } from 'node:child_process';
import { canQuery, createPersistence, keepsProjectionRecords, type MessageJournal } from '@cairn/actor-core';
import { runProjection } from '@cairn/projection';
import { BACKENDS, CLI_DIST, cli, type DataLayout, layout, tempDir } from './cli-fixtures';

/** Opens the layout's stores for writing, as the application would. */
async function openApp(l: DataLayout) {
  const persistence = await createPersistence({
    journal: { provider: l.backend, path: l.journal },
    snapshots: { provider: 'memory' },
  });
  if (!canQuery(persistence.journal)) {
    await persistence.close();
    throw new Error(`${l.backend} offers no queries`);
  }
  return { ...persistence, query: persistence.journal };
}

/** Whether the backend's journal offers queries at all; the tests below need them. */
async function offersQueries(l: DataLayout): Promise<boolean> {
  const persistence = await createPersistence({
    journal: { provider: l.backend, path: l.journal },
    snapshots: { provider: 'memory' },
  });
  try {
    return canQuery(persistence.journal);
  } finally {
    await persistence.close();
  }
}

/** a1 a2 (bank, deposit), b1 (bank), c1 (untagged), a3 (bank, deposit), in that order. */
async function makeTaggedData(journal: MessageJournal): Promise<void> {
  await journal.appendBatch('acct-a', [{ n: 'a1' }, { n: 'a2' }], { tags: ['bank', 'deposit'] });
  await journal.append('acct-b', { n: 'b1' }, { tags: ['bank'] });
  await journal.append('other-c', { n: 'c1' });
  await journal.append('acct-a', { n: 'a3' }, { tags: ['bank', 'deposit'] });
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

describe.each(BACKENDS)('cairn read commands on the %s backend', (backend) => {
  let root: { dir: string; remove: () => Promise<void> };
  let l: DataLayout;
  let queries = false;
  /** True (after printing why) when the backend offers no queries yet: the test then has nothing to check. */
  const noQueries = (): boolean => {
    if (!queries) console.log(`skipped on ${backend}: its journal does not declare capabilities.query`);
    return !queries;
  };

  beforeAll(async () => {
    root = await tempDir();
    l = await layout(root.dir, backend);
    queries = await offersQueries(l);
    if (!queries) return;
    const app = await openApp(l);
    try {
      await makeTaggedData(app.journal);
    } finally {
      await app.close();
    }
  });
  afterAll(() => root.remove());

  test('events <id> shows each event\'s tags (a "-" column for none), and --json carries them', async () => {
    if (noQueries()) return;
    const text = await cli('events', 'acct-a', '--journal', l.journal);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^1\t\S+Z\tbank,deposit\t\{ n: 'a1' \}$/);
    const untagged = await cli('events', 'other-c', '--journal', l.journal);
    expect(untagged.stdout).toMatch(/^1\t\S+Z\t-\t\{ n: 'c1' \}\n$/);
    const json = jsonLines((await cli('events', 'acct-a', '--journal', l.journal, '--json')).stdout);
    expect(json.map((e) => e.tags)).toEqual([
      ['bank', 'deposit'],
      ['bank', 'deposit'],
      ['bank', 'deposit'],
    ]);
  });

  test('events --all: every event in the global order with its offset; --after continues a listing; --max', async () => {
    if (noQueries()) return;
    const all = await cli('events', '--all', '--journal', l.journal, '--json');
    expect(all.code).toBe(0);
    const events = jsonLines(all.stdout);
    expect(events.map((e) => (e.message as { n: string }).n)).toEqual(['a1', 'a2', 'b1', 'c1', 'a3']);
    expect(events.map((e) => e.tags)).toEqual([
      ['bank', 'deposit'],
      ['bank', 'deposit'],
      ['bank'],
      [],
      ['bank', 'deposit'],
    ]);
    expect(new Set(events.map((e) => e.offset)).size).toBe(5);
    const rest = await cli(
      'events',
      '--all',
      '--after',
      String(events[2]!.offset),
      '--journal',
      l.journal,
      '--json',
    );
    expect(jsonLines(rest.stdout).map((e) => (e.message as { n: string }).n)).toEqual(['c1', 'a3']);
    const two = await cli('events', '--all', '--max', '2', '--journal', l.journal);
    const lines = two.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(
        `^${String(events[0]!.offset).replace(/[^\w]/g, '\\$&')}\tacct-a\t1\t\\S+Z\tbank,deposit\t\\{ n: 'a1' \\}$`,
      ),
    );
    const none = await cli('events', '--all', '--after', String(events[4]!.offset), '--journal', l.journal);
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toContain('no events after');
  });

  test('events --tag T: only the events stored with T, in the global order', async () => {
    if (noQueries()) return;
    const run = await cli('events', '--tag', 'deposit', '--journal', l.journal, '--json');
    expect(run.code).toBe(0);
    expect(jsonLines(run.stdout).map((e) => (e.message as { n: string }).n)).toEqual(['a1', 'a2', 'a3']);
    const bank = await cli('events', '--tag', 'bank', '--journal', l.journal, '--json');
    expect(jsonLines(bank.stdout).map((e) => (e.message as { n: string }).n)).toEqual([
      'a1',
      'a2',
      'b1',
      'a3',
    ]);
  });

  test('events: usage errors (exit 2) for a missing or doubled selection, --from with --all, a garbled offset', async () => {
    if (noQueries()) return;
    for (const argv of [
      ['events'],
      ['events', 'acct-a', '--all'],
      ['events', '--all', '--tag', 'x'],
      ['events', '--all', '--from', '2'],
      ['events', '--all', '--after', 'not-an-offset'],
      ['events', '--tag', ''],
    ]) {
      const run = await cli(...argv, '--journal', l.journal);
      expect({ argv, code: run.code }).toEqual({ argv, code: 2 });
      expect(run.stderr).toMatch(/^cairn: /);
    }
  });

  test('events --all --follow, in another process, prints what the running application commits; Ctrl-C ends it with 0', async () => {
    if (noQueries()) return;
    const app = await openApp(l);
    let child: ChildProcess | undefined;
    try {
      const head = await app.query.headOffset();
      child = spawn(
        process.execPath,
        [CLI_DIST, 'events', '--all', '--follow', '--after', String(head), '--journal', l.journal, '--json'],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
      const follows = (app.journal as { capabilities?: { foreignCommits?: boolean } }).capabilities
        ?.foreignCommits;
      if (follows !== true) {
        // A backend whose journal cannot notice another process's commits refuses, saying why.
        expect(await exited).toBe(3);
        expect(stderr).toContain('does not see events another process commits');
        console.log(`skipped the follow itself on ${backend}: its journal does not notice foreign commits`);
        return;
      }
      // Give the child time to open, then write as the application does.
      await new Promise((r) => setTimeout(r, 1500));
      await app.journal.append('acct-live', { n: 'live-1' }, { tags: ['live'] });
      await app.journal.append('acct-live', { n: 'live-2' });
      const deadline = Date.now() + 15_000;
      while (jsonLines(stdout).length < 2 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(jsonLines(stdout).map((e) => (e.message as { n: string }).n)).toEqual(['live-1', 'live-2']);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      await app.close();
    }
  }, 40_000);

  test('projections: lists name, state, offset, events behind and lag; skip passes a poison event; reset moves the offset', async () => {
    if (noQueries()) return;
    const app = await openApp(l);
    if (!app.offsets) throw new Error(`${backend} keeps no offsets`);
    const records = keepsProjectionRecords(app.offsets);
    try {
      const handle = await runProjection({
        name: 'deposits',
        query: app.query,
        source: { tag: 'bank' },
        offsets: app.offsets,
        maxRetries: 0,
        handler: (e) => {
          if ((e.message as { n: string }).n === 'b1') throw new Error('cannot handle b1');
        },
      });
      expect((await handle.done).state).toBe('failed');
    } finally {
      await app.close();
    }
    // Every built-in provider's offset store keeps projection records (names, states, a lock per name).
    expect(records).toBe(true);
    const listed = await cli('projections', '--journal', l.journal, '--json');
    expect(listed.code).toBe(0);
    const [info] = JSON.parse(listed.stdout);
    expect(info).toMatchObject({ name: 'deposits', state: 'failed', behind: 2, source: { tag: 'bank' } });
    const text = await cli('projections', '--journal', l.journal);
    expect(text.stdout).toMatch(/^NAME\s+STATE\s+OFFSET\s+BEHIND\s+LAG\s+SOURCE/);
    expect(text.stdout).toMatch(/deposits\s+failed\s+\S+\s+2\s/);
    expect(text.stdout).toContain('deposits: failed at acct-b #1');

    const skipped = await cli('projections', 'skip', 'deposits', '--journal', l.journal);
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toContain('skipped acct-b #1');
    expect(skipped.stderr).toContain('"b1"');
    const after = JSON.parse((await cli('projections', '--journal', l.journal, '--json')).stdout)[0];
    expect(after).toMatchObject({ state: 'stopped', behind: 1 });

    const reset = await cli('projections', 'reset', 'deposits', '--journal', l.journal);
    expect(reset.code).toBe(0);
    expect(JSON.parse((await cli('projections', '--journal', l.journal, '--json')).stdout)[0]).toMatchObject({
      behind: 4,
      offset: null,
      note: null,
    });
    const bad = await cli('projections', 'reset', 'deposits', '--to', 'garbage', '--journal', l.journal);
    expect(bad.code).toBe(2);
    const unknown = await cli('projections', 'skip', 'nobody', '--journal', l.journal);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no projection "nobody"');
  });
});
