import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { PersistenceReport } from '@cairn/actor-core';
import { FileSnapshotStore, TEMP_DIRECTORY } from '@cairn/snapshot';

/*
 * The durability claim, proven: a child process saves snapshots (fsync on, the default) and prints each
 * save that resolved; it is killed with SIGKILL at an arbitrary moment, mid-save for some ids. On reopen,
 * every acknowledged save must load and verify (the replacement, when a replacement at one sequenceNr was
 * acknowledged), nothing may be reported corrupt, and no temp file may remain.
 */

const writer = path.join(__dirname, 'fixtures', 'snapshot-crash-writer.js');

const IDS = 4;
const STATE_BYTES = 16 * 1024;
const ACKS_BEFORE_KILL = [25, 60, 40];

function crashState(i: number, seq: number, version: number) {
  return { id: i, seq, version, fill: `${i}:${seq}:${version}:`.padEnd(STATE_BYTES, 'x') };
}

/** Runs the writer until it has acknowledged `acks` saves, then SIGKILLs it; resolves to the acks seen. */
function runAndKill(
  dir: string,
  firstSequenceNr: number,
  acks: number,
  fsync: boolean,
): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [writer, dir, String(IDS), String(firstSequenceNr), String(STATE_BYTES), String(fsync)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const acked = new Map<string, number>(); // "<i> <seq>" -> highest acknowledged version
    let count = 0;
    let pending = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the writer acknowledged only ${count} saves in 20 s; stderr: ${stderr}`));
    }, 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, i, seq, version] = line.split(' ');
        if (kind !== 'ack') continue;
        const key = `${i} ${seq}`;
        acked.set(key, Math.max(acked.get(key) ?? 0, Number(version)));
        if (++count === acks) child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && count >= acks) resolve(acked);
      else reject(new Error(`the writer exited early (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

describe('FileSnapshotStore crash safety', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-snapshot-crash-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  // fsync: false makes the same promise for a process crash (the page cache survives it), not for power loss.
  it.each([
    ['fsync: true', true, ACKS_BEFORE_KILL],
    ['fsync: false', false, ACKS_BEFORE_KILL.slice(0, 2)],
  ])(
    '%s: keeps every acknowledged save across SIGKILLs, serves nothing torn, leaves no temp file',
    async (_, fsync, kills) => {
      const allAcked = new Map<string, number>();
      for (const [round, acks] of kills.entries()) {
        const acked = await runAndKill(dir, round * 1000 + 1, acks, fsync);
        for (const [key, version] of acked) allAcked.set(key, version);

        const reports: PersistenceReport[] = [];
        const store = await FileSnapshotStore.open<ReturnType<typeof crashState>>({
          path: dir,
          ioThreads: 1,
          reporter: (r) => reports.push(r),
        });
        try {
          expect(fs.readdirSync(path.join(dir, TEMP_DIRECTORY))).toEqual([]);
          for (const [key, version] of allAcked) {
            const [i, seq] = key.split(' ').map(Number) as [number, number];
            const loaded = await store.loadLatest(`crash-${i}`, { maxSequenceNr: seq });
            expect(loaded?.sequenceNr).toBe(seq);
            // The acknowledged version, or a replacement at this sequenceNr that was in flight at the kill.
            expect(loaded?.state.version).toBeGreaterThanOrEqual(version);
            expect(loaded?.state).toEqual(crashState(i, seq, loaded?.state.version ?? -1));
          }
          // Nothing on disk is torn: every snapshot file of every id verifies.
          for (let i = 0; i < IDS; i++) {
            let seq: number | undefined = Number.MAX_SAFE_INTEGER;
            while (seq !== undefined) {
              const loaded = await store.loadLatest(`crash-${i}`, { maxSequenceNr: seq });
              seq = loaded ? loaded.sequenceNr - 1 : undefined;
              if (seq === 0) seq = undefined;
            }
          }
          // The killed writer held the store's lock: taking it over is reported, and nothing else.
          const expected = new Set(['snapshot-temp-removed', 'stale-lock-taken']);
          expect(reports.filter((r) => !expected.has(r.kind))).toEqual([]);
        } finally {
          await store.close();
        }
      }
      expect(allAcked.size).toBeGreaterThan(kills.length * 10);
    },
  );
});
