import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { EventLoopWatch } from './event-loop.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));
const block = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* the loop is stalled */
  }
};

test('EventLoopWatch: a stall of 150 ms shows as a delay of at least 150 ms minus one interval', async () => {
  const w = new EventLoopWatch(10);
  try {
    await tick(50);
    block(150);
    await tick(30);
    const s = w.snapshot();
    assert.ok(s.maxMs >= 140, `max ${s.maxMs} ms after a 150 ms stall`);
    assert.ok(s.p99Ms <= s.maxMs, `p99 ${s.p99Ms} <= max ${s.maxMs}`);
    assert.ok(s.samples > 0);
    assert.ok(s.sinceMs >= 230, `window ${s.sinceMs} ms`);
    assert.is(s.resolutionMs, 10);
  } finally {
    w.stop();
  }
});

test('EventLoopWatch: a reset starts a new window; the interval in progress is kept (a stall straddling the reset counts in the new window)', async () => {
  const w = new EventLoopWatch(10);
  try {
    await tick(50);
    block(150);
    const before = w.snapshot(true); // the stall's tick has not fired yet
    await tick(30);
    const after = w.snapshot(true);
    assert.ok(after.maxMs >= 140, `the stall is reported after the reset: max ${after.maxMs} ms (before the reset: ${before.maxMs} ms)`);
    // no tick can fire between two synchronous calls: the new window is empty
    const empty = w.snapshot();
    assert.equal([empty.samples, empty.maxMs, empty.p99Ms], [0, 0, 0]);
  } finally {
    w.stop();
  }
});

const schedstat = `/proc/${process.pid}/task/${process.pid}/schedstat`;
const onCpuNs = () => Number(readFileSync(schedstat, 'utf8').split(' ')[0]);

test('EventLoopWatch: maxOwnMs counts the main thread running (150 ms of its own CPU time), not its waits for a CPU', async () => {
  if (!existsSync(schedstat)) {
    console.log(`skipped: ${schedstat} does not exist (kernel without schedstat): maxOwnMs is null there`);
    assert.is(new EventLoopWatch(10).snapshot().maxOwnMs, null);
    return;
  }
  const w = new EventLoopWatch(10);
  try {
    await tick(50);
    const start = onCpuNs();
    while (onCpuNs() - start < 150e6) {
      /* the loop runs: 150 ms on a CPU, however long the host makes it wait */
    }
    await tick(30);
    const s = w.snapshot();
    assert.ok(s.maxOwnMs !== null && s.maxOwnMs >= 140, `own ${s.maxOwnMs} ms after 150 ms of CPU on the loop (max ${s.maxMs} ms)`);
    assert.ok(s.maxOwnMs! <= s.maxMs + 0.01, `own ${s.maxOwnMs} <= max ${s.maxMs}`);
  } finally {
    w.stop();
  }
});

test.run();
