import packageJson from '../../package.json' with { type: 'json' };

/**
 * The image `npm run image` builds (scripts/image/build.ts): one name, tagged with the package
 * version, so `podwarden manifests` of a version defaults to the image of the same version. Users push
 * it to their own registry under the same name and tag and pass the full reference with `--image`.
 */
export const BRIDGE_IMAGE_NAME = 'podwarden';
export const BRIDGE_IMAGE_TAG: string = packageJson.version;
export const DEFAULT_BRIDGE_IMAGE = `${BRIDGE_IMAGE_NAME}:${BRIDGE_IMAGE_TAG}`;
/** The user the image runs as: numeric, so the kubelet can verify runAsNonRoot without a name lookup. */
export const BRIDGE_IMAGE_UID = 65532;
