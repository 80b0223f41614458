import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import * as actorCore from '../src';

const ROOT = path.resolve(__dirname, '../../..');
const README = path.resolve(__dirname, '../README.md');

/** The first ```ts block of the README's "## Event-sourced actors" section. */
function actorExample(): string {
  const text = readFileSync(README, 'utf8');
  const section = text.slice(text.indexOf('## Event-sourced actors'));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error('README.md has no ```ts block under "## Event-sourced actors"');
  return match[1];
}

describe('the README actor example', () => {
  it('type-checks against the sources', () => {
    const file = path.join(ROOT, 'packages/actor-core/test/__readme_example__.ts');
    const options: ts.CompilerOptions = {
      strict: true,
      noUncheckedIndexedAccess: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.Node16,
      moduleResolution: ts.ModuleResolutionKind.Node16,
      types: ['node'],
      skipLibCheck: true,
      baseUrl: ROOT,
      paths: { '@cairn/*': ['packages/*/src'] },
    };
    const host = ts.createCompilerHost(options);
    const readFile = host.readFile.bind(host);
    const getSourceFile = host.getSourceFile.bind(host);
    const source = actorExample();
    host.readFile = (name) => (name === file ? source : readFile(name));
    host.fileExists = (name) => name === file || ts.sys.fileExists(name);
    host.getSourceFile = (name, version, ...rest) =>
      name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
    const program = ts.createProgram([file], options, host);
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file?.fileName === file)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  });

  it('runs and prints what its comments say', async () => {
    const js = ts.transpileModule(actorExample(), {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const lines: string[] = [];
    const fakeConsole = { log: (...args: unknown[]) => lines.push(args.map(String).join(' ')) };
    const fakeRequire = (id: string) => {
      if (id !== '@cairn/actor-core') throw new Error(`the example imports ${id}`);
      return actorCore;
    };
    // Run the module body, then wait for main() to settle through the output it prints last.
    new Function('require', 'exports', 'console', js)(fakeRequire, {}, fakeConsole);
    const deadline = Date.now() + 5000;
    while (lines.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(lines).toEqual(['recovered 0 (0 events replayed)', '10', 'insufficient funds', '15']);
  });
});
