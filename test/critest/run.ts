// The critest runner's parts (cli.ts is `npm run critest`):
//
// Kubernetes' CRI validation suite (critest, cri-tools) against a private containerd's CRI, once
// per runtime handler, on each selected containerd version (default: 2 and 1.6; 1.7 on request):
//
//   runc           io.containerd.runc.v2: that containerd's own containerd-shim-runc-v2 (the reference)
//   tsshim-runc    tsshim, runc handler
//   tsshim-gvisor  tsshim, gvisor handler (runsc, ptrace, gVisor netstack in the CNI netns)
//   tsshim-youki   tsshim, youki handler (the peer build of youki)
//   tsshim-kata    tsshim, kata handler with containerd-shim-runc-v2 as a STAND-IN delegate (no Kata here)
//   runsc-v1       gVisor's own shim containerd-shim-runsc-v1 (io.containerd.runsc.v1), PATCHED: oom_score_adj
//                  EPERM tolerated (no CAP_SYS_RESOURCE here); the same pinned runsc, platform and network as
//                  tsshim-gvisor: the yardstick for tsshim-gvisor's differences (ADR 0017); not on containerd 1.6
//
// The containerd is private (test/helpers/containerd.ts: own root, state, socket under
// /run/tsshim-test/), with CRI and real pod networking: a bridge + portmap CNI conflist on
// Debian's containernetworking-plugins (/usr/lib/cni), a private bridge and subnet. No registry is
// reachable: the images critest runs are LOCAL BUILDS (images.ts) imported under the names critest
// expects; tests that must pull from a registry are skipped by name (SKIPS), identically for every
// handler. Results (per version and handler: passed / failed / skipped, each failure with its
// message, the run's duration) are merged into docs/critest.json (entries keyed by version+handler,
// each with its own date and commit) and docs/critest.md is rendered from the whole JSON.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { startContainerd, TEST_BASE_DIR, type PrivateContainerd } from '../helpers/containerd.js';
import { CONTAINERD_VERSIONS, kataStandInDelegate, PEERS_DIR, type ContainerdVersion } from '../helpers/containerd-version.js';
import { CRI_NAMESPACE, CRI_PLUGIN_ID, RUNC_RUNTIME_TYPE, TSSHIM_RUNTIME_TYPE, criConfig, importCriImages } from '../helpers/cri.js';
import { REPO_ROOT, runCommand } from '../helpers/proc.js';
import { CRITEST_PAUSE_IMAGE, buildCritestImages, critestImageNames } from './images.js';
import {
  GVISOR_PEER_RUNSC,
  GVISOR_PLATFORM,
  GVISOR_SHIM_PATCHED,
  GVISOR_SHIM_PATCHED_LABEL,
  GVISOR_SHIM_RUNTIME,
  gvisorShimToml,
  patchedShimDetail,
  patchedShimUnavailable,
} from '../helpers/gvisor-peer.js';

export const CRITEST_DIR = join(PEERS_DIR, 'cri-tools');
export const CRITEST_BIN = join(CRITEST_DIR, 'bin', 'critest');
const YOUKI_BIN = join(PEERS_DIR, 'youki', 'bin', 'youki');

/** Tests skipped by name, for every handler alike: they need a registry (none is reachable here). */
export const SKIPS: Array<{ pattern: string; reason: string }> = [
  { pattern: 'Image Manager', reason: 'pulls images from gcr.io / registry.k8s.io (no registry reachable; the images it pulls are not local builds)' },
  { pattern: 'Image Consistency', reason: 'pulls and removes registry images (no registry reachable)' },
  { pattern: 'Image Identifier Consistency', reason: 'pulls the same image from two registries (no registry reachable)' },
  { pattern: 'Image Volume', reason: 'pulls a registry image to mount as a volume (no registry reachable)' },
  {
    pattern: 'runtime should support MaskedPaths',
    reason: 'not observable with the local image: Debian\'s busybox-static runs applets in-process (FEATURE_SH_STANDALONE), so `sh -c ls` never executes the masked /bin/ls',
  },
];

/**
 * Differences from the reference that are the backend's own, not tsshim's: each shown by running
 * the backend from its own CLI on a bundle, without a shim (the evidence script reproduces it).
 * Rendered into critest.md; the differences list marks the specs they cover.
 */
export const BACKEND_OWN: Array<{ handler: string; pattern: RegExp; owner: string; finding: string; evidence: string }> = [
  {
    handler: 'tsshim-youki',
    pattern: /Security Context SeccompProfilePath/,
    owner: 'youki 0.7.0',
    finding:
      'youki exec does not apply the container\'s seccomp profile to the exec\'d process (critest checks seccomp through ExecSync: `grep Seccomp /proc/self/status`, `hostname`, `chmod`). The container\'s init has its filter; under runc both have it. libcontainer 0.7.0 container/tenant_builder.rs adapt_spec_for_tenant rebuilds `linux` for the exec with namespaces, cgroups path, personality and time offsets only, so the seccomp section is dropped. The OCI process.json a shim hands to `exec --process` has no seccomp field, so a shim cannot put it back.',
    evidence:
      '`sh test/critest/evidence/youki-exec-seccomp.sh` (no shim, no containerd; seccomp denies sethostname, CAP_SYS_ADMIN granted, noNewPrivileges false): youki 0.7.0 `init: Seccomp: 2`, `exec: Seccomp: 0 sethostname: allowed`; runc 1.1.5 `init: Seccomp: 2`, `exec: Seccomp: 2 sethostname: denied`.',
  },
  {
    handler: 'tsshim-youki',
    pattern: /Container Mount Readonly .*recursive readonly/,
    owner: 'youki 0.7.0',
    finding:
      'skipped by critest, not failed: `youki features` (which tsshim\'s -info reports for the youki handler, as runc-v2 would with youki as its BinaryName) does not list `rro` among its mountOptions, so containerd 2.x\'s CRI says the handler lacks recursive read-only mounts and critest skips these specs.',
    evidence: '`/opt/tsshim/peers/youki/bin/youki features`: mountOptions has ro, rw, rbind, rshared, rslave, ... and no rro (runc 1.1.5 lists rro and rrw).',
  },
];

