/**
 * `npm run image`: the bridge as an OCI image, built from the project itself without a container
 * daemon or a base image (nothing is pulled). One layer holds exactly what the bridge runs on:
 *
 *   /usr/local/bin/node                 the Node 24 the `node` devDependency installed, symbols stripped
 *   /lib/..., /lib64/...                the shared libraries that binary links (glibc, libstdc++, libgcc),
 *                                       copied from this machine as `ldd` resolves them
 *   /opt/podwarden/bin/podwarden.mjs    the CLI bundled with esbuild (entrypoint; default command `bridge`)
 *   /etc/ssl/certs/ca-certificates.crt  this machine's CA bundle (Debian's ca-certificates)
 *   /etc/passwd, /etc/group             root and the non-root user 65532 the image runs as
 *   /usr/share/doc/*, THIRD-PARTY-NOTICES.txt   the licences of what is shipped
 *
 * Output: build/image/podwarden-<version>.oci.tar (an OCI layout in a tar, `oci-archive:` to skopeo,
 * podman and buildah). Byte-for-byte reproducible for the same commit and the same machine packages:
 * every time stamp is the commit's (or SOURCE_DATE_EPOCH), every file is owned by root.
 *
 * Usage: node scripts/image/build.ts [--out <dir>]
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile, type Plugin } from 'esbuild';
import { BRIDGE_IMAGE_NAME, BRIDGE_IMAGE_TAG, BRIDGE_IMAGE_UID } from '../../lib/bridge/image.ts';
import { imageLayout, layoutArchive, type TarEntry, tarArchive } from './oci.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE_IN_IMAGE = '/usr/local/bin/node';
const CLI_HOME = '/opt/podwarden';
const CLI_IN_IMAGE = `${CLI_HOME}/bin/podwarden.mjs`;
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const METRICS_PORT = 8080;

export interface ImageBuild {
  archivePath: string;
  /** `podwarden:<version>`, the name `podwarden manifests` defaults to. */
  reference: string;
  manifestDigest: string;
  architecture: string;
  /** The config as written (User, Entrypoint, Cmd, Env, Labels, ...). */
  config: { config: Record<string, unknown> } & Record<string, unknown>;
  /** Bytes: the layer as a tar (what the image takes unpacked), gzipped (what a registry stores). */
  sizes: { uncompressed: number; compressed: number; parts: Record<string, number> };
  seconds: number;
  notes: string[];
}

