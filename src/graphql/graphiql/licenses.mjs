// Prints the licence of every package in the production dependency tree of the npm project
// at argv[2], for vendor/LICENSES.txt: name@version, the declared licence, and the text of
// each LICENSE/LICENCE/COPYING file the package ships.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const project = process.argv[2];
// `npm ls` exits non-zero over peer ranges that graphiql-explorer never widened (it works
// with React 18 and graphql 16, as GraphiQL's own explorer plugin ships it); the list is whole.
let listing;
try {
  listing = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: project,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
} catch (error) {
  listing = error.stdout;
}
const paths = listing
  .split('\n')
  .filter((p) => p.includes('node_modules'));
const seen = new Set();
const out = [];
for (const dir of [...new Set(paths)].sort()) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const id = `${pkg.name}@${pkg.version}`;
  if (seen.has(id)) continue;
  seen.add(id);
  const texts = readdirSync(dir)
    .filter((f) => /^(licen[cs]e|copying|notice)/i.test(f))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8').trim());
  const declared = typeof pkg.license === 'string' ? pkg.license : JSON.stringify(pkg.license ?? 'UNKNOWN');
  out.push(`${'='.repeat(78)}\n${id} (${declared})\n${'='.repeat(78)}\n${texts.join('\n\n') || '(no licence file shipped; see the declared licence above)'}\n`);
}
process.stdout.write(out.join('\n'));
