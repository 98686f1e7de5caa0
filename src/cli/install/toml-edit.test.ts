// The one edit install makes to an operator's containerd config, and its inverse: pure text.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse as parseToml } from 'smol-toml';
import { ADDED_LINE_COMMENT, addImport, configVersion, importsOf, removeImport } from './toml-edit.js';

const E = '/etc/containerd/conf.d/tsshim.toml';

const OPERATOR = `# my containerd config
version = 2
root = "/var/lib/containerd"   # keep

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  # imports = ["not/a/real/key"]
`;

test('no imports: one line after `version`, everything else byte-identical; the inverse restores the text', () => {
  const r = addImport(OPERATOR, E);
  assert.ok(r.addedLine);
  assert.is(r.text, OPERATOR.replace('version = 2\n', `version = 2\nimports = ["${E}"]  ${ADDED_LINE_COMMENT}\n`));
  assert.equal(importsOf(r.text), [E]);
  assert.is(removeImport(r.text, E, { addedLine: true }), OPERATOR);
});

test('no version line: the imports line goes before the first table; at the end of a table-less file', () => {
  const text = '# c\nroot = "/x"\n[debug]\n  level = "info"\n';
  const r = addImport(text, E);
  assert.is(r.text, `# c\nroot = "/x"\nimports = ["${E}"]  ${ADDED_LINE_COMMENT}\n[debug]\n  level = "info"\n`);
  assert.is(removeImport(r.text, E, { addedLine: true }), text);
  const bare = 'version = 2';
  const r2 = addImport(bare, E);
  assert.is(r2.text, `version = 2\nimports = ["${E}"]  ${ADDED_LINE_COMMENT}\n`);
  assert.equal(importsOf(r2.text), [E]);
});

test('existing imports (one line, multi-line with comments, empty): appended after the last element only', () => {
  const one = 'version = 2\nimports = ["/a.toml", \'/b.toml\']\n[x]\n';
  const r1 = addImport(one, E);
  assert.not.ok(r1.addedLine);
  assert.is(r1.text, `version = 2\nimports = ["/a.toml", '/b.toml', "${E}"]\n[x]\n`);
  assert.is(removeImport(r1.text, E, { addedLine: false }), one);

  const multi = 'version = 2\nimports = [\n  "/a.toml",  # first\n  # "/commented.toml",\n  "/b.toml", # last\n]\n';
  const r2 = addImport(multi, E);
  assert.is(r2.text, multi.replace('"/b.toml",', `"/b.toml", "${E}",`));
  assert.equal(importsOf(r2.text), ['/a.toml', '/b.toml', E]);
  assert.is(removeImport(r2.text, E, { addedLine: false }), multi);

  const empty = 'imports = [ ]\nversion = 3\n';
  const r3 = addImport(empty, E);
  assert.is(r3.text, `imports = ["${E}" ]\nversion = 3\n`);
  assert.is(removeImport(r3.text, E, { addedLine: false }), empty);
});

test('already listed: unchanged', () => {
  const t = `version = 2\nimports = ["${E}"]\n`;
  assert.is(addImport(t, E).text, t);
});

test('removeImport after the operator edited around it: only the entry goes, their edits stay', () => {
  const installed = addImport(OPERATOR, E).text;
  const edited = installed.replace('root = "/var/lib/containerd"', 'root = "/data/containerd"').replace('imports = [', 'imports = ["/mine.toml", ');
  const back = removeImport(edited, E, { addedLine: true });
  assert.equal(importsOf(back), ['/mine.toml']);
  assert.match(back, 'root = "/data/containerd"');
  assert.is((parseToml(back) as Record<string, unknown>).version, 2);
  // the entry on its own line, trailing comma: the line goes
  const own = `imports = [\n  "/a.toml",\n  "${E}",\n]\n`;
  assert.is(removeImport(own, E, { addedLine: false }), 'imports = [\n  "/a.toml",\n]\n');
  // last without a trailing comma, a comment between
  const last = `imports = [\n  "/a.toml", # a\n  "${E}"\n]\n`;
  assert.is(removeImport(last, E, { addedLine: false }), 'imports = [\n  "/a.toml" # a\n]\n');
  // first of several
  const first = `imports = ["${E}", "/a.toml"]\n`;
  assert.is(removeImport(first, E, { addedLine: false }), 'imports = ["/a.toml"]\n');
  // not there: unchanged
  assert.is(removeImport(OPERATOR, E, { addedLine: true }), OPERATOR);
});

test('strings and arrays that look like tables or keys do not confuse the scanner', () => {
  const tricky = [
    'version = 2',
    'oom_score = -999',
    'disabled_plugins = [',
    '  "io.containerd.x", # ]',
    '  ["nested"],',
    ']',
    'note = """',
    '[not.a.table]',
    'imports = ["no"]',
    '"""',
    "lit = '[x]'",
    'inline = { a = "]", b = [1, 2] }',
    '[grpc]',
    '  address = "/run/containerd/containerd.sock"',
    '',
  ].join('\n');
  const r = addImport(tricky, E);
  assert.is(r.text, tricky.replace('version = 2\n', `version = 2\nimports = ["${E}"]  ${ADDED_LINE_COMMENT}\n`));
  assert.is(removeImport(r.text, E, { addedLine: true }), tricky);
});

test('refusals: invalid TOML; imports holding non-strings', () => {
  assert.throws(() => addImport('version = = 2', E), /not valid TOML/);
  assert.throws(() => addImport('imports = [1]', E), /imports holds something other than strings/);
});

test('configVersion', () => {
  assert.is(configVersion('version = 3\n'), 3);
  assert.is(configVersion('root = "/x"\n'), undefined);
});

test.run();