export async function buildImage(options: {
  outDir: string;
  log?: (line: string) => void;
}): Promise<ImageBuild> {
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const notes: string[] = [];
  const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  const git = gitFacts();
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? git.commitTime ?? 0);
  const entries: TarEntry[] = [];
  const parts: Record<string, number> = {};
  const add = (part: string, entry: TarEntry) => {
    entries.push(entry);
    parts[part] = (parts[part] ?? 0) + (entry.content?.length ?? 0);
  };

  log('bundling the CLI with esbuild');
  const cli = await cliFiles();
  for (const file of cli.files) {
    add('bundle', { path: rel(join(CLI_HOME, file.path)), type: 'file', mode: 0o644, content: file.content });
  }
  add('licences', {
    path: 'opt/podwarden/THIRD-PARTY-NOTICES.txt',
    type: 'file',
    mode: 0o644,
    content: Buffer.from(thirdPartyNotices(cli.metafile)),
  });

  log('stripping the Node binary');
  const nodeSource = realpathSync(join(ROOT, 'node_modules/.bin/node'));
  const scratch = mkdtempSync(join(tmpdir(), 'podwarden-image-'));
  let node: Buffer;
  let libraries: string[];
  try {
    const strippedPath = join(scratch, 'node');
    node = strippedNode(nodeSource, strippedPath);
    libraries = linkedLibraries(strippedPath);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const architecture = elfArchitecture(node);
  const nodeVersion = run(nodeSource, ['--version']).trim();
  add('node', { path: rel(NODE_IN_IMAGE), type: 'file', mode: 0o755, content: node });
  add('licences', {
    path: 'usr/share/doc/node/LICENSE',
    type: 'file',
    mode: 0o644,
    content: readFileSync(nodeLicence(nodeSource)),
  });

  const debianPackages = new Set<string>(['ca-certificates']);
  for (const library of libraries) {
    add('libraries', {
      path: rel(library),
      type: 'file',
      mode: statSync(library).mode & 0o755,
      content: readFileSync(realpathSync(library)),
    });
    const owner = debianPackage(library);
    if (owner) debianPackages.add(owner);
  }
  for (const name of [...debianPackages].sort()) {
    const copyright = `/usr/share/doc/${name}/copyright`;
    if (existsSync(copyright)) {
      add('licences', { path: rel(copyright), type: 'file', mode: 0o644, content: readFileSync(copyright) });
    } else notes.push(`no ${copyright} on this machine: the image carries no licence text for ${name}`);
  }

  add('ca-certificates', { path: rel(CA_BUNDLE), type: 'file', mode: 0o644, content: caBundle() });
  const text = (path: string, content: string) =>
    add('etc', { path, type: 'file', mode: 0o644, content: Buffer.from(content) });
  const uid = BRIDGE_IMAGE_UID;
  text(
    'etc/passwd',
    `root:x:0:0:root:/root:/sbin/nologin\npodwarden:x:${uid}:${uid}::/home/podwarden:/sbin/nologin\n`,
  );
  text('etc/group', `root:x:0:\npodwarden:x:${uid}:\n`);
  text('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  // Mount points a runtime fills (they cannot be created later on a read-only root) and a home.
  for (const path of ['proc', 'sys', 'dev', 'etc/ssl/certs', 'var/run/secrets']) {
    entries.push({ path, type: 'directory', mode: 0o755 });
  }
  entries.push({ path: 'tmp', type: 'directory', mode: 0o1777 });
  entries.push({ path: 'home/podwarden', type: 'directory', mode: 0o700, uid, gid: uid });
  const withParents = addParentDirectories(entries);

  log('writing the layer');
  const layerTar = tarArchive(withParents, epoch);
  const layerGzip = gzipSync(layerTar, { level: 6 });

  const source = imageSource(packageJson, git);
  if (!source) {
    notes.push(
      'no source URL known (package.json has no "repository", git no "origin" URL): set PODWARDEN_IMAGE_SOURCE to label one',
    );
  }
  if (git.modified)
    notes.push(`the work tree has uncommitted changes: the revision label (${git.commit}) is not all of it`);
  const created = new Date(epoch * 1000).toISOString();
  const ociLabels: Record<string, string> = {
    'org.opencontainers.image.title': BRIDGE_IMAGE_NAME,
    'org.opencontainers.image.description': `${packageJson.description} This image runs \`podwarden bridge\`.`,
    'org.opencontainers.image.version': packageJson.version,
    'org.opencontainers.image.licenses': packageJson.license,
    'org.opencontainers.image.created': created,
    ...(git.commit ? { 'org.opencontainers.image.revision': git.commit } : {}),
    ...(source ? { 'org.opencontainers.image.source': source } : {}),
  };
  const labels = {
    ...ociLabels,
    'io.podwarden.node-version': nodeVersion,
    // An OCI config has no field for HTTP probes: they are declared here, and the Deployment that
    // `podwarden manifests` prints uses exactly these.
    'io.podwarden.probe.liveness': `http GET :${METRICS_PORT}/healthz`,
    'io.podwarden.probe.readiness': `http GET :${METRICS_PORT}/readyz`,
    'io.podwarden.metrics': `http GET :${METRICS_PORT}/metrics (Prometheus text)`,
  };
  const config = {
    created,
    architecture,
    os: 'linux',
    config: {
      User: `${uid}:${uid}`,
      // --use-system-ca: trust the image's CA bundle (SSL_CERT_FILE) as well as Node's own roots;
      // NODE_EXTRA_CA_CERTS adds a private CA without rebuilding.
      Entrypoint: [NODE_IN_IMAGE, '--use-system-ca', CLI_IN_IMAGE],
      Cmd: ['bridge'],
      Env: ['PATH=/usr/local/bin:/usr/bin:/bin', `SSL_CERT_FILE=${CA_BUNDLE}`],
      WorkingDir: '/',
      ExposedPorts: { [`${METRICS_PORT}/tcp`]: {} },
      StopSignal: 'SIGTERM',
      Labels: labels,
    },
    history: [{ created, created_by: 'npm run image (scripts/image/build.ts)' }],
  };
  const layout = imageLayout({
    config,
    layerTar,
    layerGzip,
    refName: `${BRIDGE_IMAGE_NAME}:${BRIDGE_IMAGE_TAG}`,
    annotations: ociLabels,
  });
  mkdirSync(options.outDir, { recursive: true });
  const archivePath = join(options.outDir, `${BRIDGE_IMAGE_NAME}-${BRIDGE_IMAGE_TAG}.oci.tar`);
  writeFileSync(archivePath, layoutArchive(layout, epoch));
  return {
    archivePath,
    reference: `${BRIDGE_IMAGE_NAME}:${BRIDGE_IMAGE_TAG}`,
    manifestDigest: layout.manifest.digest,
    architecture,
    config,
    sizes: { uncompressed: layerTar.length, compressed: layerGzip.length, parts },
    seconds: (Date.now() - started) / 1000,
    notes,
  };
}

interface PackageJson {
  name: string;
  version: string;
  description: string;
  license: string;
  repository?: string | { url?: string };
}

function rel(absolute: string): string {
  return absolute.replace(/^\/+/, '');
}

/**
 * The CLI as the image lays it out under /opt/podwarden (paths relative to it): the bundle, and the
 * slice of package.json that bin/podwarden.ts reads its version from (../package.json). Exported so
 * a unit test can run exactly these files.
 */
export async function cliFiles(): Promise<{
  files: Array<{ path: string; content: Buffer }>;
  metafile: Metafile;
}> {
  const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  const bundle = await bundleCli();
  const manifest = { name: packageJson.name, version: packageJson.version, type: 'module' };
  return {
    files: [
      { path: 'bin/podwarden.mjs', content: bundle.code },
      { path: 'package.json', content: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) },
    ],
    metafile: bundle.metafile,
  };
}