/** A note for a spec that BACKEND_OWN covers, or that a peer (gVisor's own shim) fails the same way. */
function ownNote(handler: string, spec: string, peer?: PeerVerdict): string {
  const own = BACKEND_OWN.find((o) => o.handler === handler && o.pattern.test(spec));
  if (own) return ` [${own.owner}'s own, see below]`;
  if (!peer) return '';
  if (peer.kind === 'same') return ` [gVisor's own: same failure under gVisor's own shim, see below]`;
  if (peer.kind === 'same-assertion-other-cause') return ` [fails under gVisor's own shim too, at the same assertion but from another cause; see below]`;
  if (peer.kind === 'differently') return ` [fails under gVisor's own shim too, but elsewhere (${peer.peer?.location ?? 'no location'}); see below]`;
  if (peer.kind === 'peer-passes') return ` [gVisor's own shim passes it: tsshim's]`;
  return ` [gVisor's own shim: ${peer.peer?.state ?? 'not run'}]`;
}

/**
 * How a spec that a handler fails fares under its peer (tsshim-gvisor -> runsc-v1, gVisor's own
 * shim) on the same containerd: `same` = the peer fails it at the same place (critest's
 * file:line of the failed assertion), which makes it gVisor's own; `same-assertion-other-cause` =
 * the same place, but the messages show another cause (a GVISOR_NOTES entry says which; a note can
 * only withhold the verdict, never grant it); `differently` = the peer fails it at another place;
 * `peer-passes` = tsshim's to fix. The peer's full row is the evidence; a later focused re-run of
 * the peer counts when the full row lacks the spec.
 */
export interface PeerVerdict {
  kind: 'same' | 'same-assertion-other-cause' | 'differently' | 'peer-passes' | 'other';
  peerHandler: string;
  peerRun?: RunEntry;
  peer?: SpecResult;
}

export function peerVerdict(entries: RunEntry[], reruns: RunEntry[], e: RunEntry, spec: SpecResult): PeerVerdict | undefined {
  const peerDef = HANDLERS.find((h) => h.peerFor === e.handler);
  if (!peerDef) return undefined;
  const candidates = [
    ...entries.filter((r) => r.containerd === e.containerd && r.handler === peerDef.name && !r.notRun),
    ...reruns.filter((r) => r.containerd === e.containerd && r.handler === peerDef.name && !r.notRun).sort((a, b) => b.date.localeCompare(a.date)),
  ];
  for (const run of candidates) {
    const p = run.specs.find((x) => x.name === spec.name);
    if (!p) continue;
    let kind: PeerVerdict['kind'] = p.state === 'passed' ? 'peer-passes' : p.state !== 'failed' ? 'other' : p.location && p.location === spec.location ? 'same' : 'differently';
    if (kind === 'same' && GVISOR_NOTES.some((g) => g.otherCause && g.pattern.test(spec.name))) kind = 'same-assertion-other-cause';
    return { kind, peerHandler: peerDef.name, peerRun: run, peer: p };
  }
  return candidates.length ? { kind: 'other', peerHandler: peerDef.name } : undefined;
}

/** The handler as titled in the reports: its name with its tag (stand-in delegate, patched peer). */
export function handlerTitle(e: Pick<RunEntry, 'handler' | 'standIn'>): string {
  const tag = HANDLERS.find((h) => h.name === e.handler)?.tag;
  return `${e.handler}${e.standIn ? ' (stand-in delegate)' : ''}${tag ? ` (${tag})` : ''}`;
}

export interface HandlerDef {
  name: string;
  runtimeType: string;
  label: string;
  standIn?: boolean;
  /** Handler TOML (ConfigPath: tsshim's handler config, or containerd-shim-runsc-v1's options); none for the reference. */
  toml?: (version: ContainerdVersion) => string;
  /** The shim binary by absolute path (CRI runtime_path), when it is not found from the runtime type. */
  runtimePath?: string;
  unavailable?: (version: ContainerdVersion) => string | undefined;
  /** The handler whose failures this one is the yardstick for (runsc-v1 -> tsshim-gvisor): "same failure under gVisor's own shim". */
  peerFor?: string;
  /** Shown after the handler's name in every report (what it is, when the name does not say). */
  tag?: string;
}

function gvisorBinary(): string {
  return existsSync(join(PEERS_DIR, 'gvisor', 'VERSION')) && existsSync(GVISOR_PEER_RUNSC) ? GVISOR_PEER_RUNSC : 'runsc';
}

