// Kubernetes' path: a CRI client drives containerd's CRI plugin with runtime_handler = the column's entry.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { criV1 } from '../../src/client/cri.js';
import { TEST_IMAGE, appContainerConfig } from '../../test/helpers/cri.js';
import type { Scenario } from '../types.js';
import { codeName, waitFor } from './util.js';

const { NamespaceMode, ContainerState, PodSandboxState } = criV1;

const stateName = (v: number | undefined, e: Record<string, string | number>) => (v === undefined ? null : String(e[v] ?? v));

export const criScenarios: Scenario[] = [
  {
    id: 'cri-pod-lifecycle',
    group: 'cri',
    title: 'CRI with runtime_handler: RunPodSandbox, Create/StartContainer, ExecSync, status, stats, Stop/RemoveContainer, Stop/RemovePodSandbox',
    cri: true,
    timeoutMs: 180_000,
    async run(ctx) {
      const { client: cri, runtimeHandler, logRoot } = await ctx.cri();
      const uid = randomBytes(8).toString('hex');
      const podName = `conf-${ctx.column.id}`;
      const logDirectory = join(logRoot, `conformance_${podName}_${uid}`);
      mkdirSync(logDirectory, { recursive: true });
      const nsOpts = { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD };
      const sandboxConfig = criV1.PodSandboxConfig.fromPartial({
        metadata: { name: podName, uid, namespace: 'conformance', attempt: 0 },
        logDirectory,
        labels: { 'conformance/run': uid },
        linux: { securityContext: { namespaceOptions: nsOpts } },
      });
      let podId = '';
      let containerId = '';
      ctx.defer(async () => {
        if (containerId) await cri.runtime.removeContainer({ containerId }, { timeoutMs: 30_000 }).catch(() => undefined);
        if (podId) {
          await cri.runtime.stopPodSandbox({ podSandboxId: podId }, { timeoutMs: 30_000 }).catch(() => undefined);
          await cri.runtime.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 30_000 }).catch(() => undefined);
        }
      });
      podId = (await cri.runtime.runPodSandbox({ config: sandboxConfig, runtimeHandler }, { timeoutMs: 120_000 })).podSandboxId;
      const ps = await cri.runtime.podSandboxStatus({ podSandboxId: podId, verbose: true });
      const info = JSON.parse(ps.info.info ?? '{}');
      ctx.note('sandboxRuntimeType', info.runtimeType ?? null);
      containerId = (
        await cri.runtime.createContainer(
          {
            podSandboxId: podId,
            sandboxConfig,
            config: appContainerConfig({ logPath: 'app/0.log', namespaceOptions: nsOpts }),
          },
          { timeoutMs: 60_000 },
        )
      ).containerId;
      const created = stateName((await cri.runtime.containerStatus({ containerId })).status?.state, ContainerState);
      await cri.runtime.startContainer({ containerId }, { timeoutMs: 60_000 });
      const logFile = join(logDirectory, 'app', '0.log');
      const logged = await waitFor(() => existsSync(logFile) && /^\S+ stdout F hi$/m.test(readFileSync(logFile, 'utf8')), 10_000, 100);
      const ex = await cri.runtime.execSync({ containerId, cmd: ['sh', '-c', 'echo exec-ok; echo exec-err >&2; exit 3'], timeout: 20n }, { timeoutMs: 60_000 });
      const running = await cri.runtime.containerStatus({ containerId, verbose: true });
      const stats = (await cri.runtime.containerStats({ containerId })).stats;
      await cri.runtime.stopContainer({ containerId, timeout: 2n }, { timeoutMs: 60_000 });
      const exited = (await cri.runtime.containerStatus({ containerId })).status;
      await cri.runtime.removeContainer({ containerId }, { timeoutMs: 60_000 });
      const afterRemove = await cri.runtime.containerStatus({ containerId }).then(() => 'OK', codeName);
      containerId = '';
      await cri.runtime.stopPodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
      const stopped = stateName((await cri.runtime.podSandboxStatus({ podSandboxId: podId })).status?.state, PodSandboxState);
      await cri.runtime.removePodSandbox({ podSandboxId: podId }, { timeoutMs: 60_000 });
      const podAfterRemove = await cri.runtime.podSandboxStatus({ podSandboxId: podId }).then(() => 'OK', codeName);
      podId = '';
      return {
        sandboxState: stateName(ps.status?.state, PodSandboxState),
        sandboxHandler: ps.status?.runtimeHandler === runtimeHandler,
        createdState: created,
        logLine: logged,
        execSync: { stdout: Buffer.from(ex.stdout).toString(), stderr: Buffer.from(ex.stderr).toString(), exitCode: ex.exitCode },
        runningState: stateName(running.status?.state, ContainerState),
        statsCpu: (stats?.cpu?.usageCoreNanoSeconds?.value ?? 0n) > 0n,
        statsMemory: (stats?.memory?.workingSetBytes?.value ?? -1n) >= 0n && stats?.memory?.workingSetBytes !== undefined,
        exitedState: stateName(exited?.state, ContainerState),
        // PID 1 without a TERM handler: SIGKILL after the grace period, 137 (gVisor declares 143, see CRI_STOP_EXIT_STATUS).
        stopExitCode: exited?.exitCode ?? null,
        containerStatusAfterRemove: afterRemove,
        sandboxStateAfterStop: stopped,
        sandboxStatusAfterRemove: podAfterRemove,
      };
    },
    expect: (o) => (o.runningState === 'CONTAINER_RUNNING' && o.sandboxStatusAfterRemove === 'NotFound' ? [] : [`running ${o.runningState}, after remove ${o.sandboxStatusAfterRemove}`]),
  },
];
