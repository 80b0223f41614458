#!/usr/bin/env node
import { runCli } from './program';

// `cairn ls | head` closes the pipe early: drop the rest of the output and let the command finish (and
// close what it opened) instead of dying on EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}

// Ctrl-C (or a SIGTERM) ends a command that runs until stopped, such as `events --follow`, cleanly: it
// closes its stores and exits 0. Only such a command catches the signal, and only the first one.
function untilStopped(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
  return controller.signal;
}

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, { untilStopped }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cairn: ${(e as Error)?.stack ?? e}\n`);
    process.exitCode = 1;
  },
);
