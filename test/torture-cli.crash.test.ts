import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type Persistence } from '@cairn/actor-core';

/**
 * cairn-torture never harms an application's data: it runs in a fresh temp directory unless told to use
 * the configured paths, refuses those when they hold other ids unless told twice, and removes what it
 * wrote. Runs the command as a user does (the committed bin script, on a cairn.config.json).
 */
const BIN = path.join(__dirname, '..', 'packages', 'testkit', 'bin', 'cairn-torture.js');

let app: string;
let config: string;
const storeConfig = () => ({
  journal: { provider: 'file', path: path.join(app, 'data', 'journal') },
  snapshots: { provider: 'file', path: path.join(app, 'data', 'snapshots') },
});

async function withStore<T>(body: (p: Persistence) => Promise<T>): Promise<T> {
  const persistence = await createPersistence(storeConfig());
  try {
    return await body(persistence);
  } finally {
    await persistence.close();
  }
}

async function ids(): Promise<string[]> {
  return withStore(async ({ journal }) => {
    const found: string[] = [];
    for await (const id of journal.persistenceIds()) found.push(id);
    return found.sort();
  });
}

function torture(...args: string[]) {
  return spawnSync(
    process.execPath,
    [BIN, '--config', config, '--rounds', '1', '--seed', '7', '--ids', '2', '--corrupt-share', '0', ...args],
    { cwd: app, encoding: 'utf8', timeout: 120_000, env: { ...process.env, TMPDIR: path.join(app, 'tmp') } },
  );
}

beforeEach(async () => {
  app = mkdtempSync(path.join(tmpdir(), 'cairn-torture-app-'));
  config = path.join(app, 'cairn.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      journal: { provider: 'file', path: './data/journal' },
      snapshots: { provider: 'file', path: './data/snapshots' },
    }),
  );
  mkdirSync(path.join(app, 'tmp'));
  await withStore(async ({ journal, snapshots }) => {
    await journal.append('order-1', { type: 'placed' });
    await snapshots.save('order-1', 1, { placed: true });
  });
});
afterEach(() => rmSync(app, { recursive: true, force: true }));

it('runs in a fresh temp directory by default, removes it, and leaves the configured store as it was', async () => {
  const run = torture();
  expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
  expect(run.stderr).toContain('writing to a fresh temp directory');
  expect(run.stdout).toContain('| rounds');
  expect(await ids()).toEqual(['order-1']);
  // Its temp directory (TMPDIR points into the app folder here) is gone.
  expect(readdirSync(path.join(app, 'tmp'))).toEqual([]);
}, 120_000);

it('refuses configured paths that hold other ids, naming them, and writes nothing', async () => {
  const run = torture('--on-configured-paths');
  expect(run.status).toBe(2);
  expect(run.stderr).toContain('"order-1"');
  expect(run.stderr).toContain('--allow-other-ids');
  expect(await ids()).toEqual(['order-1']);
}, 60_000);

it('with --on-configured-paths --allow-other-ids, writes beside the data and removes its own ids afterwards', async () => {
  const run = torture('--on-configured-paths', '--allow-other-ids');
  expect(run.status).toBe(0);
  expect(run.stderr).toContain('cleaned up');
  const after = await ids();
  const own = after.filter((id) => id !== 'order-1');
  expect(own.length).toBeGreaterThan(0);
  expect(own.every((id) => /^torture-[0-9a-f]{8}-\d+$/.test(id))).toBe(true);
  await withStore(async ({ journal, snapshots }) => {
    for (const id of own) {
      const left = [];
      for await (const e of journal.readFrom(id, 1)) left.push(e);
      expect({ id, left }).toEqual({ id, left: [] });
      expect(await snapshots.loadLatest(id)).toBeUndefined();
    }
    const kept = [];
    for await (const e of journal.readFrom('order-1', 1)) kept.push(e.message);
    expect(kept).toEqual([{ type: 'placed' }]);
    expect((await snapshots.loadLatest('order-1'))?.state).toEqual({ placed: true });
  });
  expect(existsSync(path.join(app, 'data', 'journal'))).toBe(true);
}, 120_000);
