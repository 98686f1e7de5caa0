import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, ALL_STATES, ALL_OPS, legalOps, Lifecycle, TaskLocks, type ProcessState, type ProcessOp } from './lifecycle.js';
import { ShimError } from './errors.js';

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
  // pkg/process/init_state.go (containerd 1.6/1.7), word for word
  const words: Array<[ProcessState, ProcessOp, string]> = [
    ['created', 'pause', 'cannot pause task in created state'],
    ['paused', 'pause', 'cannot pause a paused container'],
    ['stopped', 'pause', 'cannot pause a stopped container'],
    ['created', 'resume', 'cannot resume task in created state'],
    ['running', 'resume', 'cannot resume a running process'],
    ['stopped', 'resume', 'cannot resume a stopped container'],
    ['created', 'checkpoint', 'cannot checkpoint a task in created state'],
    ['stopped', 'checkpoint', 'cannot checkpoint a stopped container'],
    ['stopped', 'update', 'cannot update a stopped container'],
    ['running', 'start', 'cannot start a running process'],
    ['pausing', 'start', 'cannot start a running process'],
    ['paused', 'start', 'cannot start a paused process'],
    ['stopped', 'start', 'cannot start a stopped process'],
    ['running', 'delete', 'cannot delete a running process'],
    ['paused', 'delete', 'cannot delete a paused process'],
    ['paused', 'exec', 'cannot exec in a paused state'],
    ['stopped', 'resize', 'cannot resize a stopped container'],
  ];
  for (const [s, op, reason] of words) assert.equal(check(s, op), { ok: false, reason }, `${op} in ${s}`);
});
test('deleted allows nothing', () => assert.equal(legalOps('deleted'), []));

test('Lifecycle: transition moves per the table, refuses with runc-v2 class, undo rolls back', () => {
  const l = new Lifecycle();
  assert.is(l.state, 'created');
  const undo = l.transition('start');
  assert.is(l.state, 'running');
  undo();
  assert.is(l.state, 'created', 'a failed start leaves it created');
  l.transition('start');
  try {
    l.transition('start');
    assert.unreachable('second start');
  } catch (e) {
    assert.instance(e, ShimError);
    assert.equal([(e as ShimError).kind, (e as ShimError).message], ['Unknown', 'cannot start a running process']);
  }
  l.transition('pause');
  assert.is(l.state, 'pausing');
  l.transition('paused');
  l.transition('exit');
  assert.is(l.state, 'stopped');
  try {
    l.transition('kill');
    assert.unreachable('kill after exit');
  } catch (e) {
    assert.is((e as ShimError).kind, 'NotFound');
  }
  const del = l.transition('delete');
  assert.is(l.state, 'deleted');
  del();
  assert.is(l.state, 'stopped');
});

test('Lifecycle: an undo does not override a later move', () => {
  const l = new Lifecycle();
  const undo = l.transition('start');
  l.transition('exit');
  undo();
  assert.is(l.state, 'stopped');
});

test('TaskLocks: one at a time per key, in arrival order; other keys run alongside; a failure releases', async () => {
  const locks = new TaskLocks();
  const order: string[] = [];
  let releaseA!: () => void;
  const gate = new Promise<void>((r) => (releaseA = r));
  const a1 = locks.run('a', async () => {
    order.push('a1 in');
    await gate;
    order.push('a1 out');
  });
  const a2 = locks.run('a', async () => {
    order.push('a2');
    throw new Error('boom');
  });
  const a3 = locks.run('a', async () => order.push('a3'));
  const b1 = locks.run('b', async () => order.push('b1'));
  await b1;
  assert.equal(order, ['a1 in', 'b1'], 'b does not wait for a');
  releaseA();
  await a1;
  await a2.then(() => assert.unreachable('a2 throws'), (e: Error) => assert.is(e.message, 'boom'));
  await a3;
  assert.equal(order, ['a1 in', 'b1', 'a1 out', 'a2', 'a3']);
  assert.is(locks.size, 0, 'drained keys are forgotten');
});
test.run();
