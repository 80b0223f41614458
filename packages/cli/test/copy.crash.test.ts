import { type ChildProcess, spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { CLI_DIST, cli, type DataLayout, eventOf, layout, openData, tempDir } from './cli-fixtures';

const IDS = 60;
const EVENTS = 150;

/** Enough data that a copy takes a while: IDS ids of EVENTS events, a snapshot every 50. */
async function makeBigData(l: DataLayout): Promise<void> {
  const { journal, snapshots, close } = await openData(l);
  try {
    await Promise.all(
      Array.from({ length: IDS }, async (_, n) => {
        const id = `big-${String(n).padStart(3, '0')}`;
        for (let seq = 1; seq <= EVENTS; seq += 50) {
          await journal.appendBatch(
            id,
            Array.from({ length: 50 }, (_, i) => eventOf(id, seq + i)),
          );
          await snapshots.save(id, seq + 49, { upTo: seq + 49, pad: 'x'.repeat(200) });
        }
      }),
    );
  } finally {
    await close();
  }
}

/** Starts the built CLI and SIGKILLs it once `ready` says so (or it exits by itself first). */
async function killWhen(argv: string[], ready: () => Promise<boolean>): Promise<{ killed: boolean }> {
  const child: ChildProcess = spawn(process.execPath, [CLI_DIST, ...argv], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let killed = false;
  for (;;) {
    const done = await Promise.race([
      exited.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 5)),
    ]);
    if (done) break;
    if (await ready()) {
      killed = child.kill('SIGKILL');
      await exited;
      break;
    }
  }
  return { killed };
}

function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

describe('cairn copy killed with SIGKILL, then run again', () => {
  let root: { dir: string; remove: () => Promise<void> };
  let source: DataLayout;
  beforeAll(async () => {
    root = await tempDir();
    // A file journal: the killed copy leaves its lock, which the rerun takes over (its holder is provably dead).
    source = await layout(root.dir, 'file', 'source');
    await makeBigData(source);
  });
  afterAll(() => root.remove());

  test('to a dump: the second run finishes it, and it verifies equal to the source', async () => {
    const dump = path.join(root.dir, 'big.jsonl');
    const { killed } = await killWhen(
      ['copy', '--from', source.config, '--to-dump', dump],
      async () => (await sizeOf(dump)) > 200_000,
    );
    expect(killed).toBe(true);
    const run = await cli('copy', '--from', source.config, '--to-dump', dump, '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.verified).toEqual({ events: IDS * EVENTS, snapshots: IDS * 3 });
    // Some of it was there from the killed run, the rest came now; nothing twice (the read-back rejects repeats).
    const before = result.ids.reduce(
      (n: number, i: { eventsAlreadyThere: number }) => n + i.eventsAlreadyThere,
      0,
    );
    expect(before).toBeGreaterThan(0);
    expect(before + result.eventsCopied).toBe(IDS * EVENTS);
  });

  test('to an lmdb journal: the second run appends the rest, numbering and content equal to the source', async () => {
    const target = await layout(root.dir, 'lmdb', 'target', { durable: true });
    const data = path.join(target.journal, 'data.mdb');
    // One synced transaction per event: thousands of syncs, so the copy is still running when it is killed.
    // Killed once data.mdb has grown well past a fresh environment's ~40 KB (hundreds of events in), not
    // after a fixed time, which on a loaded machine could pass before the first event was copied.
    const { killed } = await killWhen(
      ['copy', '--from', source.config, '--to', target.config, '--chunk', '1'],
      async () => (await sizeOf(data)) > 300_000,
    );
    expect(killed).toBe(true);
    const run = await cli('copy', '--from', source.config, '--to', target.config, '--json');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.problems).toEqual([]);
    // Both runs wrote in the source's global order, the second continuing where the killed one stopped.
    expect(result.verified).toEqual({
      events: IDS * EVENTS,
      snapshots: IDS * 3,
      inGlobalOrder: IDS * EVENTS,
    });
    const before = result.ids.reduce(
      (n: number, i: { eventsAlreadyThere: number }) => n + i.eventsAlreadyThere,
      0,
    );
    expect(before).toBeGreaterThan(0);
    expect(before + result.eventsCopied).toBe(IDS * EVENTS);
    expect((await cli('verify', '--config', target.config)).code).toBe(0);
  });
});
