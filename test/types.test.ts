import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * The runtime's types as a user's app sees them: tsc --strict over test/types/*.ts, resolving
 * `@cairn/actor-core` to the built package (its .d.ts files). cart.ts (a shopping cart written as the
 * actor-core README shows, no type arguments in the handler) must compile cleanly; cart-errors.ts holds
 * mistakes the types must catch, each marked by an `// error "text":` comment.
 */
const root = path.join(__dirname, '..');
const folder = path.join(__dirname, 'types');

function diagnosticsOf(file: string): Array<{ line: number; text: string }> {
  const program = ts.createProgram([path.join(folder, file)], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    skipLibCheck: true,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => ({
    line: d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0,
    text: `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`,
  }));
}

it('a cart written without type arguments in its handler compiles under --strict', () => {
  expect(diagnosticsOf('cart.ts').map((d) => `${d.line} ${d.text}`)).toEqual([]);
}, 60_000);

it('the types catch wrong events, replies, states and reply assignments, and nothing else', () => {
  const lines = readFileSync(path.join(folder, 'cart-errors.ts'), 'utf8').split('\n');
  const marks = lines.flatMap((l, i) => {
    const m = /^\s*(?:\? )?\/\/ error "(.+?)":/.exec(l);
    return m ? [{ line: i + 1, expected: m[1]! }] : [];
  });
  expect(marks.length).toBeGreaterThanOrEqual(6);
  const found = diagnosticsOf('cart-errors.ts');
  const near = (d: { line: number }, mark: { line: number }) => d.line > mark.line && d.line <= mark.line + 3;
  // Every mark gets an error saying what it expects...
  for (const mark of marks) {
    const texts = found.filter((d) => near(d, mark)).map((d) => d.text);
    expect({ mark: mark.line, texts }).toEqual({
      mark: mark.line,
      texts: expect.arrayContaining([expect.stringContaining(mark.expected)]),
    });
  }
  // ...and there is no error that no mark explains.
  expect(found.filter((d) => !marks.some((m) => near(d, m)))).toEqual([]);
}, 60_000);

it("actor-core README's actor example compiles under --strict as written", () => {
  const readme = readFileSync(path.join(root, 'packages', 'actor-core', 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((b) => b.includes('EventSourcedBehavior.create'));
  expect(block).toBeDefined();
  const file = path.join(folder, 'readme-actor.generated.ts');
  writeFileSync(file, block!);
  try {
    expect(diagnosticsOf(path.basename(file)).map((d) => `${d.line} ${d.text}`)).toEqual([]);
  } finally {
    rmSync(file, { force: true });
  }
}, 60_000);
