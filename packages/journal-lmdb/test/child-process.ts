import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

const CHILD = path.join(__dirname, 'fixtures', 'journal-child.js');

export interface Child {
  readonly process: ChildProcess;
  /** Acknowledged [id, sequenceNr] pairs printed so far. */
  readonly acks: Array<[string, number]>;
  /** Every stdout line. */
  readonly lines: string[];
  readonly stderr: () => string;
  /** Resolves with the exit code or signal. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Resolves once `count` acks were printed (rejects if the child exits first). */
  waitForAcks(count: number): Promise<void>;
  /** Resolves once the child printed `line` (rejects if it exits first). */
  waitForLine(line: string): Promise<void>;
}

export function spawnChild(args: readonly string[]): Child {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const acks: Array<[string, number]> = [];
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const lineWaiters: Array<{ line: string; resolve: () => void }> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      const m = /^ack (\S+) (\d+)$/.exec(line);
      if (m) acks.push([m[1]!, Number(m[2])]);
    }
    for (const w of lineWaiters.splice(0)) {
      if (lines.includes(w.line)) w.resolve();
      else lineWaiters.push(w);
    }
    for (const w of waiters.splice(0)) {
      if (acks.length >= w.count) w.resolve();
      else waiters.push(w);
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.on('exit', (code, signal) => resolve(signal ?? code ?? -1));
  });
  return {
    process: child,
    acks,
    lines,
    stderr: () => stderr,
    exited,
    waitForAcks: (count) =>
      Promise.race([
        new Promise<void>((resolve) => {
          if (acks.length >= count) resolve();
          else waiters.push({ count, resolve });
        }),
        exited.then((how) => {
          if (acks.length < count)
            throw new Error(`child exited (${how}) after ${acks.length} acks: ${stderr}`);
        }),
      ]),
    waitForLine: (line) =>
      Promise.race([
        new Promise<void>((resolve) => {
          if (lines.includes(line)) resolve();
          else lineWaiters.push({ line, resolve });
        }),
        exited.then((how) => {
          if (!lines.includes(line))
            throw new Error(`child exited (${how}) before printing "${line}": ${stderr}`);
        }),
      ]),
  };
}
