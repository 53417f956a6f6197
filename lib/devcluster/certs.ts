import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificatePair {
  cert: string;
  key: string;
}

export interface ControlPlaneCertificates {
  caCert: string;
  /** kube-apiserver's (and kube-scheduler's) serving certificate, for 127.0.0.1 and the in-cluster names. */
  serving: CertificatePair;
  /** User `admin` in group system:masters: the kubeconfig tests and KWOK use. */
  admin: CertificatePair;
  /** User system:kube-scheduler, so the scheduler runs with its real RBAC bootstrap role. */
  scheduler: CertificatePair;
  /** Signs and verifies ServiceAccount tokens (kube-apiserver requires one even when unused). */
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
}

// A config of our own, so the machine's openssl.cnf adds no extensions of its own.
const minimalOpensslConfig = '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n';
const newEcKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new Error(
        'openssl is not on PATH; the local control plane needs it to make its certificates (apt-get install openssl)',
      );
    }
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`);
  }
}

/** A fresh CA and the leaf certificates every component needs, as PEM files in `dir`. */
export async function generateCertificates(dir: string): Promise<ControlPlaneCertificates> {
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, minimalOpensslConfig);
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const days = ['-days', '3650'];
  await openssl([
    'req',
    '-x509',
    '-new',
    ...newEcKey,
    '-keyout',
    caKey,
    '-out',
    caCert,
    ...days,
    '-subj',
    '/CN=podwarden-local-ca',
    '-config',
    config,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);

  const leaf = async (name: string, subject: string, extensions: string[]): Promise<CertificatePair> => {
    const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    await openssl([
      'req',
      '-x509',
      '-new',
      ...newEcKey,
      '-keyout',
      pair.key,
      '-out',
      pair.cert,
      ...days,
      '-subj',
      subject,
      '-CA',
      caCert,
      '-CAkey',
      caKey,
      '-config',
      config,
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-addext',
      'keyUsage=critical,digitalSignature',
      ...extensions.flatMap((extension) => ['-addext', extension]),
    ]);
    return pair;
  };
  const [serving, admin, scheduler] = await Promise.all([
    leaf('serving', '/CN=kube-apiserver', [
      'extendedKeyUsage=serverAuth',
      // 10.96.0.1 is the `kubernetes` Service's address in --service-cluster-ip-range.
      'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,' +
        'DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
    ]),
    leaf('admin', '/O=system:masters/CN=admin', ['extendedKeyUsage=clientAuth']),
    leaf('scheduler', '/CN=system:kube-scheduler', ['extendedKeyUsage=clientAuth']),
  ]);

  const serviceAccount = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const serviceAccountKey = join(dir, 'service-account.key');
  const serviceAccountPublicKey = join(dir, 'service-account.pub');
  await writeFile(serviceAccountKey, serviceAccount.privateKey.export({ type: 'sec1', format: 'pem' }), {
    mode: 0o600,
  });
  await writeFile(serviceAccountPublicKey, serviceAccount.publicKey.export({ type: 'spki', format: 'pem' }));

  return { caCert, serving, admin, scheduler, serviceAccountKey, serviceAccountPublicKey };
}

/** A kubeconfig with the CA and client certificate embedded, so it works from any directory. */
export async function writeKubeconfig(
  path: string,
  server: string,
  caCert: string,
  client: CertificatePair,
  user: string,
): Promise<void> {
  const b64 = async (file: string) => (await readFile(file)).toString('base64');
  const text = `apiVersion: v1
kind: Config
clusters:
  - name: podwarden-local
    cluster:
      server: ${server}
      certificate-authority-data: ${await b64(caCert)}
users:
  - name: ${user}
    user:
      client-certificate-data: ${await b64(client.cert)}
      client-key-data: ${await b64(client.key)}
contexts:
  - name: podwarden-local
    context:
      cluster: podwarden-local
      user: ${user}
current-context: podwarden-local
`;
  await writeFile(path, text, { mode: 0o600 });
}
