// ExitTracker over a fake exit source (pure logic): exits racing the pid file are kept by
// subscriptions and claimed; tracked pids go to their process; nothing leaks after end().
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EventEmitter } from 'node:events';
import { ExitTracker, type ExitEvent } from './exits.js';
import { Proc, type ExitInfo } from './process.js';

function setup() {
  const source = new EventEmitter();
  const seen: Array<[Proc, ExitInfo]> = [];
  const tracker = new ExitTracker(source as never, (p, e) => {
    seen.push([p, e]);
    p.recordExit(e);
  });
  const exit = (pid: number, status: number) => source.emit('exit', { pid, status, exitedAt: new Date(1000 * pid) } satisfies ExitEvent);
  return { source, seen, tracker, exit };
}
const proc = (id = 'c1') => new Proc(id, '', { stdin: '', stdout: '', stderr: '', terminal: false });

test('an exit before the pid is known is claimed by the subscription that was open', () => {
  const { seen, tracker, exit } = setup();
  const sub = tracker.subscribe();
  exit(41, 137); // the init dies while `create` still runs
  const p = proc();
  p.hold();
  p.pid = 41;
  tracker.track(41, p, sub);
  sub.end();
  assert.is(seen.length, 1);
  assert.is(p.exit, undefined, 'held until the create event is out');
  assert.equal(p.release(), { status: 137, exitedAt: new Date(41_000) });
  assert.is(p.state, 'stopped');
});

test('tracked pids go to their process; unknown exits without a subscription are dropped', async () => {
  const { seen, tracker, exit } = setup();
  const p = proc();
  p.pid = 7;
  tracker.track(7, p);
  exit(8, 1);
  exit(7, 3);
  assert.equal(seen.map(([q, e]) => [q.pid, e.status]), [[7, 3]]);
  assert.equal((await p.wait()).status, 3);
  const late = tracker.subscribe();
  const q = proc('c2');
  tracker.track(8, q, late); // 8 exited before this subscription: not claimed
  late.end();
  assert.is(seen.length, 1);
});

test('close() stops listening', () => {
  const { source, tracker } = setup();
  assert.is(source.listenerCount('exit'), 1);
  tracker.close();
  assert.is(source.listenerCount('exit'), 0);
});

test.run();
