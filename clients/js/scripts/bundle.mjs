#!/usr/bin/env node
// The web bundle: @streamline/client as ONE ES module for the reference page, committed at
// gateway/static/streamline-client.js and embedded in the gateway binary, so a deployment
// needs no build step (and no Node) at all.
//
//   node scripts/bundle.mjs           writes the bundle from src/
//   node scripts/bundle.mjs --check   fails (exit 1) while the committed bundle differs from
//                                     what src/ builds to (run-tests.sh, so CI, runs this)
//
// esbuild is pinned to an exact version in package.json: the same source and the same esbuild
// give the same bytes, which is what makes the staleness check meaningful.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, version } from 'esbuild';

const pkgDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(pkgDir, '..', '..');
const outFile = path.join(repo, 'gateway', 'static', 'streamline-client.js');
const rel = (p) => path.relative(repo, p);

const check = process.argv.includes('--check');
const unknown = process.argv.slice(2).filter((a) => a !== '--check');
if (unknown.length > 0) {
  console.error(`bundle.mjs: unknown argument ${unknown[0]} (usage: bundle.mjs [--check])`);
  process.exit(2);
}

const banner = [
  '// @streamline/client, bundled for the reference web page (one ES module, no dependencies).',
  '// GENERATED from clients/js/src by clients/js/scripts/bundle.mjs: do not edit; run',
  '// `npm run bundle` in clients/js after changing the library and commit the result.',
  `// esbuild ${version}.`,
].join('\n');

const result = await build({
  absWorkingDir: pkgDir,
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  tsconfig: 'tsconfig.json',
  charset: 'utf8',
  legalComments: 'none',
  banner: { js: banner },
  write: false,
  logLevel: 'warning',
});
const built = result.outputFiles[0]?.text;
if (built === undefined) {
  console.error('bundle.mjs: esbuild produced no output');
  process.exit(1);
}

if (check) {
  let committed = '';
  try {
    committed = fs.readFileSync(outFile, 'utf8');
  } catch {
    console.error(`clients/js: ${rel(outFile)} is missing: run \`npm run bundle\` in clients/js and commit it`);
    process.exit(1);
  }
  if (committed !== built) {
    const a = committed.split('\n');
    const b = built.split('\n');
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
    console.error(`clients/js: ${rel(outFile)} is stale against clients/js/src (first difference at line ${i + 1}):`);
    console.error(`  committed: ${JSON.stringify(a[i] ?? '(end of file)')}`);
    console.error(`  built:     ${JSON.stringify(b[i] ?? '(end of file)')}`);
    console.error('run `npm run bundle` in clients/js and commit the result');
    process.exit(1);
  }
  console.log(`clients/js: ${rel(outFile)} is up to date (${built.length} bytes)`);
} else {
  fs.writeFileSync(outFile, built);
  console.log(`clients/js: wrote ${rel(outFile)} (${built.length} bytes)`);
}
