// Calls to the Kata delegate have timeouts (Wait none) and follow the caller's deadline and
// cancellation (request-scope.ts). The delegate is a real ttrpc server on a unix socket whose
// methods never answer; the handler's delegate table is filled directly (no VM here).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client, Code, Server, TtrpcError } from 'ttrpc-ts';
import { tempDir, sleep } from 'ttrpc-ts/testing';
import { runInRequest } from '../../shim-api/request-scope.js';
import { SERVICE, task } from '../../shim-api/pb.js';
import type { HandlerContext } from '../../shim-api/handler.js';
import { KataTaskHandler, delegateTimeout, DELEGATE_TIMEOUTS_MS } from './task-handler.js';

async function hangingDelegate(sock: string): Promise<Server> {
  const srv = new Server();
  const hang = async (_p: Uint8Array, ctx: { signal: AbortSignal }) => {
    await new Promise((r) => ctx.signal.addEventListener('abort', r));
    return undefined;
  };
  srv.register(SERVICE.Task, { Kill: hang, Wait: hang, State: hang, Create: hang });
  await srv.listen(sock);
  return srv;
}

async function code(p: Promise<unknown>): Promise<Code | 'resolved'> {
  try { await p; return 'resolved'; } catch (e) { assert.instance(e, TtrpcError); return (e as TtrpcError).code; }
}

test('delegateTimeout: defaults, overrides, Wait has none', () => {
  assert.is(delegateTimeout({}, 'Kill'), DELEGATE_TIMEOUTS_MS.default);
  assert.is(delegateTimeout({}, 'Create'), 120_000);
  assert.is(delegateTimeout({}, 'Wait'), undefined);
  assert.is(delegateTimeout({ timeoutsMs: { Wait: 5, Kill: 7, default: 9 } }, 'Wait'), undefined);
  assert.is(delegateTimeout({ timeoutsMs: { Kill: 7, default: 9 } }, 'Kill'), 7);
  assert.is(delegateTimeout({ timeoutsMs: { default: 9 } }, 'State'), 9);
});

test('a hung delegate: Kill times out, Wait waits until the caller goes away, the caller deadline wins', async () => {
  const d = tempDir();
  const sock = d.sock('kata.sock');
  const srv = await hangingDelegate(sock);
  const client = await Client.connect(sock);
  const h = new KataTaskHandler({ name: 'kata', binary: 'none', timeoutsMs: { Kill: 300 } }, { namespace: 'ns' } as unknown as HandlerContext);
  (h as unknown as { containers: Map<string, unknown> }).containers.set('c1', { socket: sock, service: SERVICE.Task, client, pid: 1 });
  try {
    const t0 = Date.now();
    assert.is(await code(h.kill(task.KillRequest.fromPartial({ id: 'c1', signal: 9 }))), Code.DeadlineExceeded, 'Kill timed out');
    assert.ok(Date.now() - t0 < 20_000);

    // Wait: no timeout of ours; the caller's connection closing (its signal) ends it.
    const ctl = new AbortController();
    let settled = false;
    const wait = runInRequest({ signal: ctl.signal }, () => h.wait(task.WaitRequest.fromPartial({ id: 'c1' })));
    void wait.then(() => (settled = true), () => (settled = true));
    await sleep(800);
    assert.not.ok(settled, 'Wait still waiting after 800 ms (no timeout)');
    ctl.abort();
    assert.is(await code(wait), Code.Canceled, 'Wait canceled with its caller');

    // The caller's deadline (300 ms) is shorter than State's 30 s default.
    const state = runInRequest({ signal: new AbortController().signal, deadline: Date.now() + 300 }, () => h.state(task.StateRequest.fromPartial({ id: 'c1' })));
    assert.is(await code(state), Code.DeadlineExceeded);
  } finally {
    client.close();
    await srv.close();
    d.remove();
  }
});

test.run();
