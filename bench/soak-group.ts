// Soak section `group`: N containers in one shim group (io.containerd.runc.v2.group) and M execs
// spread over them, through a private containerd 1.6, for tsshim and runc-v2 in the same run.
// The group's first container is the baseline: once the other N-1 are removed, the shim's fds
// (sockets, pipes), children, zombies and mounts must be back to what they were with that one
// container; RSS before/after is reported. Every exec must exit 0 with its own output, or none
// at all (ctr's client drops buffered output now and then, with either shim: counted apart).
import type { SoakSection } from './soak.js';
import { uniqueId } from '../test/helpers/containerd.js';
import { sleep } from '../test/helpers/proc.js';
import { aboveBaseline, groupFlags, KINDS, removeContainer, round1, runtimeOf, shimPidOf, snapshot, waitContainerGone, withContainerd, type Kind, type SoakContainerd } from './soak-env.js';

async function inPool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function soakGroup(env: SoakContainerd, kind: Kind, containers: number, execs: number): Promise<{ figures: Record<string, unknown>; failures: string[] }> {
  const { cd, image } = env;
  const failures: string[] = [];
  const group = uniqueId('g');
  const ids = Array.from({ length: containers }, (_, i) => `${group}-c${i}`);
  const run = (id: string) => cd.ctr(['run', '-d', '--runtime', runtimeOf(kind), ...groupFlags(group), image, id, 'sleep', '3600'], { timeoutMs: 120_000 });
  const leader = ids[0]!;
  const r0 = await run(leader);
  if (r0.exitCode !== 0) throw new Error(`${kind}: ctr run ${leader}: ${r0.stderr.trim()}`);
  try {
    const shim = shimPidOf(cd, leader);
    await sleep(2000); // let the first container's start settle (its ctr connection closes)
    const base = snapshot(shim, cd.dir);
    const t0 = Date.now();
    let runFailures = 0;
    await inPool(ids.slice(1), 2, async (id) => {
      const r = await run(id);
      if (r.exitCode !== 0) {
        runFailures++;
        failures.push(`${kind}: ctr run ${id}: ${r.stderr.trim().slice(0, 300)}`);
      }
    });
    const createSeconds = (Date.now() - t0) / 1000;
    const shims = new Set(ids.slice(1).map((id) => {
      try {
        return shimPidOf(cd, id);
      } catch {
        return undefined;
      }
    }).filter((p) => p !== undefined));
    if (shims.size !== 0) failures.push(`${kind}: ${shims.size} other shim daemon(s) serve members of the group`);
    const full = snapshot(shim, cd.dir);
    const t1 = Date.now();
    let execFailures = 0;
    let ctrOutputLost = 0;
    const firstExecFailures: string[] = [];
    let halfway: ReturnType<typeof snapshot> | undefined;
    // two halves: RSS after each tells a plateau (heap high-water) from growth per exec (a leak)
    const execOne = async (i: number) => {
      const id = ids[i % ids.length]!;
      const r = await cd.ctr(['task', 'exec', '--exec-id', `x${i}`, id, 'sh', '-c', `echo soak-${i}`], { timeoutMs: 120_000 }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
      if (r.exitCode === 0 && r.stdout === '') {
        // ctr's own race, seen with both shims: its process.Delete closes the stdout FIFO reader
        // (cio copyIO cancel) before reading what the shim already wrote into the FIFO
        ctrOutputLost++;
      } else if (r.exitCode !== 0 || r.stdout.trim() !== `soak-${i}`) {
        execFailures++;
        if (firstExecFailures.length < 5) firstExecFailures.push(`exec x${i} in ${id}: exit ${r.exitCode}, stdout ${JSON.stringify(r.stdout.slice(0, 80))}, ${r.stderr.trim().slice(0, 200)}`);
      }
    };
    const half = Math.floor(execs / 2);
    await inPool(Array.from({ length: half }, (_, i) => i), 4, execOne);
    halfway = snapshot(shim, cd.dir);
    await inPool(Array.from({ length: execs - half }, (_, i) => half + i), 4, execOne);
    const execSeconds = (Date.now() - t1) / 1000;
    const afterExecs = snapshot(shim, cd.dir);
    for (const f of firstExecFailures) failures.push(`${kind}: ${f}`);
    await inPool(ids.slice(1), 2, (id) => removeContainer(cd, id));
    const gone: string[] = [];
    for (const id of ids.slice(1)) gone.push(...(await waitContainerGone(cd, id)).map((l) => `${id}: ${l}`));
    const { snap: after, above } = await aboveBaseline(shim, cd.dir, base);
    for (const l of gone.slice(0, 10)) failures.push(`${kind}: left behind by a removed container: ${l}`);
    for (const a of above) failures.push(`${kind}: shim not back to its one-container baseline: ${a}`);
    const alive = (() => {
      try {
        return shimPidOf(cd, leader) === shim;
      } catch {
        return false;
      }
    })();
    if (!alive) failures.push(`${kind}: the group's shim daemon is gone`);
    // the leader still serves
    const last = await cd.ctr(['task', 'exec', '--exec-id', 'last', leader, 'echo', 'still-here'], { timeoutMs: 60_000 });
    if (last.stdout.trim() !== 'still-here') failures.push(`${kind}: the leader's exec after the soak: exit ${last.exitCode} ${last.stderr.trim()}`);
    return {
      figures: {
        containers,
        execs,
        runFailures,
        execFailures,
        execsWhoseOutputCtrLost: ctrOutputLost,
        createSeconds: round1(createSeconds),
        execsPerSecond: round1(execs / execSeconds),
        shim: { baseline: base, withAll: full, afterHalfTheExecs: halfway, afterExecs, afterRemoval: after },
        leftoversOfRemovedContainers: gone.length,
      },
      failures,
    };
  } finally {
    await removeContainer(cd, leader);
    for (const id of ids) await removeContainer(cd, id).catch(() => undefined);
    const left = await waitContainerGone(cd, leader);
    if (left.length > 0) failures.push(`${kind}: the group leader left ${left.join(', ')}`);
  }
}

export const groupSection: SoakSection = {
  name: 'group',
  description: 'containers in one shim group and execs over them: fds, sockets, zombies, mounts back to baseline; RSS',
  async run({ short }) {
    const containers = short ? 10 : 50;
    const execs = short ? 100 : 1000;
    return withContainerd('soak-group', async (env) => {
      const figures: Record<string, unknown> = {};
      const failures: string[] = [];
      for (const kind of KINDS) {
        const r = await soakGroup(env, kind, containers, execs);
        figures[kind] = r.figures;
        // runc-v2 is the reference: its figures are reported, only tsshim's failures fail the soak
        if (kind === 'tsshim') failures.push(...r.failures);
        else if (r.failures.length) (figures[kind] as Record<string, unknown>).problems = r.failures;
      }
      return { figures, failures };
    });
  },
};
