import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { canQuery, createPersistence, type EventEnvelope } from '@cairn/actor-core';
import type { AccountEvent } from '../src/accounts';
import { applyEvent, emptyReadModel, type ReadModelData } from '../src/read-model';

const MAIN = path.resolve(__dirname, '../dist/main.js');

interface Run {
  readonly ops: number;
  readonly killed: boolean;
  readonly stdout: string;
}

/** Runs the example; with `killAfter`, SIGKILLs it once it has printed that many operations. */
function runExample(args: readonly string[], killAfter?: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let ops = 0;
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      ops = stdout.split('\n').filter((l) => l.startsWith('op ')).length;
      if (killAfter !== undefined && ops >= killAfter && child.exitCode === null && !child.killed) {
        child.kill('SIGKILL');
      }
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ ops, killed: true, stdout });
      else if (code === 0 && killAfter === undefined) resolve({ ops, killed: false, stdout });
      else reject(new Error(`the example exited with ${code ?? signal}:\n${stdout}\n${stderr}`));
    });
  });
}

/** What a projection from scratch computes: every `bank` event, folded in the journal's order. */
async function freshReplay(dir: string): Promise<ReadModelData> {
  const persistence = await createPersistence({
    journal: { provider: 'lmdb', path: path.join(dir, 'journal'), readOnly: true },
    snapshots: { provider: 'memory' },
  });
  try {
    const journal = persistence.journal;
    if (!canQuery(journal)) throw new Error('the lmdb journal offers no queries');
    const model = emptyReadModel();
    let events = 0;
    for await (const e of journal.eventsByTag('bank')) {
      expect(applyEvent(model, e as EventEnvelope<AccountEvent>)).toBe(true);
      events++;
    }
    expect(events).toBeGreaterThan(0);
    return model;
  } finally {
    await persistence.close();
  }
}

test('the read model, killed mid-way and restarted, equals a fresh replay of the journal', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-read-model-'));
  try {
    const first = await runExample(['--data', dir, '--ops', '400'], 120);
    expect(first.killed).toBe(true);
    // The restart continues the business where the acknowledged operations ended and catches up.
    const second = await runExample(['--data', dir, '--ops', '60', '--first', String(first.ops)]);
    expect(second.stdout).toContain('read model matches the accounts');
    const stored = JSON.parse(await readFile(path.join(dir, 'read-model.json'), 'utf8')) as ReadModelData;
    expect(stored).toEqual(await freshReplay(dir));
    expect(Object.keys(stored.balances).length).toBe(5);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 120_000);
