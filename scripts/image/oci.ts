/**
 * Just enough of the OCI image format to write an image without a daemon or a base image: a
 * deterministic ustar writer (for the layer and for the archive around the layout) and the layout's
 * blobs, manifest and index (https://github.com/opencontainers/image-spec, image-layout.md).
 */
import { createHash } from 'node:crypto';

export interface TarEntry {
  /** Relative, `/`-separated, without a leading `./` (the layout of image layers). */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  uid?: number;
  gid?: number;
  content?: Buffer;
  /** Symlink target. */
  target?: string;
}

const BLOCK = 512;

/**
 * A ustar archive of `entries` in path order, owned by root unless an entry says otherwise, every
 * time stamp `mtimeSeconds`: the same input gives the same bytes, hence the same digest.
 */
export function tarArchive(entries: readonly TarEntry[], mtimeSeconds: number): Buffer {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const seen = new Set<string>();
  const parts: Buffer[] = [];
  for (const entry of sorted) {
    if (seen.has(entry.path)) throw new Error(`tar: ${entry.path} is listed twice`);
    seen.add(entry.path);
    const content = entry.type === 'file' ? (entry.content ?? Buffer.alloc(0)) : Buffer.alloc(0);
    parts.push(tarHeader(entry, content.length, mtimeSeconds));
    if (content.length > 0) {
      parts.push(content);
      const padding = (BLOCK - (content.length % BLOCK)) % BLOCK;
      if (padding > 0) parts.push(Buffer.alloc(padding));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

function tarHeader(entry: TarEntry, size: number, mtimeSeconds: number): Buffer {
  const header = Buffer.alloc(BLOCK);
  const fullName = entry.type === 'directory' ? `${entry.path.replace(/\/$/, '')}/` : entry.path;
  const [prefix, name] = splitName(fullName);
  const field = (offset: number, length: number, value: string) => {
    const bytes = Buffer.from(value, 'utf8');
    if (bytes.length > length) throw new Error(`tar: ${JSON.stringify(value)} does not fit ${length} bytes`);
    bytes.copy(header, offset);
  };
  const octal = (offset: number, length: number, value: number) =>
    field(offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
  field(0, 100, name);
  octal(100, 8, entry.mode & 0o7777);
  octal(108, 8, entry.uid ?? 0);
  octal(116, 8, entry.gid ?? 0);
  octal(124, 12, size);
  octal(136, 12, mtimeSeconds);
  header.fill(0x20, 148, 156); // the checksum counts its own field as spaces
  field(156, 1, entry.type === 'file' ? '0' : entry.type === 'symlink' ? '2' : '5');
  if (entry.type === 'symlink') field(157, 100, entry.target ?? '');
  field(257, 6, 'ustar\0');
  field(263, 2, '00');
  // Names only for root: a runtime must not map the image's other ids through the host's user names.
  if ((entry.uid ?? 0) === 0) field(265, 32, 'root');
  if ((entry.gid ?? 0) === 0) field(297, 32, 'root');
  field(345, 155, prefix);
  let checksum = 0;
  for (const byte of header) checksum += byte;
  field(148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/** ustar keeps names over 100 bytes as a prefix (up to 155) and a name, split at a slash. */
function splitName(path: string): [string, string] {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  for (let cut = path.lastIndexOf('/', path.length - 2); cut > 0; cut = path.lastIndexOf('/', cut - 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface ImageLayout {
  /** The layout's files by path (`oci-layout`, `index.json`, `blobs/sha256/<hex>`). */
  files: Map<string, Buffer>;
  manifest: Descriptor;
  config: Descriptor;
  layer: Descriptor;
}

/**
 * An image layout of one single-layer image: the config (whose `rootfs.diff_ids` names the layer's
 * uncompressed digest), the manifest, and an index whose one entry carries `refName` as
 * `org.opencontainers.image.ref.name` (what `oci-archive:<file>:<ref>` selects).
 */
export function imageLayout(options: {
  config: Record<string, unknown>;
  layerTar: Buffer;
  layerGzip: Buffer;
  refName: string;
  annotations: Record<string, string>;
}): ImageLayout {
  const files = new Map<string, Buffer>();
  const blob = (mediaType: string, content: Buffer): Descriptor => {
    const digest = sha256(content);
    files.set(`blobs/sha256/${digest.slice('sha256:'.length)}`, content);
    return { mediaType, digest, size: content.length };
  };
  const config = {
    ...options.config,
    rootfs: { type: 'layers', diff_ids: [sha256(options.layerTar)] },
  };
  const layer = blob(MEDIA_TYPE.layerGzip, options.layerGzip);
  const configDescriptor = blob(MEDIA_TYPE.config, Buffer.from(JSON.stringify(config)));
  const manifestDescriptor = blob(
    MEDIA_TYPE.manifest,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: configDescriptor,
        layers: [layer],
        annotations: options.annotations,
      }),
    ),
  );
  const platform = config as { architecture?: string; os?: string };
  const manifest: Descriptor = {
    ...manifestDescriptor,
    annotations: { 'org.opencontainers.image.ref.name': options.refName },
  };
  files.set('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  files.set(
    'index.json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.index,
        manifests: [{ ...manifest, platform: { architecture: platform.architecture, os: platform.os } }],
      }),
    ),
  );
  return { files, manifest, config: configDescriptor, layer };
}

/** The layout as one tar file: what skopeo, podman and buildah read as `oci-archive:`. */
export function layoutArchive(layout: ImageLayout, mtimeSeconds: number): Buffer {
  const entries: TarEntry[] = [
    { path: 'blobs', type: 'directory', mode: 0o755 },
    { path: 'blobs/sha256', type: 'directory', mode: 0o755 },
    ...[...layout.files].map(([path, content]): TarEntry => ({ path, type: 'file', mode: 0o644, content })),
  ];
  return tarArchive(entries, mtimeSeconds);
}
