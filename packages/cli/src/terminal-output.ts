import type { Problem } from './verify';
import { formatProblem } from './verify';

/** Where `cairn` writes: stdout for results, stderr for progress and diagnostics. */
export interface CliOutput {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** One line of text. */
export function line(out: NodeJS.WritableStream, text = ''): void {
  out.write(`${text}\n`);
}

/** Problems on stdout, one indented line each. */
export function printProblems(out: CliOutput, problems: readonly Problem[]): void {
  for (const p of problems) line(out.stdout, `  ${formatProblem(p)}`);
}