export const HANDLERS: HandlerDef[] = [
  { name: 'runc', runtimeType: RUNC_RUNTIME_TYPE, label: 'reference: io.containerd.runc.v2 (that containerd\'s own containerd-shim-runc-v2)' },
  { name: 'tsshim-runc', runtimeType: TSSHIM_RUNTIME_TYPE, label: 'tsshim, runc handler', toml: () => 'handler = "runc"\nname = "tsshim-runc"\n' },
  {
    name: 'tsshim-youki',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    label: 'tsshim, youki handler',
    toml: () => `handler = "youki"\nname = "tsshim-youki"\nbinary = ${JSON.stringify(existsSync(YOUKI_BIN) ? YOUKI_BIN : 'youki')}\n`,
    unavailable: () => (existsSync(join(PEERS_DIR, 'youki', 'VERSION')) && existsSync(YOUKI_BIN)) || onPath('youki') ? undefined : `youki is not built (${YOUKI_BIN}; run scripts/setup.sh)`,
  },
  {
    name: 'tsshim-kata',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    label: 'tsshim, kata handler, STAND-IN delegate containerd-shim-runc-v2 (not Kata: no VM here; that containerd\'s own build, see kataStandInDelegate)',
    standIn: true,
    toml: (version) =>
      `handler = "kata"\nname = "tsshim-kata"\n\n[options]\n# stand-in delegate: real Kata (containerd-shim-kata-v2) is not installable here\nshim = ${JSON.stringify(kataStandInDelegate(version))}\n`,
  },
  {
    name: 'tsshim-gvisor',
    runtimeType: TSSHIM_RUNTIME_TYPE,
    label: `tsshim, gvisor handler (${GVISOR_PLATFORM}, network = sandbox)`,
    toml: () => `handler = "gvisor"\nname = "tsshim-gvisor"\nbinary = ${JSON.stringify(gvisorBinary())}\n\n[options]\nplatform = "${GVISOR_PLATFORM}"\nnetwork = "sandbox"\n`,
    unavailable: () => (gvisorBinary() === 'runsc' && !onPath('runsc') ? 'runsc is not installed' : undefined),
  },
  {
    name: 'runsc-v1',
    runtimeType: GVISOR_SHIM_RUNTIME,
    get label() {
      return `${GVISOR_SHIM_PATCHED_LABEL}: containerd-shim-runsc-v1 (${GVISOR_SHIM_RUNTIME}) at ${GVISOR_SHIM_PATCHED}, the same runsc, platform and network as tsshim-gvisor (${GVISOR_PLATFORM}, network = sandbox); ${patchedShimDetail()}`;
    },
    toml: () => gvisorShimToml('sandbox'),
    runtimePath: GVISOR_SHIM_PATCHED,
    unavailable: (version) => patchedShimUnavailable(version),
    peerFor: 'tsshim-gvisor',
    tag: GVISOR_SHIM_PATCHED_LABEL,
  },
];

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d && existsSync(join(d, bin)));
}

export interface SpecResult {
  name: string;
  state: 'passed' | 'failed' | 'skipped';
  /** Failure message, or the skip reason. */
  message?: string;
  location?: string;
  seconds?: number;
}

export interface RunEntry {
  containerd: ContainerdVersion;
  containerdVersion: string;
  handler: string;
  label: string;
  standIn: boolean;
  critest: string;
  date: string;
  commit: string;
  /** Wall time of the critest run (s). */
  seconds: number;
  focus?: string;
  /** Why the run did not happen (then no counts). */
  notRun?: string;
  passed: number;
  failed: number;
  skipped: number;
  specs: SpecResult[];
}

interface GinkgoSpec {
  ContainerHierarchyTexts?: string[] | null;
  LeafNodeText?: string;
  LeafNodeType?: string;
  State?: string;
  RunTime?: number;
  Failure?: { Message?: string; Location?: { FileName?: string; LineNumber?: number }; ForwardedPanic?: string };
}

const BENCHMARK = /benchmark/i;

/**
 * Ginkgo JSON report -> spec results (benchmark specs, which critest itself skips in validation runs,
 * are left out). `focused`: a --ginkgo.focus run; specs outside the focus (skipped without a message
 * of critest's own) are left out too, so the counts are those of the focused specs.
 */