/**
 * The CLI in one ES module. `demo` drives a local control plane and DynamoDB Local from a clone, so
 * the image carries a stub that says so instead of their code.
 */
async function bundleCli(): Promise<{ code: Buffer; metafile: Metafile }> {
  const demoStub: Plugin = {
    name: 'podwarden-demo-stub',
    setup(builder) {
      // A path relative to the repository, so the bundle does not depend on where the clone is.
      builder.onResolve({ filter: /\/commands\/demo\.ts$/ }, (args) => ({
        path: relative(ROOT, join(args.resolveDir, args.path)),
        namespace: 'demo-stub',
      }));
      builder.onLoad({ filter: /.*/, namespace: 'demo-stub' }, () => ({
        loader: 'ts',
        resolveDir: join(ROOT, 'bin/commands'),
        contents: `import { type CommandIO, EXIT, writeLine } from '../command.ts';
export async function run(_argv: string[], io: CommandIO): Promise<number> {
  writeLine(io.stderr, 'podwarden demo is not part of the image: run it from a clone of the project (npm run demo)');
  return EXIT.usage;
}`,
      }));
    },
  };
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ['bin/podwarden.ts'],
    outfile: 'podwarden.mjs',
    bundle: true,
    write: false,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    metafile: true,
    logLevel: 'warning',
    plugins: [demoStub],
    // CommonJS dependencies bundled into an ES module still call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as __podwardenCreateRequire } from 'node:module';\nconst require = __podwardenCreateRequire(import.meta.url);",
    },
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error('esbuild wrote no output');
  return { code: Buffer.from(output.contents), metafile: result.metafile };
}

