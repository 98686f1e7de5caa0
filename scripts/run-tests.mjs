#!/usr/bin/env node
// The test command (npm test): builds, then runs every compiled test file in its own
// node process, one after another, and sums uvu's summaries. Last line:
// "N passed, N failed, N skipped". Options: --unit, --no-build, substrings to filter.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));
const timeoutMs = Number(process.env.TSSHIM_TEST_FILE_TIMEOUT ?? 900) * 1000;

if (!args.includes('--no-build')) {
  const b = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) {
    console.log('build failed');
    console.log('0 passed, 1 failed, 0 skipped');
    process.exit(1);
  }
}

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? find(p) : n.endsWith('.test.js') ? [p] : [];
  });
}
// Unit tests: the shim's (dist/src) and each workspace package's (packages/*/dist/test).
const packages = existsSync(join(root, 'packages')) ? readdirSync(join(root, 'packages')).map((n) => join(root, 'packages', n, 'dist/test')) : [];
const unit = [...find(join(root, 'dist/src')), ...packages.flatMap(find)].sort();
const integration = unitOnly ? [] : [...find(join(root, 'dist/test')), ...find(join(root, 'dist/conformance'))].sort();
const files = [...unit, ...integration].filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
let passed = 0, failed = 0, skipped = 0;
const skips = [];
const failures = [];

for (const file of files) {
  const name = file.startsWith(join(root, 'dist')) ? relative(join(root, 'dist'), file) : relative(root, file);
  console.log(`\n=== ${name}`);
  const started = Date.now();
  const out = await new Promise((resolve) => {
    // Own process group: a timeout kills the test file together with its private containerd.
    const child = spawn(process.execPath, [file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let text = '';
    const onData = (stream) => (b) => {
      stream.write(b);
      text += b.toString();
    };
    child.stdout.on('data', onData(process.stdout));
    child.stderr.on('data', onData(process.stderr));
    const timer = setTimeout(() => {
      const msg = `\n[run-tests] ${name}: timed out after ${timeoutMs / 1000} s, killed its process group\n`;
      process.stdout.write(msg);
      text += msg;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ text: strip(text), code });
    });
  });
  const num = (label) => {
    const m = new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm').exec(out.text);
    return m ? Number(m[1]) : undefined;
  };
  const total = num('Total');
  const ok = num('Passed');
  const sk = num('Skipped') ?? 0;
  for (const line of out.text.split('\n')) if (line.startsWith('SKIP:')) skips.push(`${name}: ${line.slice(5).trim()}`);
  if (total === undefined || ok === undefined) {
    failed += 1;
    failures.push(`${name} (exit ${out.code}, no summary)`);
  } else {
    // uvu's Total does not include t.skip() tests (they only raise Skipped), so failed = Total - Passed.
    const bad = Math.max(total - ok, out.code !== 0 ? 1 : 0);
    passed += ok;
    skipped += sk;
    failed += bad;
    if (bad > 0) failures.push(`${name} (${bad} failed)`);
  }
  console.log(`--- ${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

console.log('\n=== summary');
if (skips.length) {
  console.log('skipped, with reasons:');
  for (const s of skips) console.log(`  ${s}`);
}
if (failures.length) {
  console.log('failed files:');
  for (const f of failures) console.log(`  ${f}`);
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
