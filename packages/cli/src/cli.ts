#!/usr/bin/env node
import { runCli } from './program';

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`cairn: ${(e as Error)?.stack ?? e}\n`);
    process.exitCode = 1;
  },
);
