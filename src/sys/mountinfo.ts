/**
 * The one /proc/<pid>/mountinfo parser (proc(5)): pure, on text the caller read.
 * Line: "id parent major:minor root mountpoint options [optional...] - fstype source superoptions";
 * paths keep the kernel's octal escapes (\040 for a space) undone.
 */
export interface MountInfo {
  id: number;
  parent: number;
  majorMinor: string;
  /** the path inside the filesystem that is mounted here (field 4) */
  root: string;
  mountPoint: string;
  options: string;
  fstype: string;
  source: string;
  superOptions: string;
}

const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Every well-formed line of `text`; malformed lines are skipped. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      majorMinor: f[2]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      options: f[5]!,
      fstype: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}