/** Each bundled npm package once, with its licence files, for the notices file. */
function thirdPartyNotices(metafile: Metafile): string {
  const packageDirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (match?.[1]) packageDirs.add(match[1]);
  }
  const sections: string[] = [];
  for (const dir of [...packageDirs].sort()) {
    const manifest = JSON.parse(
      readFileSync(join(ROOT, dir, 'package.json'), 'utf8'),
    ) as Partial<PackageJson>;
    const licenceFiles = readdirSync(join(ROOT, dir))
      .filter((name) => /^(licen[cs]e|copying|notice)/i.test(name))
      .sort();
    const texts = licenceFiles.map((name) => readFileSync(join(ROOT, dir, name), 'utf8').trim());
    sections.push(
      [`${manifest.name}@${manifest.version} (${manifest.license ?? 'licence not stated'})`, ...texts].join(
        '\n\n',
      ),
    );
  }
  return `The podwarden CLI bundles these npm packages:\n\n${sections.join(`\n\n${'-'.repeat(72)}\n\n`)}\n`;
}

function strippedNode(nodeSource: string, target: string): Buffer {
  ensureTool('strip', 'binutils');
  // Symbols and debug sections are 18 MB of the 126 MB binary; the code is untouched.
  run('strip', ['--strip-all', '-o', target, nodeSource]);
  return readFileSync(target);
}

/** The `node` package keeps the binary's own package (node-<os>-<arch>, with Node's LICENSE) inside it. */
function nodeLicence(nodeSource: string): string {
  const candidates = [
    join(dirname(nodeSource), '..', 'LICENSE'),
    join(ROOT, `node_modules/node/node_modules/node-${process.platform}-${process.arch}/LICENSE`),
    join(ROOT, `node_modules/node-${process.platform}-${process.arch}/LICENSE`),
  ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found)
    throw new Error(`Node's LICENSE is not beside ${nodeSource}: looked in ${candidates.join(', ')}`);
  return found;
}

/** The absolute paths of the shared objects (the loader included) `ldd` resolves for `binary`. */
function linkedLibraries(binary: string): string[] {
  const libraries: string[] = [];
  for (const line of run('ldd', [binary]).split('\n')) {
    const path = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1];
    if (path) libraries.push(path);
    else if (/not found/.test(line)) throw new Error(`ldd ${binary}: ${line.trim()}`);
  }
  if (libraries.length === 0) throw new Error(`ldd found no libraries for ${binary}: is it a static binary?`);
  return libraries;
}

function debianPackage(path: string): string | undefined {
  if (!hasCommand('dpkg-query')) return undefined;
  for (const candidate of [path, realpathSync(path), `/usr${path}`]) {
    const answer = spawnSync('dpkg-query', ['-S', candidate], { encoding: 'utf8' });
    const owner = answer.status === 0 ? /^([^:\s]+)/.exec(answer.stdout)?.[1] : undefined;
    if (owner) return owner;
  }
  return undefined;
}

function caBundle(): Buffer {
  if (!existsSync(CA_BUNDLE)) {
    installPackage('ca-certificates', `${CA_BUNDLE} is missing`);
    if (!existsSync(CA_BUNDLE))
      throw new Error(`${CA_BUNDLE} is still missing after installing ca-certificates`);
  }
  const bundle = readFileSync(CA_BUNDLE);
  const count = bundle.toString('latin1').split('BEGIN CERTIFICATE').length - 1;
  if (count < 50) throw new Error(`${CA_BUNDLE} holds ${count} certificates: not a system CA bundle`);
  return bundle;
}

const ELF_MACHINES: Record<number, string> = { 62: 'amd64', 183: 'arm64' };

function elfArchitecture(binary: Buffer): string {
  if (binary.readUInt32BE(0) !== 0x7f454c46) throw new Error('the node binary is not an ELF file');
  const machine = binary.readUInt16LE(18);
  const architecture = ELF_MACHINES[machine];
  if (!architecture)
    throw new Error(`the node binary is for ELF machine 0x${machine.toString(16)}, not amd64 or arm64`);
  return architecture;
}

