import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createPersistence, type MessageJournal, type PersistenceConfig } from '@cairn/actor-core';
import fc from 'fast-check';

/**
 * Model-based testing with crashes: fast-check generates sequences of appends, batches, truncations,
 * reads, closes and reopens, and crashes (a child process appending to the same directory is SIGKILLed
 * after a few acknowledgments), runs them against each disk backend and against a model, and shrinks any
 * difference to a minimal sequence. After a crash the journal may hold more than was acknowledged (appends
 * that were durable but not yet reported), never less, and the extra events must be exactly the child's.
 */
const root = path.join(__dirname, '..');

const backends: Array<[string, (dir: string) => PersistenceConfig]> = [
  ['file', (dir) => ({ journal: { provider: 'file', path: dir }, snapshots: { provider: 'memory' } })],
  ['lmdb', (dir) => ({ journal: { provider: 'lmdb', path: dir }, snapshots: { provider: 'memory' } })],
];

type Command =
  | { kind: 'append'; id: number; count: number }
  | { kind: 'truncate'; id: number; back: number }
  | { kind: 'read'; id: number; from: number }
  | { kind: 'reopen' }
  | { kind: 'crash'; id: number; acks: number };

const commands: fc.Arbitrary<Command[]> = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant('append' as const),
      id: fc.integer({ min: 0, max: 2 }),
      count: fc.integer({ min: 1, max: 4 }),
    }),
    fc.record({
      kind: fc.constant('truncate' as const),
      id: fc.integer({ min: 0, max: 2 }),
      back: fc.integer({ min: 0, max: 3 }),
    }),
    fc.record({
      kind: fc.constant('read' as const),
      id: fc.integer({ min: 0, max: 2 }),
      from: fc.integer({ min: 1, max: 20 }),
    }),
    fc.constant({ kind: 'reopen' as const }),
    fc.record({
      kind: fc.constant('crash' as const),
      id: fc.integer({ min: 0, max: 2 }),
      acks: fc.integer({ min: 1, max: 6 }),
    }),
  ),
  { minLength: 1, maxLength: 12 },
);

/** A child that appends `{ by: 'child', n }` to one id, one at a time, printing each acknowledged sequenceNr. */
function startAppender(config: PersistenceConfig, id: string): ChildProcess {
  const script = `
    const { createPersistence } = require('@cairn/actor-core');
    (async () => {
      const p = await createPersistence(${JSON.stringify(config)});
      for (let n = 0; ; n++) {
        const seq = await p.journal.append(${JSON.stringify(id)}, { by: 'child', n });
        process.stdout.write(seq + '\\n');
      }
    })().catch((e) => { process.stderr.write(String(e && e.stack || e)); process.exit(3); });`;
  return spawn(process.execPath, ['-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the appender until it has acknowledged `acks` appends, then SIGKILLs it; returns the acknowledged sequenceNrs. */
async function crashAfter(config: PersistenceConfig, id: string, acks: number): Promise<number[]> {
  const child = startAppender(config, id);
  const seen: number[] = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) seen.push(Number(line));
      if (seen.length >= acks) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL')
        reject(new Error(`appender ended (${code ?? signal}) before ${acks} acks: ${stderr}`));
      else resolve();
    });
  });
  await new Promise((resolve) =>
    child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.on('exit', resolve),
  );
  return seen;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe.each(backends)('%s journal: model with crashes', (_name, configFor) => {
  it('random sequences with reopen and SIGKILLed writers behave like the model', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (program) => {
        const dir = await mkdtemp(path.join(tmpdir(), 'cairn-model-crash-'));
        const config = configFor(dir);
        const model = new Map<string, { highest: number; messages: Map<number, unknown> }>();
        const log = (id: string) => {
          const l = model.get(id) ?? { highest: 0, messages: new Map<number, unknown>() };
          model.set(id, l);
          return l;
        };
        let persistence = await createPersistence(config);
        let journal: MessageJournal = persistence.journal;
        let counter = 0;
        try {
          for (const command of program) {
            if (command.kind === 'reopen' || command.kind === 'crash') {
              await persistence.close();
              if (command.kind === 'crash') {
                const id = `id-${command.id}`;
                const acked = await crashAfter(config, id, command.acks);
                persistence = await createPersistence(config);
                journal = persistence.journal;
                const l = log(id);
                // Everything acknowledged is there; what follows it (durable, not yet reported) is the child's.
                const highest = await journal.highestSequenceNr(id);
                expect(highest).toBeGreaterThanOrEqual(acked[acked.length - 1]!);
                const entries = await collect(journal.readFrom(id, l.highest + 1));
                expect(entries.map((e) => e.sequenceNr)).toEqual(
                  Array.from({ length: highest - l.highest }, (_, i) => l.highest + 1 + i),
                );
                expect(entries.map((e) => e.message)).toEqual(entries.map((_, n) => ({ by: 'child', n })));
                for (const e of entries) l.messages.set(e.sequenceNr, e.message);
                l.highest = highest;
              } else {
                persistence = await createPersistence(config);
                journal = persistence.journal;
              }
              continue;
            }
            const id = `id-${command.id}`;
            const l = log(id);
            if (command.kind === 'append') {
              const messages = Array.from({ length: command.count }, () => ({ n: counter++ }));
              const seqs = await journal.appendBatch(id, messages, { expectedSequenceNr: l.highest });
              for (const [i, seq] of seqs.entries()) l.messages.set(seq, messages[i]);
              expect(seqs[0]).toBe(l.highest + 1);
              l.highest = seqs[seqs.length - 1]!;
            } else if (command.kind === 'truncate') {
              const before = Math.max(1, l.highest + 1 - command.back);
              await journal.truncateBefore(id, before);
              for (const seq of [...l.messages.keys()]) if (seq < before) l.messages.delete(seq);
            } else {
              const got = (await collect(journal.readFrom(id, command.from))).map((e) => [
                e.sequenceNr,
                e.message,
              ]);
              const want = [...l.messages.entries()]
                .filter(([seq]) => seq >= command.from)
                .sort((a, b) => a[0] - b[0]);
              expect(got).toEqual(want);
              expect(await journal.highestSequenceNr(id)).toBe(l.highest);
            }
          }
        } finally {
          await persistence.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 6 },
    );
    // ~18 s on an idle 2-core machine (six programs, each with SIGKILLed child writers); room for a busy one.
  }, 120_000);
});