export function parseGinkgoReport(json: string, focused = false): SpecResult[] {
  const suites = JSON.parse(json) as Array<{ SpecReports?: GinkgoSpec[] }>;
  const out: SpecResult[] = [];
  for (const s of suites) {
    for (const r of s.SpecReports ?? []) {
      const type = r.LeafNodeType ?? 'It';
      const name = [...(r.ContainerHierarchyTexts ?? []), r.LeafNodeText ?? ''].filter(Boolean).join(' ').trim() || type;
      const state = r.State ?? 'unknown';
      if (type !== 'It' && state === 'passed') continue; // suite set-up nodes that worked are not tests
      if (BENCHMARK.test(name)) continue;
      if (focused && (state === 'skipped' || state === 'pending') && !r.Failure?.Message?.trim()) continue;
      const skip = SKIPS.find((k) => name.includes(k.pattern));
      let st: SpecResult['state'];
      let message: string | undefined;
      if (state === 'passed') st = 'passed';
      else if (state === 'skipped' || state === 'pending') {
        st = 'skipped';
        message = skip ? `skipped by name: ${skip.reason}` : (r.Failure?.Message?.trim() || (state === 'pending' ? 'pending in critest' : 'skipped by critest'));
      } else {
        st = 'failed';
        message = `${state}: ${(r.Failure?.Message ?? '').trim()}${r.Failure?.ForwardedPanic ? `\npanic: ${r.Failure.ForwardedPanic}` : ''}`;
      }
      const loc = r.Failure?.Location?.FileName ? `${r.Failure.Location.FileName.replace(/^.*\/cri-tools@[^/]+\//, '')}:${r.Failure.Location.LineNumber}` : undefined;
      out.push({ name, state: st, ...(message ? { message } : {}), ...(st === 'failed' && loc ? { location: loc } : {}), seconds: Math.round((r.RunTime ?? 0) / 1e7) / 100 });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

function skipRegex(): string {
  return SKIPS.map((s) => s.pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

/** HEAD of the checkout; a copy of a build (no .git) may carry it in a COMMIT file. */
export async function gitCommit(): Promise<string> {
  const r = await runCommand('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { timeoutMs: 10_000 }).catch(() => undefined);
  if (r?.exitCode === 0 && r.stdout.trim()) return r.stdout.trim();
  try {
    return readFileSync(join(REPO_ROOT, 'COMMIT'), 'utf8').trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The critest process running now (killed when the runner is interrupted). */
export const running: { child?: ReturnType<typeof spawn> } = {};

export async function critestVersion(): Promise<string> {
  try {
    return readFileSync(join(CRITEST_DIR, 'VERSION'), 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** The CNI set-up of one run: a bridge + portmap conflist in a private conf dir, Debian's plugins. */
function cniSetup(dir: string): { confDir: string; bridge: string; network: string } {
  const hex = randomBytes(3).toString('hex');
  const confDir = join(dir, 'cni-conf');
  mkdirSync(confDir, { recursive: true });
  const network = `tsshim-critest-${hex}`;
  const bridge = `tcri${hex}`;
  const third = 100 + (parseInt(hex.slice(0, 2), 16) % 100);
  writeFileSync(
    join(confDir, '10-tsshim-critest.conflist'),
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: network,
        plugins: [
          {
            type: 'bridge',
            bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: `10.${third}.${parseInt(hex.slice(2, 4), 16)}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ),
  );
  return { confDir, bridge, network };
}

/** portmap's DNAT rules (and their chains) for our network that an interrupted run left behind. */
async function removePortmapRules(network: string): Promise<void> {
  const list = await runCommand('iptables', ['-t', 'nat', '-L', 'CNI-HOSTPORT-DNAT', '-n', '--line-numbers'], { timeoutMs: 10_000 }).catch(() => undefined);
  if (!list || list.exitCode !== 0) return;
  const rows = list.stdout.split('\n').filter((l) => l.includes(`"${network}"`)).map((l) => l.trim().split(/\s+/));
  for (const [num, chain] of rows.reverse()) {
    await runCommand('iptables', ['-t', 'nat', '-D', 'CNI-HOSTPORT-DNAT', num!], { timeoutMs: 10_000 }).catch(() => undefined);
    if (chain?.startsWith('CNI-DN-')) {
      await runCommand('iptables', ['-t', 'nat', '-F', chain], { timeoutMs: 10_000 }).catch(() => undefined);
      await runCommand('iptables', ['-t', 'nat', '-X', chain], { timeoutMs: 10_000 }).catch(() => undefined);
    }
  }
}

function listNetns(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

interface VersionRun {
  cd: PrivateContainerd;
  dir: string;
  cleanup(): Promise<void>;
}

export async function startCriContainerd(version: ContainerdVersion, log: (l: string) => void): Promise<VersionRun> {
  const dir = join(TEST_BASE_DIR, `critest-${version}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  const runtimes: Parameters<typeof criConfig>[0] = {};
  for (const h of HANDLERS) {
    if (!h.toml || h.unavailable?.(version)) continue;
    const p = join(dir, `${h.name}.toml`);
    writeFileSync(p, h.toml(version));
    runtimes[h.name] = { runtimeType: h.runtimeType, configPath: p, ...(h.runtimePath ? { runtimePath: h.runtimePath } : {}) };
  }
  const cni = cniSetup(dir);
  const netnsBefore = new Set(listNetns());
  // criConfig's CRI table, with real CNI: Debian's plugins and our conflist.
  const doc = parseToml(criConfig(runtimes, { cniDir: join(dir, 'cni-unused'), sandboxImage: CRITEST_PAUSE_IMAGE })) as Record<string, any>;
  doc.plugins[CRI_PLUGIN_ID].cni = { bin_dir: '/usr/lib/cni', conf_dir: cni.confDir, max_conf_num: 1 };
  const cd = await startContainerd({ name: `critest-${version}`, containerd: version, extraConfig: stringifyToml(doc) });
  log(`[critest] containerd ${version} (${cd.binaries.containerd}) at ${cd.address}; CNI bridge ${cni.bridge}`);
  await importCriImages(cd);
  const archive = await buildCritestImages();
  const r = await cd.ctr(['images', 'import', archive], { namespace: CRI_NAMESPACE, timeoutMs: 300_000 });
  if (r.exitCode !== 0) throw new Error(`ctr images import ${archive}: ${r.stderr}`);
  const ls = (await cd.ctr(['images', 'ls', '-q'], { namespace: CRI_NAMESPACE })).stdout.split('\n');
  for (const n of critestImageNames()) if (!ls.includes(n)) throw new Error(`critest image ${n} missing after import`);
  return {
    cd,
    dir,
    async cleanup() {
      await cd.stop();
      // Pod network namespaces CRI made during this run and did not remove (an interrupted run).
      for (const ns of listNetns()) if (ns.startsWith('cni-') && !netnsBefore.has(ns)) await runCommand('ip', ['netns', 'del', ns], { timeoutMs: 10_000 }).catch(() => undefined);
      await removePortmapRules(cni.network);
      await runCommand('ip', ['link', 'del', cni.bridge], { timeoutMs: 10_000 }).catch(() => undefined);
      rmSync(join('/var/lib/cni/networks', cni.network), { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function runCritest(cd: PrivateContainerd, handler: string, logFile: string, reportFile: string, focus?: string): Promise<{ seconds: number; exitCode: number }> {
  const endpoint = `unix://${cd.address}`;
  const args = [
    `--runtime-endpoint=${endpoint}`,
    `--image-endpoint=${endpoint}`,
    `--runtime-handler=${handler}`,
    `--ginkgo.skip=${skipRegex()}`,
    `--ginkgo.json-report=${reportFile}`,
    '--ginkgo.no-color',
    '--ginkgo.seed=1', // the same spec order for every handler
    '--ginkgo.timeout=3h',
    ...(focus ? [`--ginkgo.focus=${focus}`] : []),
  ];
  const out = createWriteStream(logFile);
  const started = Date.now();
  const exitCode = await new Promise<number>((resolve, reject) => {
    const child = spawn(CRITEST_BIN, args, { cwd: '/tmp', stdio: ['ignore', 'pipe', 'pipe'] });
    running.child = child;
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.on('error', reject);
    child.on('close', (code, sig) => resolve(code ?? 128 + (sig ? 9 : 0)));
  });
  out.end();
  return { seconds: Math.round((Date.now() - started) / 100) / 10, exitCode };
}

export function renderMarkdown(entries: RunEntry[], reruns: RunEntry[] = []): string {
  const lines: string[] = [
    '# critest (Kubernetes CRI validation) on every handler',
    '',
    'Generated by `npm run critest` (test/critest/run.ts) into docs/critest.json and this page; each row is one',
    'critest run against a private containerd\'s CRI with `--runtime-handler` set to the handler. The reference is',
    '`runc` (io.containerd.runc.v2, that containerd\'s own containerd-shim-runc-v2).',
    '`runsc-v1` is gVisor\'s own shim (containerd-shim-runsc-v1), built with one relaxation: ' + GVISOR_SHIM_PATCHED_LABEL + ' (ADR 0017);',
    'it drives the same pinned runsc with the same platform and network as tsshim-gvisor and is the yardstick for',
    'tsshim-gvisor\'s failures ("gVisor\'s own" below). It runs on containerd 2.x only (1.6 cannot read its start answer).',
    '',
    '**The images are local builds.** No registry is reachable here: the images critest runs',
    `(${critestImageNames().map((n) => '`' + n + '`').join(', ')}) are built from busybox-static plus small`,
    'programs compiled with Debian\'s gcc (test/critest/images.ts; a busybox httpd where critest wants nginx/httpd)',
    'and imported under the names critest expects. Pods get real networking (bridge + portmap CNI, Debian\'s',
    'containernetworking-plugins).',
    '',
    'Skipped by name for every handler alike (`--ginkgo.skip`):',
    '',
    ...SKIPS.map((s) => `- \`${s.pattern}\`: ${s.reason}`),
    '',
    'Other skips are critest\'s own (a feature this host lacks: AppArmor, SELinux, NRI socket, ...), with its message.',
    'Benchmark specs (which critest leaves out of validation runs) are not counted.',
    '',
    'Each row carries the date and commit of its own run: a row is replaced only when that containerd and handler',
    'are run again in full, so rows of different dates and commits stand side by side. Focused re-runs (`--focus`)',
    'are listed in their own section below.',
    '',
    '| containerd | handler | passed | failed | skipped | critest run (s) | date | commit |',
    '|---|---|---:|---:|---:|---:|---|---|',
  ];
  const order = (e: RunEntry) => [CONTAINERD_VERSIONS.slice().reverse().indexOf(e.containerd), HANDLERS.findIndex((h) => h.name === e.handler)];
  const sorted = [...entries].sort((a, b) => {
    const [x1, y1] = order(a);
    const [x2, y2] = order(b);
    return x1! - x2! || y1! - y2!;
  });
  for (const e of sorted) {
    const h = handlerTitle(e);
    if (e.notRun) lines.push(`| ${e.containerdVersion} | ${h} | - | - | - | - | ${e.date.slice(0, 16)} | ${e.commit} |`);
    else lines.push(`| ${e.containerdVersion} | ${h} | ${e.passed} | ${e.failed} | ${e.skipped} | ${e.seconds} | ${e.date.slice(0, 16)} | ${e.commit} |`);
  }
  for (const v of [...new Set(sorted.map((e) => e.containerd))]) {
    const runs = sorted.filter((e) => e.containerd === v && !e.notRun);
    const total = runs.reduce((a, e) => a + e.seconds, 0);
    if (runs.length) lines.push('', `containerd ${v}: ${runs.length} critest runs, ${Math.round(total)} s of critest in all (${Math.round(total / runs.length)} s per handler on average; the private containerd's start and image import add about 10 s per version).`);
  }
  const notRun = sorted.filter((e) => e.notRun);
  if (notRun.length) {
    lines.push('', '## Not run', '');
    for (const e of notRun) lines.push(`- containerd ${e.containerd}, ${e.handler}: ${e.notRun}`);
  }
  // Differences from the reference on the same containerd.
  lines.push('', '## Differences from the reference (same containerd)', '');
  let anyDiff = false;
  for (const e of sorted) {
    if (e.handler === 'runc' || e.notRun) continue;
    const ref = sorted.find((r) => r.containerd === e.containerd && r.handler === 'runc' && !r.notRun);
    if (!ref) continue;
    const refState = new Map(ref.specs.map((s) => [s.name, s.state]));
    const worse = e.specs.filter((s) => s.state === 'failed' && refState.get(s.name) === 'passed');
    const better = e.specs.filter((s) => s.state === 'passed' && refState.get(s.name) === 'failed');
    const skippedHere = e.specs.filter((s) => s.state === 'skipped' && refState.get(s.name) === 'passed');
    if (!worse.length && !better.length && !skippedHere.length) continue;
    anyDiff = true;
    const names = (list: SpecResult[]) => list.map((s) => `${s.name}${rerunNote(reruns, e, s.name)}${ownNote(e.handler, s.name, s.state === 'failed' ? peerVerdict(sorted, reruns, e, s) : undefined)}`).join('; ');
    lines.push(`- containerd ${e.containerd}, **${e.handler}**: ${worse.length} failing where the reference passes${worse.length ? ` (${names(worse)})` : ''}${better.length ? `; ${better.length} passing where the reference fails` : ''}${skippedHere.length ? `; ${skippedHere.length} skipped by critest where the reference passes (${[...new Set(skippedHere.map((s) => s.message))].join('; ')}: ${names(skippedHere)})` : ''}`);
  }
  if (!anyDiff) lines.push('None: every test the reference passes, every handler run here passes too (see the table for which ran).');
  lines.push(
    '',
    '## Differences that are the backend\'s own (not tsshim\'s)',
    '',
    'Each reproduced with the backend alone, from its own CLI on a bundle (no shim, no containerd):',
    '',
  );
  for (const o of BACKEND_OWN) lines.push(`- **${o.handler}, ${o.owner}** (specs matching \`${o.pattern.source}\`): ${o.finding} Evidence: ${o.evidence}`);
  lines.push(...peerSection(sorted, reruns));
  lines.push('', '## Failures', '');
  let anyFail = false;
  for (const e of sorted) {
    const fails = e.specs.filter((s) => s.state === 'failed');
    if (!fails.length) continue;
    anyFail = true;
    lines.push(`### containerd ${e.containerd}, ${handlerTitle(e)}`, '');
    for (const f of fails) {
      const msg = (f.message ?? '').replace(/\s+/g, ' ').slice(0, 600);
      lines.push(`- **${f.name}**${f.location ? ` (${f.location})` : ''}: ${msg.replace(/\|/g, '\\|')}`);
    }
    lines.push('');
  }
  if (!anyFail) lines.push('None.');
  if (reruns.length) {
    lines.push(
      '',
      '## Focused re-runs (after the full runs above)',
      '',
      'critest with `--ginkgo.focus` on the specs a full run found wanting, after a fix or to prove whose the',
      'failure is; each re-run beside the reference on the same containerd and focus. The full rows above are',
      'not changed by them; the differences list points here.',
      '',
      '| containerd | handler | focus | passed | failed | skipped | critest run (s) | date | commit |',
      '|---|---|---|---:|---:|---:|---:|---|---|',
    );
    const rs = [...reruns].sort((a, b) => a.date.localeCompare(b.date) || HANDLERS.findIndex((h) => h.name === a.handler) - HANDLERS.findIndex((h) => h.name === b.handler));
    for (const e of rs) {
      const h = handlerTitle(e);
      const focus = '`' + (e.focus ?? '').replace(/\|/g, '\\|') + '`';
      if (e.notRun) lines.push(`| ${e.containerdVersion} | ${h} | ${focus} | - | - | - | - | ${e.date.slice(0, 16)} | ${e.commit} |`);
      else lines.push(`| ${e.containerdVersion} | ${h} | ${focus} | ${e.passed} | ${e.failed} | ${e.skipped} | ${e.seconds} | ${e.date.slice(0, 16)} | ${e.commit} |`);
    }
    for (const e of rs) {
      if (e.notRun) continue;
      lines.push('', `### re-run: containerd ${e.containerd}, ${handlerTitle(e)}, ${e.date.slice(0, 16)}`, '');
      for (const sp of e.specs) {
        const msg = sp.state === 'passed' ? '' : `: ${(sp.message ?? '').replace(/\s+/g, ' ').slice(0, 400).replace(/\|/g, '\\|')}`;
        lines.push(`- ${sp.state}: ${sp.name}${msg}`);
      }
    }
  }
  lines.push('', '## Runs', '');
  for (const e of sorted) {
    lines.push(`- containerd ${e.containerdVersion}, ${e.handler}: ${e.label}; ${e.critest}; ${e.notRun ? 'not run' : `${e.seconds} s`}${e.focus ? `; focus ${e.focus}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Why a spec fails under gVisor: the cause in gVisor, read from the pinned source (paths in
 * gvisor.dev/gvisor), rendered beside the "same failure under gVisor's own shim" verdicts. A note
 * never makes a verdict (only the peer's own run does); `otherCause` withholds one where both fail
 * at the same assertion for different reasons.
 */
export const GVISOR_NOTES: Array<{ pattern: RegExp; note: string; otherCause?: boolean }> = [
  {
    pattern: /Container Mount Propagation .*'rshared'/,
    note: 'runsc refuses a root mount propagation other than private or slave (runsc/specutils/fs.go: "root mount propagation option must specify private or slave"); CRI sets rshared for a bidirectional mount.',
  },
  {
    pattern: /should support non-recursive readonly mounts/,
    note: 'inside the sandbox the host directory is one gVisor mount served by the gofer; the host tmpfs mounted below it is not a mount of its own there, so it is read-only with its parent (observed under both shims).',
  },
  {
    pattern: /Container OOM/,
    note: 'observed under both shims: the `dd bs=20M` under a 15 MiB limit is not OOM-killed within critest\'s 60 s and the container stays RUNNING (the application\'s memory is the Sentry\'s, not that of a host process in the container\'s cgroup).',
  },
  {
    pattern: /should support (safe|unsafe) sysctls/,
    note: 'gVisor\'s /proc/sys has no kernel/shm_rmid_forced and no fs/mqueue/msg_max (pkg/sentry/fsimpl/proc), so the sysctls cannot be read back.',
  },
  {
    pattern: /Security Context bucket runtime should support (adding capability|Privileged is true)/,
    note: 'gVisor\'s sysfs has no /sys/class/net (pkg/sentry/fsimpl/sys/sys.go builds class/ without it), which busybox brctl needs.',
  },
  {
    pattern: /should support ReadonlyPaths/,
    note: 'runsc does not apply linux.readonlyPaths (the pinned runsc reads the field only to strip it from its debug log, runsc/specutils/specutils.go).',
  },
  {
    pattern: /HostIpc is true/,
    note: 'the Sentry has its own System V IPC; a host shared-memory segment is not visible in the sandbox.',
  },
  {
    pattern: /HostNetwork is true|portforward in host network/,
    note: 'both shims run runsc with network = sandbox; for a spec without a network namespace (a host-network pod) runsc starts the sandbox in a new, empty network namespace (runsc/sandbox/sandbox.go: "Sandbox will be started in new network namespace"), so the pod sees none of the host\'s ports and its listeners are not on the host.',
  },
  {
    pattern: /Streaming runtime should support streaming interfaces runtime should support portforward \[Conformance\]/,
    note: 'CRI port-forward dials the port inside the pod\'s network namespace on the host kernel; with network = sandbox the server listens in gVisor\'s netstack, not in that namespace ("lost connection to pod").',
  },
  {
    pattern: /NoNewPrivs should allow privilege escalation when false/,
    note: 'runsc ignores set-user-ID bits unless started with --allow-suid (runsc/config/config.go AllowSUID, off by default; neither shim sets it), so the setuid-root test binary runs as uid 1000.',
  },
  {
    pattern: /SeccompProfilePath/,
    note: 'runsc applies the OCI seccomp profile inside the sandbox only with --oci-seccomp (runsc/config/config.go OCISeccomp, off by default; neither shim sets it; tsshim\'s `[options.runsc_config] oci-seccomp = true` would).',
  },
  {
    pattern: /UserNamespaces when Host idmap mount support is needed runtime should support NamespaceMode_POD/,
    otherCause: true,
    note: 'both fail to create the pod sandbox, at different steps: tsshim\'s own rootfs mount refuses the idmapped overlay (mount(2) EINVAL: tsshim passes containerd\'s overlay mount options to the kernel and has no idmapped-layer preparation, which containerd\'s Go mount package does for gVisor\'s shim), while gVisor\'s own shim mounts it and runsc\'s gofer then fails to join the pod\'s user namespace ("error setting namespace of type user"). Not fixed: the spec would still fail in runsc. The reference (runc 1.1.5) skips it: its features list no idmap mounts.',
  },
];

const short = (m: string | undefined, n = 220) => (m ?? '').replace(/\s+/g, ' ').slice(0, n).replace(/\|/g, '\\|');

/**
 * The "same failure under gVisor's own shim" section: every failure of a handler with a peer
 * (tsshim-gvisor), with what the reference and the peer did on the same containerd.
 */
function peerSection(sorted: RunEntry[], reruns: RunEntry[]): string[] {
  const out: string[] = [];
  for (const e of sorted) {
    const peerDef = HANDLERS.find((h) => h.peerFor === e.handler);
    if (!peerDef || e.notRun) continue;
    const ref = sorted.find((r) => r.containerd === e.containerd && r.handler === 'runc' && !r.notRun);
    const refState = new Map((ref?.specs ?? []).map((x) => [x.name, x.state]));
    const fails = e.specs.filter((x) => x.state === 'failed');
    if (!fails.length) continue;
    const verdicts = fails.map((x) => ({ spec: x, v: peerVerdict(sorted, reruns, e, x), ref: refState.get(x.name) }));
    const worse = verdicts.filter((x) => x.ref === 'passed');
    const peerRow = sorted.find((r) => r.containerd === e.containerd && r.handler === peerDef.name);
    const own = (l: typeof verdicts) => l.filter((x) => x.v?.kind === 'same').length;
    out.push('', `### containerd ${e.containerd}, ${e.handler} against ${handlerTitle({ handler: peerDef.name, standIn: false })}`, '');
    if (peerRow && !peerRow.notRun) {
      out.push(
        `${e.handler} (${e.date.slice(0, 16)}, ${e.commit}) fails ${fails.length} specs, ${worse.length} of them where the reference passes; each is looked up in the ${peerDef.name} row of the same containerd (${peerRow.date.slice(0, 16)}, ${peerRow.commit}: ${peerRow.passed} passed, ${peerRow.failed} failed, ${peerRow.skipped} skipped) or a later focused re-run of it. **gVisor's own** = ${peerDef.name} fails the same spec at the same critest assertion (file:line), both messages shown. Where the reference passes: ${own(worse)} of ${worse.length} are gVisor's own; in all: ${own(verdicts)} of ${fails.length}.`,
        '',
      );
    } else {
      out.push(`${peerDef.name} has no run on this containerd${peerRow?.notRun ? ` (not run: ${peerRow.notRun})` : ''}: no failure of ${e.handler} here is shown to be gVisor's own by a run on it. What ${e.handler} and ${peerDef.name} do with each spec on another containerd is shown as an indication only.`, '');
    }
    const note = (name: string) => {
      const n = GVISOR_NOTES.find((g) => g.pattern.test(name));
      return n ? ` Why: ${n.note}` : '';
    };
    const refNote = (st: string | undefined) => (st === 'passed' ? '' : ` (reference: ${st ?? 'not run'})`);
    const order = (k: PeerVerdict['kind'] | undefined) => (k === 'same' ? 0 : 1);
    for (const { spec, v, ref: st } of [...verdicts].sort((a, b) => order(a.v?.kind) - order(b.v?.kind))) {
      const head = `- **${spec.name}** (${spec.location ?? 'no location'})${refNote(st)}:`;
      if (!peerRow || peerRow.notRun) {
        const other = sorted.filter((r) => r.containerd !== e.containerd && r.handler === peerDef.name && !r.notRun);
        const hint = other
          .map((r) => {
            const p = r.specs.find((x) => x.name === spec.name);
            const mine = sorted.find((x) => x.containerd === r.containerd && x.handler === e.handler && !x.notRun)?.specs.find((x) => x.name === spec.name);
            return p ? `on containerd ${r.containerd}: ${peerDef.name} ${p.state}${p.location ? ` at ${p.location}` : ''}, ${e.handler} ${mine?.state ?? 'not run'}` : undefined;
          })
          .filter(Boolean)
          .join('; ');
        out.push(`${head} ${hint ? `indication ${hint}` : 'no indication'}. ${e.handler}: ${short(spec.message)}.${note(spec.name)}`);
        continue;
      }
      const peerMsg = v?.peer ? `${v.peerHandler}${v.peerRun?.focus ? ` (focused re-run ${v.peerRun.date.slice(0, 16)})` : ''}: ${short(v.peer.message)}` : '';
      const what =
        !v || !v.peer
          ? `not shown: ${peerDef.name} did not run it`
          : v.kind === 'same'
            ? "gVisor's own"
            : v.kind === 'same-assertion-other-cause'
              ? `**not shown to be gVisor's own**: ${v.peerHandler} fails it at the same assertion, from another cause`
              : v.kind === 'peer-passes'
                ? `**not gVisor's own**: ${v.peerHandler} passes it`
                : v.kind === 'differently'
                  ? `**fails under ${v.peerHandler} too, at another assertion** (${v.peer.location ?? 'no location'})`
                  : `${v.peerHandler}: ${v.peer.state}`;
      out.push(`${head} ${what}. ${e.handler}: ${short(spec.message)}${peerMsg && v?.kind !== 'peer-passes' ? `; ${peerMsg}` : ''}.${note(spec.name)}`);
    }
  }
  if (out.length) out.unshift('', "## Differences that are gVisor's own (same failure under gVisor's own shim)");
  return out;
}

/** " (focused re-run <date> at <commit>: passed)" for the latest re-run of that spec on that version and handler. */
function rerunNote(reruns: RunEntry[], e: RunEntry, spec: string): string {
  const hit = reruns
    .filter((r) => r.containerd === e.containerd && r.handler === e.handler && !r.notRun && r.date > e.date)
    .sort((a, b) => b.date.localeCompare(a.date))
    .map((r) => ({ r, s: r.specs.find((x) => x.name === spec) }))
    .find((x) => x.s);
  return hit ? ` (focused re-run ${hit.r.date.slice(0, 16)} at ${hit.r.commit}: ${hit.s!.state})` : '';
}

function loadReruns(file: string): RunEntry[] {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { reruns?: RunEntry[] }).reruns ?? [];
  } catch {
    return [];
  }
}

function loadEntries(file: string): RunEntry[] {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { runs: RunEntry[] }).runs ?? [];
  } catch {
    return [];
  }
}

/** docs/critest.md again from docs/critest.json (no run). */
export function renderDocs(outDir: string): string {
  const md = join(outDir, 'critest.md');
  writeFileSync(md, renderMarkdown(loadEntries(join(outDir, 'critest.json')), loadReruns(join(outDir, 'critest.json'))));
  return md;
}

/**
 * Merges fresh results into docs/critest.json and renders docs/critest.md. Full runs replace the
 * row of their (version, handler); focused runs (entries with `focus`) go to `reruns`, replacing
 * only an earlier re-run of the same version, handler and focus.
 */
export function writeDocs(outDir: string, fresh: RunEntry[]): { json: string; md: string } {
  const json = join(outDir, 'critest.json');
  const md = join(outDir, 'critest.md');
  const full = fresh.filter((e) => !e.focus);
  const focused = fresh.filter((e) => e.focus);
  const runs = [...loadEntries(json).filter((o) => !full.some((n) => n.containerd === o.containerd && n.handler === o.handler)), ...full];
  const reruns = [...loadReruns(json).filter((o) => !focused.some((n) => n.containerd === o.containerd && n.handler === o.handler && n.focus === o.focus)), ...focused];
  writeFileSync(
    json,
    JSON.stringify({ generatedBy: 'npm run critest (test/critest/run.ts)', localImages: critestImageNames(), skippedByName: SKIPS, runs, ...(reruns.length ? { reruns } : {}) }, null, 2) + '\n',
  );
  writeFileSync(md, renderMarkdown(runs, reruns));
  return { json, md };
}
