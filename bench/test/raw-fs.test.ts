import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { captureResources, expectNoLeakedResources } from '@cairn/testkit';
import { type DepositEvent, depositEvent, depositEvents } from '../src/payload';
import { RawFsStore } from '../src/systems/raw-fs';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bench-raw-fs-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readAll(store: RawFsStore, id: string, from = 1): Promise<DepositEvent[]> {
  const events: DepositEvent[] = [];
  await store.replay(id, from, (e) => events.push(e));
  return events;
}

test('appends arriving during an fdatasync share the next one (group commit)', async () => {
  const store = await RawFsStore.open(dir, { durable: true });
  const datasyncs: number[] = [];
  const probe = await open(path.join(dir, 'probe'), 'w');
  const fileHandlePrototype = Object.getPrototypeOf(probe);
  await probe.close();
  const spy = jest.spyOn(fileHandlePrototype, 'datasync').mockImplementation(async function (this: unknown) {
    datasyncs.push(Date.now());
    await new Promise((resolve) => setTimeout(resolve, 5));
  });
  try {
    await Promise.all(
      Array.from({ length: 20 }, async (_, n) => {
        for (let i = 1; i <= 10; i++) await store.append(`id-${n}`, depositEvent(i, n));
      }),
    );
  } finally {
    spy.mockRestore();
  }
  // 200 appends from 20 concurrent writers: one fdatasync per round of writers, not one per append.
  expect(datasyncs.length).toBeGreaterThanOrEqual(10);
  expect(datasyncs.length).toBeLessThanOrEqual(12);
  for (let n = 0; n < 20; n++) {
    expect((await readAll(store, `id-${n}`)).map((e) => e.amount)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }
  await store.close();
});

test('replay reads back batches and single appends in order, from any sequenceNr, also after reopening', async () => {
  let store = await RawFsStore.open(dir, { durable: true });
  await store.appendBatch('a', depositEvents(1, 3000, 1));
  await store.append('b', depositEvent(1, 2));
  await store.append('a', depositEvent(3001, 1));
  await store.close();

  store = await RawFsStore.open(dir, { durable: true });
  const a = await readAll(store, 'a');
  expect(a).toHaveLength(3001);
  expect(a.every((e, k) => e.amount === k + 1 && e.account === 'acct-1')).toBe(true);
  expect((await readAll(store, 'a', 2999)).map((e) => e.amount)).toEqual([2999, 3000, 3001]);
  expect(await readAll(store, 'b')).toEqual([depositEvent(1, 2)]);
  expect(await readAll(store, 'unknown')).toEqual([]);
  // Appends after a reopen continue the id's sequence numbers.
  await store.append('b', depositEvent(2, 2));
  expect((await readAll(store, 'b', 2)).map((e) => e.amount)).toEqual([2]);
  await store.close();
});

test('replay of ids whose frames are interleaved reads each id back in order (W4b shape)', async () => {
  let store = await RawFsStore.open(dir, { durable: false });
  for (let first = 1; first <= 20; first += 5) {
    for (let n = 0; n < 3; n++) await store.appendBatch(`id-${n}`, depositEvents(first, 5, n));
  }
  await store.close();
  store = await RawFsStore.open(dir, { durable: true });
  for (let n = 0; n < 3; n++) {
    const events = await readAll(store, `id-${n}`);
    expect(events.map((e) => e.amount)).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
    expect(events.every((e) => e.account === `acct-${n}`)).toBe(true);
  }
  expect((await readAll(store, 'id-1', 9)).map((e) => e.amount)).toEqual([
    9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
  ]);
  await store.close();
});

test('a torn tail (a frame cut short by a crash) is cut back on open', async () => {
  let store = await RawFsStore.open(dir, { durable: true });
  await store.appendBatch('a', depositEvents(1, 5, 1));
  await store.close();
  const log = path.join(dir, 'events.log');
  const intact = (await stat(log)).size;
  const bytes = await readFile(log);
  // The start of a second copy of the frame, as if the process died mid-write.
  await writeFile(log, Buffer.concat([bytes, bytes.subarray(0, 20)]));

  store = await RawFsStore.open(dir, { durable: true });
  expect(await readAll(store, 'a')).toHaveLength(5);
  expect((await stat(log)).size).toBe(intact);
  await store.close();
});

test('a damaged frame is reported with its offset, never served', async () => {
  const store = await RawFsStore.open(dir, { durable: true });
  await store.appendBatch('a', depositEvents(1, 5, 1));
  await store.appendBatch('a', depositEvents(6, 5, 1));
  await store.close();
  const log = path.join(dir, 'events.log');
  const bytes = await readFile(log);
  bytes[40] = (bytes[40] as number) ^ 0xff;
  await writeFile(log, bytes);

  const before = captureResources();
  await expect(RawFsStore.open(dir, { durable: true })).rejects.toThrow(
    /corrupt frame at offset 0 of events\.log/,
  );
  await expectNoLeakedResources(before, 200);
});

test('close() leaves no file open', async () => {
  const before = captureResources();
  const store = await RawFsStore.open(dir, { durable: true });
  await Promise.all([store.append('a', depositEvent(1, 1)), store.snapshots.save('a', 1, { balance: 1 })]);
  await store.close();
  await expectNoLeakedResources(before, 200);
});

test('snapshots round-trip, the newest save wins, and a damaged one is reported', async () => {
  const store = await RawFsStore.open(dir, { durable: true });
  expect(await store.snapshots.load('a')).toBeUndefined();
  await store.snapshots.save('a', 10, { balance: 55 });
  await store.snapshots.save('a', 20, { balance: 210 });
  await store.snapshots.save('x/y', 1, { balance: 1 });
  expect(await store.snapshots.load('a')).toEqual({ sequenceNr: 20, state: { balance: 210 } });
  expect(await store.snapshots.load('x/y')).toEqual({ sequenceNr: 1, state: { balance: 1 } });

  const file = path.join(dir, 'snapshots', 'a.snap');
  const bytes = await readFile(file);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
  await writeFile(file, bytes);
  await expect(store.snapshots.load('a')).rejects.toThrow(/corrupt snapshot of a/);
  await store.close();
});
