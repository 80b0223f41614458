import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * The packages as a user gets them: every workspace package is packed (`npm pack`), the tarballs are
 * installed into a fresh app (their third-party dependencies from the registry or npm's cache), and each
 * package is imported from ESM and from CJS there, its types compiled with `tsc --strict`, and the bins
 * run. One install serves every check. It takes minutes (a real npm install and a full tsc), so it is
 * not part of `npm test`: `npm run test:pack` runs it (and .ci/run does). Also: each tarball carries LICENSE, every source map it ships
 * points at sources it ships, and the packages depend on each other by range.
 */
const root = path.join(__dirname, '..');
const packageDirs = readdirSync(path.join(root, 'packages'))
  .map((name) => path.join(root, 'packages', name))
  .filter((dir) => existsSync(path.join(dir, 'package.json')));
const manifests = packageDirs.map(
  (dir) =>
    JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    },
);
const names = manifests.map((m) => m.name);

let work: string;
let app: string;
const files = new Map<string, string[]>();

function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: 'pipe', timeout: 240_000 });
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'cairn-pack-'));
  const tarballs = path.join(work, 'tarballs');
  mkdirSync(tarballs);
  const workspaces = packageDirs.flatMap((dir) => ['--workspace', path.relative(root, dir)]);
  const packed = JSON.parse(
    run('npm', ['pack', ...workspaces, '--json', '--pack-destination', tarballs], root).replace(/^[^[]*/, ''),
  ) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>;
  for (const p of packed)
    files.set(
      p.name,
      p.files.map((f) => f.path),
    );
  app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  const ours = packed.filter((p) => names.includes(p.name)).map((p) => path.join(tarballs, p.filename));
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', ...ours], app);
}, 300_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

it('packs every package with its LICENSE, and source maps only beside the sources they name', () => {
  for (const name of names) {
    const list = files.get(name);
    expect({ name, packed: list !== undefined }).toEqual({ name, packed: true });
    expect({ name, license: list!.includes('LICENSE') }).toEqual({ name, license: true });
    const dir = packageDirs[names.indexOf(name)]!;
    // A map whose source is gone from src/ is a leftover of an earlier build in this working tree (a
    // renamed file); a clean build, as CI and a release make, has none.
    const current = (map: string) =>
      existsSync(path.join(dir, 'src', map.replace(/^dist\//, '').replace(/(\.d)?\.(js|ts)\.map$/, '.ts')));
    for (const map of list!.filter((f) => f.endsWith('.map') && current(f))) {
      const { sources } = JSON.parse(readFileSync(path.join(dir, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const shipped = path.posix.normalize(path.posix.join(path.posix.dirname(map), source));
        expect({ map, source: shipped, shipped: list!.includes(shipped) }).toEqual({
          map,
          source: shipped,
          shipped: true,
        });
      }
    }
  }
});

it('depends on its sibling packages by range, not an exact version', () => {
  for (const m of manifests) {
    for (const [dep, range] of Object.entries({ ...m.dependencies, ...m.peerDependencies })) {
      if (dep.startsWith('@cairn/')) expect({ package: m.name, dep, range }).toMatchObject({ range: /^\^/ });
    }
  }
});

it('installs into a fresh app without a test runner, and every package loads from CJS and from ESM', () => {
  expect(existsSync(path.join(app, 'node_modules', 'jest'))).toBe(false);
  for (const name of names) {
    const cjs = run(
      process.execPath,
      ['-e', `console.log(Object.keys(require(${JSON.stringify(name)})).length)`],
      app,
    );
    expect({ name, cjsExports: Number(cjs.trim()) > 0 }).toEqual({ name, cjsExports: true });
    const esm = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import * as m from ${JSON.stringify(name)}; console.log(Object.keys(m).length);`,
      ],
      app,
    );
    expect({ name, esmExports: Number(esm.trim()) > 0 }).toEqual({ name, esmExports: true });
  }
});

it("compiles against every package's types with tsc --strict (Node's types come with the packages)", () => {
  const source = names
    .map((name, i) => `import * as p${i} from ${JSON.stringify(name)};\nvoid p${i};`)
    .join('\n');
  writeFileSync(path.join(app, 'use.ts'), `${source}\n`);
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [
    '--strict',
    '--noEmit',
    '--module',
    'node16',
    '--moduleResolution',
    'node16',
    '--target',
    'es2022',
  ];
  expect(() => run(process.execPath, [tsc, ...args, 'use.ts'], app)).not.toThrow();
  // Node's types were installed because the packages that need them declare them.
  expect(existsSync(path.join(app, 'node_modules', '@types', 'node'))).toBe(true);
});

it('links cairn and cairn-torture, which run', () => {
  for (const bin of ['cairn', 'cairn-torture']) {
    const help = run(path.join(app, 'node_modules', '.bin', bin), ['--help'], app);
    expect(help).toContain(`Usage: ${bin}`);
  }
});
