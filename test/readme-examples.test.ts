import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * Every ```ts block in a README runs, so documentation cannot drift from the code: imports become
 * requires of the built packages, the rest runs inside an async function, in a fresh temp directory.
 * A block fenced as ```ts illustrative is shown to readers but not run (it names code the reader writes).
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
