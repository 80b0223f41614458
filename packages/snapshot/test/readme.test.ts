import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

/*
 * The README's example is run, as a user would run it (plain Node, the built package): a snippet that no
 * test runs drifts. Its `// expected output (remark)` comments are the assertions.
 */

const packageRoot = path.join(__dirname, '..');
const readme = fs.readFileSync(path.join(packageRoot, 'README.md'), 'utf8');

function example(): string {
  const marker = readme.indexOf('<!-- readme-example');
  const start = readme.indexOf('```ts\n', marker);
  const end = readme.indexOf('```\n', start + 6);
  if (marker < 0 || start < 0 || end < 0) throw new Error('README.md has no marked ```ts example');
  return readme.slice(start + 6, end);
}

describe('README example', () => {
  it('runs and prints what its comments say', () => {
    const source = example();
    const expected = [...source.matchAll(/console\.log\(.*\); \/\/ (.*?)(?: \(.*\))?$/gm)].map((m) => m[1]);
    expect(expected).toHaveLength(3);
    const { outputText, diagnostics } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      reportDiagnostics: true,
    });
    expect(diagnostics).toEqual([]);
    // Inside the package, so that '@cairn/snapshot' resolves as it does for an installed user.
    const script = path.join(packageRoot, `.readme-example-${process.pid}.mjs`);
    fs.writeFileSync(script, outputText);
    try {
      const output = execFileSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
      expect(output.trim().split('\n')).toEqual(expected);
    } finally {
      fs.rmSync(script, { force: true });
    }
  });
});
