import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateId, validateExecId } from './identifiers.js';
import { ShimError } from './errors.js';

const good = ['c1', 'a.b-c_d', 'A1', 'x'.repeat(76), '0123456789abcdef'.repeat(4)];
const bad = ['', '../etc', 'a/b', 'a\0b', '..', '.a', 'a.', 'a..b', 'a--b', 'x'.repeat(77), 'a b', 'é'];

for (const id of good) test(`accepts ${JSON.stringify(id.slice(0, 20))}`, () => assert.is(validateId(id), id));
for (const id of bad) {
  test(`rejects ${JSON.stringify(id.slice(0, 20))} with InvalidArgument`, () => {
    try {
      validateId(id);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, ShimError);
      assert.is((e as ShimError).kind, 'InvalidArgument');
      assert.not.match((e as Error).message, /\0/);
    }
  });
}
test('empty exec id means init', () => assert.is(validateExecId(''), ''));
test('exec id with .. is refused', () => assert.throws(() => validateExecId('../x'), /exec id/));
test.run();