/** Every directory above an entry, unless listed, as root-owned 0755. */
function addParentDirectories(entries: TarEntry[]): TarEntry[] {
  const listed = new Set(entries.map((entry) => entry.path));
  const parents: TarEntry[] = [];
  for (const entry of entries) {
    for (let dir = dirname(entry.path); dir !== '.' && !listed.has(dir); dir = dirname(dir)) {
      listed.add(dir);
      parents.push({ path: dir, type: 'directory', mode: 0o755 });
    }
  }
  return [...entries, ...parents];
}

interface GitFacts {
  commit?: string;
  commitTime?: string;
  modified: boolean;
  origin?: string;
}

function gitFacts(): GitFacts {
  const git = (args: string[]) => {
    const answer = spawnSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' });
    return answer.status === 0 ? answer.stdout.trim() : undefined;
  };
  const commit = git(['rev-parse', 'HEAD']);
  return {
    ...(commit ? { commit } : {}),
    ...(commit ? { commitTime: git(['log', '-1', '--format=%ct']) } : {}),
    modified: commit !== undefined && (git(['status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
    ...(git(['remote', 'get-url', 'origin']) ? { origin: git(['remote', 'get-url', 'origin']) } : {}),
  };
}

function imageSource(packageJson: PackageJson, git: GitFacts): string | undefined {
  const candidates = [
    process.env.PODWARDEN_IMAGE_SOURCE,
    typeof packageJson.repository === 'string' ? packageJson.repository : packageJson.repository?.url,
    git.origin,
  ];
  for (const candidate of candidates) {
    const url = candidate?.trim().replace(/^git\+/, '');
    if (url && /^(https?|ssh|git):\/\//.test(url)) return url.replace(/\.git$/, '');
  }
  return undefined;
}

function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Installs a Debian package the build needs, when this machine can (root with apt-get). */
function installPackage(name: string, why: string): void {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !hasCommand('apt-get')) {
    throw new Error(
      `${why}: install the ${name} package (the build installs it itself only as root with apt-get)`,
    );
  }
  console.error(`[image] ${why}: installing ${name} with apt-get`);
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', name], { stdio: 'inherit' })
      .status;
  if (install() === 0) return;
  run('apt-get', ['update', '-q']);
  if (install() !== 0) throw new Error(`apt-get install ${name} failed`);
}

function ensureTool(command: string, debianPackageName: string): void {
  if (!hasCommand(command)) installPackage(debianPackageName, `${command} is not installed`);
}

function run(command: string, args: string[]): string {
  const answer = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (answer.error) throw new Error(`${command}: ${answer.error.message}`);
  if (answer.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${answer.stderr.trim()}`);
  return answer.stdout;
}

const MB = 1_000_000;
const megabytes = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;

if (import.meta.main) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf('--out');
  const outDir = outIndex >= 0 && args[outIndex + 1] ? args[outIndex + 1]! : join(ROOT, 'build/image');
  try {
    const image = await buildImage({ outDir, log: (line) => console.error(`[image] ${line}`) });
    for (const note of image.notes) console.error(`[image] note: ${note}`);
    const parts = Object.entries(image.sizes.parts)
      .sort((a, b) => b[1] - a[1])
      .map(([part, bytes]) => `${part} ${megabytes(bytes)}`)
      .join(', ');
    console.log(`${image.reference} (${image.architecture}) ${image.manifestDigest}`);
    console.log(
      `size: ${megabytes(image.sizes.uncompressed)} uncompressed (${parts}); ${megabytes(image.sizes.compressed)} compressed`,
    );
    console.log(
      `archive: ${relative(process.cwd(), image.archivePath) || image.archivePath} (built in ${image.seconds.toFixed(1)} s)`,
    );
    console.log(
      `push: skopeo copy oci-archive:${relative(process.cwd(), image.archivePath)} docker://<account>.dkr.ecr.<region>.amazonaws.com/${image.reference}`,
    );
  } catch (error) {
    console.error(`npm run image: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}
