import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * Every ```ts block in a README is type-checked (strict, against the built packages' declarations) and
 * runs, so documentation cannot drift from the code: imports become requires of the built packages, the
 * rest runs inside an async function, in a fresh temp directory. A block fenced as ```ts illustrative is
 * shown to readers but neither checked nor run (it names code the reader writes).
 */
const root = path.join(__dirname, '..');
const readmes = [
  'README.md',
  ...['packages', 'examples'].flatMap((folder) =>
    readdirSync(path.join(root, folder))
      .map((name) => path.join(folder, name, 'README.md'))
      .filter((file) => existsSync(path.join(root, file))),
  ),
];

function blocksOf(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function toScript(block: string): string {
  const lines = block.split('\n');
  const imports = lines.filter((l) => /^import\s/.test(l));
  const body = lines.filter((l) => !/^import\s/.test(l));
  const source = `${imports.join('\n')}\n(async () => {\n${body.join('\n')}\n})().catch((e) => { console.error(e); process.exit(1); });\n`;
  return ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
  }).outputText;
}

const cases = readmes.flatMap((file) =>
  blocksOf(readFileSync(path.join(root, file), 'utf8')).map(
    (block, i) => [`${file} block ${i + 1}`, block] as const,
  ),
);

it('every block type-checks as a user would compile it (strict)', () => {
  // Inside the repository, so that `@cairn/*` resolve as in an application that installed them.
  const dir = mkdtempSync(path.join(root, '.readme-check-'));
  try {
    cases.forEach(([label, block], i) => {
      const lines = block.split('\n');
      const imports = lines.filter((l) => /^import\s/.test(l));
      const body = lines.filter((l) => !/^import\s/.test(l));
      writeFileSync(
        path.join(dir, `block-${i}.ts`),
        `// ${label}\n${imports.join('\n')}\nexport {};\nasync function main(): Promise<void> {\n${body.join('\n')}\n}\nvoid main;\n`,
      );
    });
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: '../tsconfig.base.json',
        compilerOptions: { noEmit: true, composite: false, declaration: false, declarationMap: false },
        include: ['*.ts'],
      }),
    );
    const tsc = require.resolve('typescript/bin/tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 120_000 });
    // Name the README block of each error, not the generated file.
    const report = result.stdout.replace(/block-(\d+)\.ts/g, (_m, i: string) => cases[Number(i)]![0]);
    expect(report).toBe('');
    expect(result.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);

it.each(cases)('%s runs', (_label, block) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-readme-'));
  try {
    const script = path.join(dir, 'example.js');
    writeFileSync(script, toScript(block));
    execFileSync(process.execPath, [script], {
      cwd: dir,
      env: { ...process.env, NODE_PATH: path.join(root, 'node_modules') },
      encoding: 'utf8',
      stdio: 'pipe',
      timeout: 60_000,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
