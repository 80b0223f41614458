import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ActorSystem, isPersistenceError } from '@cairn/actor-core';
import { type AccountReply, bankAccount, type Recovery } from '../src/bank';

const WRITER = path.resolve(__dirname, '../dist/crash-writer.js');

/** Runs the writer until it acknowledged `acks` deposits, then SIGKILLs it; resolves to the acked balances. */
function writeUntilKilled(env: NodeJS.ProcessEnv, acks: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [WRITER, '16'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: number[] = [];
    let buffered = '';
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.startsWith('ack ')) acked.push(Number(line.slice(4)));
      if (acked.length >= acks && child.exitCode === null && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL') resolve(acked);
      else reject(new Error(`the writer exited by itself before the kill:\n${stderr}`));
    });
  });
}

/** Opens the killed writer's storage (its lock goes stale after lockStaleMs) and recovers the account. */
async function recoverAccount(dir: string): Promise<{ balance: number; recovery: Recovery }> {
  const persistence = {
    journal: { provider: 'file', path: path.join(dir, 'journal'), lockStaleMs: 2000 },
    snapshots: { provider: 'file', path: path.join(dir, 'snapshots') },
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const system = await ActorSystem.create({ persistence, reporter: () => undefined });
      try {
        let recovery: Recovery | undefined;
        const ref = await system.spawn(bankAccount('crash', (r) => (recovery = r)));
        const reply = await ref.ask<AccountReply>({ type: 'balance' });
        if (!reply.ok || !recovery) throw new Error('no balance after recovery');
        return { balance: reply.balance, recovery };
      } finally {
        await system.terminate();
      }
    } catch (e) {
      if (!isPersistenceError(e, 'ERR_JOURNAL_LOCKED') || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

describe('bank-account under SIGKILL (file backend)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cairn-bank-crash-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps every acknowledged deposit, and the balance is exactly the deposits stored', async () => {
    const env = {
      ...process.env,
      CAIRN_JOURNAL_PATH: path.join(dir, 'journal'),
      CAIRN_SNAPSHOTS_PATH: path.join(dir, 'snapshots'),
    };
    const acked = await writeUntilKilled(env, 300);
    const highestAcked = Math.max(...acked);
    expect(highestAcked).toBeGreaterThanOrEqual(300);
    const { balance, recovery } = await recoverAccount(dir);
    // Every acked deposit survived; unacknowledged ones in flight (at most 16) may or may not have.
    expect(balance).toBeGreaterThanOrEqual(highestAcked);
    expect(balance).toBeLessThanOrEqual(highestAcked + 16);
    expect(recovery.fromSnapshot).toBeDefined();
    expect(recovery.fromSnapshot! + recovery.replayed).toBe(balance);
  });
});
