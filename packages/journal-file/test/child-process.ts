/** Test support: spawn a fixture script (plain node, built package) and wait for a line of its output. */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

export function spawnFixture(
  script: string,
  args: readonly string[],
): ChildProcess & { output: () => string; errors: () => string } {
  const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
  });
  return Object.assign(child, { output: () => out, errors: () => err });
}

/** Resolves once the child printed a line starting with `prefix`; rejects if it exits first. */
export function waitForLine(child: ChildProcess, prefix: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => finish(new Error(`no "${prefix}" line within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (s: string) => {
      buffered += s;
      const line = buffered.split('\n').find((l) => l.startsWith(prefix));
      if (line !== undefined) finish(undefined, line);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`child exited (${code ?? signal}) before printing "${prefix}"`));
    const finish = (error: Error | undefined, line?: string) => {
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(line!);
    };
    child.stdout!.on('data', onData);
    child.on('exit', onExit);
  });
}

export function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
