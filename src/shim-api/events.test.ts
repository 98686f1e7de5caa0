// The event publisher against a real ttrpc server on a unix socket that comes and goes
// (standing in for containerd's Events service; containerd itself in test/integration/events).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import { Writable } from 'node:stream';
import { Server } from 'ttrpc-ts';
import { tempDir, sleep } from 'ttrpc-ts/testing';
import { TtrpcEventPublisher } from './events.js';
import { eventsService, events, packAny, SERVICE, TYPE_URL } from './pb.js';

function capture(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  return { log: pino({ level: 'debug' }, sink), lines };
}

interface Got { topic: string; task: string }

function startEvents(sock: string, got: Got[], opts: { failFirst?: number } = {}): Promise<Server> {
  let fail = opts.failFirst ?? 0;
  const srv = new Server();
  srv.register(SERVICE.Events, {
    Forward: async (payload) => {
      const req = eventsService.ForwardRequest.decode(payload);
      if (fail > 0) { fail--; throw new Error('not now'); }
      got.push({ topic: req.envelope!.topic, task: taskOf(req.envelope!.event!) });
      return undefined;
    },
  });
  return srv.listen(sock).then(() => srv);
}

/** The container id of the test's two event types, decoded with their own codecs. */
const taskOf = (e: { typeUrl: string; value: Uint8Array }) => (e.typeUrl === TYPE_URL.TaskExit ? events.TaskExit : events.TaskStart).decode(e.value).containerId;
const exit = (id: string, status: number) => packAny(TYPE_URL.TaskExit, events.TaskExit, { containerId: id, id, pid: 1, exitStatus: status, exitedAt: undefined });
const start = (id: string) => packAny(TYPE_URL.TaskStart, events.TaskStart, { containerId: id, pid: 1 });

test('containerd away for 1.5 s: every event arrives once it is back, in order per task', async () => {
  const d = tempDir();
  const sock = d.sock('ev.sock');
  const { log, lines } = capture();
  const pub = new TtrpcEventPublisher(sock, 'ns', log, { initialBackoffMs: 50, maxBackoffMs: 200 });
  try {
    for (let i = 0; i < 5; i++) { pub.publish('/tasks/start', start(`a${i % 2}`), `a${i % 2}`); pub.publish('/tasks/exit', exit(`a${i % 2}`, i), `a${i % 2}`); }
    await sleep(1500);
    assert.is(pub.pending, 10, 'nothing dropped while containerd is away');
    const got: Got[] = [];
    const srv = await startEvents(sock, got);
    await pub.close(10_000);
    await srv.close();
    assert.is(got.length, 10);
    for (const task of ['a0', 'a1']) {
      assert.equal(got.filter((g) => g.task === task).map((g) => g.topic), ['/tasks/start', '/tasks/exit', '/tasks/start', '/tasks/exit', '/tasks/start', '/tasks/exit'].slice(0, task === 'a0' ? 6 : 4));
    }
    assert.ok(lines.some((l) => l.msg === 'event forwarded after retries'));
    assert.not.ok(lines.some((l) => l.level === 50), 'no error logged');
  } finally {
    d.remove();
  }
});

test('a task whose event keeps failing does not hold up another task', async () => {
  const d = tempDir();
  const sock = d.sock('ev.sock');
  const got: Got[] = [];
  const srv = await startEvents(sock, got, { failFirst: 1 });
  const pub = new TtrpcEventPublisher(sock, 'ns', capture().log, { initialBackoffMs: 2000, maxBackoffMs: 2000 });
  try {
    pub.publish('/tasks/exit', exit('slow', 1), 'slow'); // first Forward fails, retried after 2 s
    await sleep(100);
    pub.publish('/tasks/exit', exit('fast', 2), 'fast');
    await sleep(500);
    assert.equal(got, [{ topic: '/tasks/exit', task: 'fast' }]);
    await pub.close(10_000);
    assert.equal(got.map((g) => g.task), ['fast', 'slow']);
  } finally {
    await srv.close();
    d.remove();
  }
});

test('past the retry window: an error log names the topic and the task', async () => {
  const d = tempDir();
  const { log, lines } = capture();
  const pub = new TtrpcEventPublisher(d.sock('nobody.sock'), 'ns', log, { retryWindowMs: 600, initialBackoffMs: 50, maxBackoffMs: 100 });
  try {
    pub.publish('/tasks/exit', exit('gone-1', 137), 'gone-1');
    await pub.close(5000);
    const err = lines.find((l) => l.level === 50);
    assert.ok(err, 'error logged');
    assert.is(err!.topic, '/tasks/exit');
    assert.is(err!.task, 'gone-1');
    assert.ok((err!.attempts as number) > 3, `retried: ${JSON.stringify(err)}`);
  } finally {
    d.remove();
  }
});

test('bounded buffer: past maxBuffered, new events are dropped with an error log', async () => {
  const d = tempDir();
  const { log, lines } = capture();
  const pub = new TtrpcEventPublisher(d.sock('nobody.sock'), 'ns', log, { maxBuffered: 3, initialBackoffMs: 1000 });
  pub.publish('/tasks/start', start('b'), 'b');
  pub.publish('/tasks/start', start('c'), 'c');
  pub.publish('/tasks/exit', exit('b', 0), 'b');
  pub.publish('/tasks/exit', exit('c', 9), 'c');
  assert.is(pub.pending, 3);
  const err = lines.find((l) => l.level === 50);
  assert.ok(err);
  assert.is(err!.topic, '/tasks/exit');
  assert.is(err!.task, 'c');
  await pub.close(10);
  d.remove();
});

test.run();
