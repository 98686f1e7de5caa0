// classifyKernel on outputs captured from runc and runsc containers on this host.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { classifyKernel } from './isolation.js';

test('gVisor: dmesg is the Sentry log, whatever uname says', () => {
  const out = 'uname=4.4.0\n[   0.000000] Starting gVisor...\n[   0.412345] Daemonizing children...\n';
  assert.equal(classifyKernel(out, '6.1.0-18-amd64'), { kernel: 'gvisor', uname: '4.4.0', dmesg: '[   0.000000] Starting gVisor...\n[   0.412345] Daemonizing children...' });
});

test('host kernel: uname -r equals the host release; dmesg refused without CAP_SYSLOG', () => {
  const r = classifyKernel('uname=6.1.0-18-amd64\ndmesg: klogctl: Operation not permitted\n', '6.1.0-18-amd64');
  assert.is(r.kernel, 'host-kernel');
  assert.is(r.dmesg, 'dmesg: klogctl: Operation not permitted');
});

test('another kernel, no gVisor log: a VM', () => {
  assert.is(classifyKernel('uname=6.1.62\n[    0.000000] Linux version 6.1.62 (kata)\n', '6.1.0-18-amd64').kernel, 'vm');
});

test('no output, or no kernel release, is unknown: neither the host kernel nor a VM', () => {
  assert.is(classifyKernel('', '6.1.0-18-amd64').kernel, 'unknown');
  assert.is(classifyKernel('uname=\n', '6.1.0-18-amd64').kernel, 'unknown');
  assert.is(classifyKernel('sh: uname: not found\n', '6.1.0-18-amd64').kernel, 'unknown');
});

test.run();
