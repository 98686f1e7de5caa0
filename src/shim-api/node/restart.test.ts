import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { YOUNG_MS, nextRestart } from './supervisor.js';

test('nextRestart: 0, 100 ms … 5 s for workers dying young in a row (never ready, or soon after); at once after one that served a while or was replaced by reload', () => {
  let n = 0;
  const delays: number[] = [];
  for (let i = 0; i < 8; i++) {
    const r = nextRestart(n, i % 2 ? undefined : 1000, false);
    n = r.youngInARow;
    delays.push(r.delayMs);
  }
  assert.equal(delays, [0, 100, 250, 500, 1000, 2000, 5000, 5000]);
  // a worker that served past YOUNG_MS: the count starts again
  assert.equal(nextRestart(n, YOUNG_MS + 1, false), { delayMs: 0, youngInARow: 0 });
  assert.equal(nextRestart(n, undefined, false).delayMs, 5000, 'one that never became ready is young, however long it booted');
  assert.equal(nextRestart(0, 1000, false), { delayMs: 0, youngInARow: 1 });
  assert.equal(nextRestart(1, 1000, false), { delayMs: 100, youngInARow: 2 });
  // reload replaced a young worker after many restarts: no waiting
  assert.equal(nextRestart(7, 2000, true), { delayMs: 0, youngInARow: 0 });
});

test.run();
