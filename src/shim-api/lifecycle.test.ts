import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, ALL_STATES, ALL_OPS, legalOps, type ProcessState, type ProcessOp } from './lifecycle.js';

// Every cell of the table, written out independently of the implementation.
const legal: Record<ProcessOp, ProcessState[]> = {
  start: ['created'],
  pause: ['running'],
  paused: ['pausing'],
  resume: ['paused'],
  exit: ['created', 'running', 'pausing', 'paused'],
  delete: ['created', 'stopped'],
  kill: ['created', 'running', 'pausing', 'paused'],
  exec: ['created', 'running'],
  update: ['created', 'running', 'paused'],
  checkpoint: ['running', 'paused'],
  resize: ['created', 'running', 'paused'],
  pids: ['created', 'running', 'pausing', 'paused', 'stopped'],
  stats: ['created', 'running', 'pausing', 'paused'],
};
const leadsTo: Partial<Record<ProcessOp, ProcessState>> = {
  start: 'running', pause: 'pausing', paused: 'paused', resume: 'running', exit: 'stopped', delete: 'deleted',
};

for (const op of ALL_OPS) {
  for (const s of ALL_STATES) {
    test(`${op} in ${s}`, () => {
      const r = check(s, op);
      if (legal[op].includes(s)) {
        assert.ok(r.ok, `${op} should be legal in ${s}`);
        if (r.ok) assert.is(r.next, leadsTo[op] ?? s);
      } else {
        assert.not.ok(r.ok, `${op} should be refused in ${s}`);
        if (!r.ok) assert.ok(r.reason.length > 0);
      }
    });
  }
}
test('runc-v2 wording', () => {
  const r = check('stopped', 'exec');
  assert.equal(r, { ok: false, reason: 'cannot exec in a stopped state' });
  const k = check('stopped', 'kill');
  assert.equal(k, { ok: false, reason: 'process already finished' });
});
test('deleted allows nothing', () => assert.equal(legalOps('deleted'), []));
test.run();
